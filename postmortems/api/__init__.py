"""/api/v1/ endpoints of postmortems, problems and metrics (registered by ircore.api_urls)."""

from __future__ import annotations

from typing import Any


def register_api(router: Any) -> None:
    from postmortems.api import views

    router.register("postmortems", views.PostmortemViewSet, basename="postmortem")
    router.register("action-items", views.ActionItemViewSet, basename="actionitem")
    router.register("postmortem-templates", views.PostmortemTemplateViewSet, basename="postmortemtemplate")
    router.register("problems", views.ProblemViewSet, basename="problem")
    router.register("metrics", views.MetricsViewSet, basename="metrics")
