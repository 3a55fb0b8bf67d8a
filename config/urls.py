from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.throttling import SignInView, password_throttled

urlpatterns = [
    # Before the site's own URLs, so that its sign-in counts password attempts like ours.
    path("admin/login/", password_throttled(admin.site.login), name="admin-login"),
    path("admin/", admin.site.urls),
    # Every role signs in here (the admin site's own login admits staff only).
    path("accounts/login/", SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # An invited user (a rights-holder onboarded without a password) chooses one here.
    path("accounts/invitation/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(
        template_name="dashboards/invitation.html", success_url="/accounts/login/?invited=1"),
        name="invitation"),
    path("api/v1/", include("provenance.urls")),
    path("api/v1/", include("attribution.urls")),
    path("api/v1/", include("takedowns.urls")),
    path("api/v1/", include("retrieval.urls")),
    path("api/v1/", include("benchmarks.urls")),
    path("api/v1/", include("dashboards.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's page carries a few inline style rules; its scripts are our static files.
    path("api/docs/", csp_update({"style-src": [UNSAFE_INLINE]})(
        SpectacularSwaggerSplitView.as_view(url_name="schema")), name="api-docs"),
    path("", include("dashboards.urls")),
]


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """An API client gets JSON for a path that names nothing (e.g. /api/v1/versions/0.5/)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"no such resource: {request.path}"}, status=404)
    return defaults.page_not_found(request, exception)


handler404 = not_found
