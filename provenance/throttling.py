"""Request-rate limits beyond DRF's per-view throttles: the sign-in page is a password endpoint
like the API's token view, and shares its "auth" rate."""

from __future__ import annotations

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


class SignInView(auth_views.LoginView):
    template_name = "dashboards/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        throttle = PasswordThrottle()
        # DRF's throttles read only the request's address and user, which a Django request has.
        if not throttle.allow_request(request, self):  # type: ignore[arg-type]
            wait = int(throttle.wait() or 60)
            response = TemplateResponse(request, self.template_name,
                                        {"form": self.get_form(), "throttled": wait}, status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)
