from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from rcm import health


class SwaggerUIView(SpectacularSwaggerView):
    # A page, not a resource: OPTIONS has nothing to say of it, and its HTML renderer has no
    # template to answer one with (a 500); so it is a 405.
    http_method_names = ["get", "head"]


handler400 = "rcm.api.errors.bad_request"
handler403 = "rcm.api.errors.permission_denied"
handler404 = "rcm.api.errors.not_found"
handler500 = "rcm.api.errors.server_error"

urlpatterns = [
    path("health", health.liveness, name="health"),
    path("health/ready", health.readiness, name="health-ready"),
    # The console lives in the admin site (one log-in, one organization context, one
    # permission table); its routes come first so that the admin's catch-alls do not take them.
    path("admin/console/", include("console.urls")),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(pattern_name="console:home"), name="home"),
    path("", include("tenants.views")),
    path("api/v2/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v2/docs/", SwaggerUIView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v2/", include("tenants.urls")),
    path("api/v2/", include("workflows.urls")),
    path("api/v2/", include("memory.urls")),
    path("api/v2/", include("webactions.urls")),
]

if settings.RCM_SANDBOX:
    # The imitation payer portal the web agent is tested against (webactions/sandbox).
    urlpatterns.append(path("sandbox/", include("webactions.sandbox.views")))
