"""The operator console: Django's admin, branded, with a dashboard as its index.

ircore never imports an app (DESIGN.md §1), so the dashboard is a small registry: apps
add panels from their ``admin.py`` with ``admin.site.register_dashboard_panel``. A panel
is a callable ``(request) -> dict | None`` returning ``{"template": ..., "order": int,
**context}``; it must scope what it shows with ``ircore.permissions`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from ircore.permissions import is_team_member, visible_teams

DashboardPanel = Callable[[HttpRequest], "dict[str, Any] | None"]


class IrcoreAdminSite(admin.AdminSite):
    site_header = "ircore"
    site_title = "ircore console"
    index_title = "Dashboard"
    index_template = "admin/ircore_dashboard.html"
    # The sidebar repeats the whole model list on every page: it costs a noticeable
    # share of a changelist's render time and squeezes the incident columns. The
    # dashboard and the breadcrumbs already lead everywhere.
    enable_nav_sidebar = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dashboard_panels: list[DashboardPanel] = []

    def has_permission(self, request: HttpRequest) -> bool:
        # Staff who belong to no team would only ever see empty lists; keep them out.
        user = request.user
        return bool(user.is_active and user.is_staff and is_team_member(user))

    def register_dashboard_panel(self, panel: DashboardPanel) -> DashboardPanel:
        """Add a panel to the index page; usable as a decorator. Registering the same
        callable twice (module re-import in tests) keeps one copy."""
        if panel not in self._dashboard_panels:
            self._dashboard_panels.append(panel)
        return panel

    def dashboard_panels(self, request: HttpRequest) -> list[dict[str, Any]]:
        panels = [p for p in (panel(request) for panel in self._dashboard_panels) if p]
        return sorted(panels, key=lambda p: p.get("order", 100))

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context = {
            "dashboard_panels": self.dashboard_panels(request),
            "my_teams": list(visible_teams(request.user).values_list("name", flat=True)),
            **(extra_context or {}),
        }
        return super().index(request, extra_context=context)
