"""Panels that apps above incidents add to the incident page (e.g. oncall's escalation
state), without incidents importing them: a panel is ``(request, incident) -> dict |
None`` with a ``template`` key, registered from the app's admin module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

IncidentPanel = Callable[[HttpRequest, Any], "dict[str, Any] | None"]
_panels: list[IncidentPanel] = []


def incident_panel_register(panel: IncidentPanel) -> IncidentPanel:
    if panel not in _panels:
        _panels.append(panel)
    return panel


def incident_panels(request: HttpRequest, incident: Any) -> list[dict[str, Any]]:
    return [p for p in (panel(request, incident) for panel in _panels) if p]
