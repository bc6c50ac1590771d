"""Atlassian Statuspage public API v2 compatible endpoints under /status/<slug>/api/v2/."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from statuspage import v2
from statuspage.models import ComponentGroup, Maintenance, PublicIncident, StatusPage
from statuspage.selectors import page_overview, published_incidents, published_maintenances
from statuspage.views import cached_response, page_for, refusing

LIST_LIMIT = 50


def _incidents(page: StatusPage, *, unresolved: bool = False) -> list[dict]:
    qs = published_incidents(page)
    if unresolved:
        qs = qs.exclude(status=PublicIncident.Status.RESOLVED)
    return [v2.incident_json(i, page) for i in qs[:LIST_LIMIT]]


def _maintenances(page: StatusPage, *, which: str = "") -> list[dict]:
    qs = published_maintenances(page).order_by("-scheduled_for", "-id")
    if which == "upcoming":
        qs = qs.filter(status=Maintenance.Status.SCHEDULED).order_by("scheduled_for", "id")
    elif which == "active":
        qs = qs.filter(status__in=[Maintenance.Status.IN_PROGRESS, Maintenance.Status.VERIFYING])
    return [v2.incident_json(m, page) for m in qs[:LIST_LIMIT]]


def _groups(page: StatusPage) -> list[ComponentGroup]:
    return list(ComponentGroup.objects.filter(page=page).order_by("position", "id"))


def build(page: StatusPage, endpoint: str) -> dict:
    """The body of one endpoint; also used by the static export."""
    if endpoint == "summary":
        return v2.summary_json(page_overview(page, with_uptime=False), _groups(page))
    base = {"page": v2.page_json(page)}
    if endpoint == "status":
        overview = page_overview(page, with_uptime=False)
        return {**base, "status": v2.status_json(overview.indicator, overview.description)}
    if endpoint == "components":
        components = list(page.components.order_by("position", "id"))
        return {**base, "components": v2.components_json(page, components, _groups(page))}
    if endpoint == "incidents":
        return {**base, "incidents": _incidents(page)}
    if endpoint == "incidents/unresolved":
        return {**base, "incidents": _incidents(page, unresolved=True)}
    if endpoint.startswith("scheduled-maintenances"):
        which = endpoint.partition("/")[2]
        return {**base, "scheduled_maintenances": _maintenances(page, which=which)}
    raise KeyError(endpoint)


ENDPOINTS = [
    "summary",
    "status",
    "components",
    "incidents",
    "incidents/unresolved",
    "scheduled-maintenances",
    "scheduled-maintenances/upcoming",
    "scheduled-maintenances/active",
]


def _view(endpoint: str) -> Callable:
    @refusing
    @require_http_methods(["GET", "HEAD"])
    def view(request: HttpRequest, slug: str) -> HttpResponse:
        page = page_for(request, slug)
        # Public pages are readable from any origin, as Statuspage's are (widgets).
        headers = {"Access-Control-Allow-Origin": "*"} if page.is_public else {}
        return cached_response(
            request,
            page,
            f"v2:{endpoint}",
            lambda: json.dumps(build(page, endpoint), cls=DjangoJSONEncoder),
            "application/json",
            headers=headers,
        )

    view.__name__ = "v2_" + endpoint.replace("/", "_").replace("-", "_")
    return view


VIEWS = {endpoint: _view(endpoint) for endpoint in ENDPOINTS}
