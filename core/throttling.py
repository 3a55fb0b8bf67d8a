"""Request-rate limits beyond DRF's per-view throttles: the sign-in page and the admin site's
sign-in are password endpoints like the API's token view, and share its "auth" count per address."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from rest_framework.throttling import SimpleRateThrottle


class PasswordThrottle(SimpleRateThrottle):
    """Password attempts per client address, whoever they claim to be."""

    scope = "auth"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def password_wait(request: HttpRequest) -> int | None:
    """Count one password attempt from this address: None when allowed, else the seconds to
    wait. DRF's throttles read only the request's address and user, which a Django request has."""
    throttle = PasswordThrottle()
    if throttle.allow_request(request, None):  # type: ignore[arg-type]
        return None
    return int(throttle.wait() or 60)


def password_throttled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A sign-in view whose POSTs count against the address's password attempts (429 past the
    limit, with Retry-After): Django's admin login has no limit of its own."""

    @wraps(view)
    def throttled(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wait = password_wait(request) if request.method == "POST" else None
        if wait is not None:
            response = HttpResponse(f"Too many sign-in attempts from this address; try again in "
                                    f"{wait} s.", status=429, content_type="text/plain")
            response["Retry-After"] = str(wait)
            return response
        return view(request, *args, **kwargs)

    return throttled


class SignInView(auth_views.LoginView):
    template_name = "dashboards/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wait = password_wait(request)
        if wait is not None:
            response = TemplateResponse(request, self.template_name,
                                        {"form": self.get_form(), "throttled": wait}, status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)
