"""REST API for incidents, alerts and their configuration (/api/v1/)."""

from __future__ import annotations

from typing import Any


def register_api(router: Any) -> None:
    """Called by ircore.api_urls when it builds the /api/v1/ router."""
    from incidents.api import views

    router.register("services", views.ServiceViewSet, basename="service")
    router.register(r"services/(?P<service_id>\d+)/timeline", views.ServiceTimelineViewSet,
                    basename="service-timeline")
    router.register("integrations", views.IntegrationViewSet, basename="integration")
    router.register("triage-rules", views.TriageRuleViewSet, basename="triagerule")
    router.register("maintenance-windows", views.MaintenanceWindowViewSet, basename="maintenancewindow")
    router.register("incidents", views.IncidentViewSet, basename="incident")
    router.register("alerts", views.AlertViewSet, basename="alert")
