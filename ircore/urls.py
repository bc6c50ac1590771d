from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from incidents.urls import urlpatterns as ingestion_urlpatterns
from ircore.views import healthz

urlpatterns = [
    # First, and not behind an include: the ingestion endpoints are the busiest paths, and
    # Django tries patterns in order (each miss costs a regex match); no other prefix
    # overlaps theirs.
    *ingestion_urlpatterns,
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("healthz", healthz, name="healthz"),
    # Console pages that are not a model admin; before admin/ so its catch-all does not take them.
    path("admin/metrics/", include("postmortems.admin_urls")),
    path("admin/", admin.site.urls),
    path("status/", include("statuspage.urls")),
    path("oncall/", include("oncall.urls")),
    # Inbound email webhooks: /anymail/<esp>/inbound/ (protected by ANYMAIL_WEBHOOK_SECRET).
    path("anymail/", include("anymail.urls")),
    path("api/v1/", include("ircore.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
