"""Atlassian Statuspage public API v2 shapes (summary.json, components.json, ...), so
existing consumers of that format read our pages unchanged. Ids are strings; groups
are listed among components with ``group: true`` and their members' ids, as there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings

from statuspage.models import Component, ComponentGroup, Maintenance, PublicIncident, PublicUpdate, StatusPage
from statuspage.selectors import PageOverview, page_status


def _ts(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def page_json(page: StatusPage) -> dict[str, Any]:
    return {
        "id": page.slug,
        "name": page.title,
        "url": page.public_url,
        "time_zone": page.time_zone,
        "updated_at": _ts(page.changed_at),
    }


def component_json(component: Component) -> dict[str, Any]:
    return {
        "id": str(component.pk),
        "name": component.name,
        "status": component.status,
        "created_at": _ts(component.created_at),
        "updated_at": _ts(component.updated_at),
        "position": component.position,
        "description": component.description or None,
        "showcase": component.show_uptime,
        "start_date": component.created_at.date().isoformat() if component.created_at else None,
        "group_id": f"group-{component.group_id}" if component.group_id else None,
        "page_id": component.page.slug if "page" in component._state.fields_cache else None,
        "group": False,
        "only_show_if_degraded": component.only_show_if_degraded,
    }


def group_json(group: ComponentGroup, members: list[Component], page_slug: str) -> dict[str, Any]:
    from statuspage.uptime import STATUS_RANK

    worst = max((c.status for c in members), key=lambda s: STATUS_RANK.get(s, 0), default="operational")
    return {
        "id": f"group-{group.pk}",
        "name": group.name,
        "status": worst,
        "created_at": _ts(group.created_at),
        "updated_at": _ts(group.updated_at),
        "position": group.position,
        "description": group.description or None,
        "showcase": False,
        "start_date": None,
        "group_id": None,
        "page_id": page_slug,
        "group": True,
        "only_show_if_degraded": False,
        "components": [str(c.pk) for c in members],
    }


def components_json(
    page: StatusPage, components: list[Component], groups: list[ComponentGroup]
) -> list[dict]:
    members: dict[int, list[Component]] = {g.pk: [] for g in groups}
    items: list[tuple[tuple[int, int, int], dict]] = []
    group_pos = {g.pk: g.position for g in groups}
    for c in components:
        data = component_json(c)
        data["page_id"] = page.slug
        if c.group_id in members:
            members[c.group_id].append(c)
        items.append(((group_pos.get(c.group_id, c.position), 1, c.position), data))
    for g in groups:
        items.append(((g.position, 0, 0), group_json(g, members[g.pk], page.slug)))
    items.sort(key=lambda pair: pair[0])
    return [data for _key, data in items]


def _update_json(update: PublicUpdate, parent_id: str) -> dict[str, Any]:
    return {
        "id": str(update.pk),
        "status": update.status,
        "body": update.body,
        "incident_id": parent_id,
        "created_at": _ts(update.created_at),
        "updated_at": _ts(update.updated_at),
        "display_at": _ts(update.created_at),
        "affected_components": update.affected_components or None,
        "deliver_notifications": True,
        "custom_tweet": None,
        "tweet_id": None,
    }


def incident_json(item: PublicIncident | Maintenance, page: StatusPage) -> dict[str, Any]:
    """An incident or a scheduled maintenance (the latter adds scheduled_for/until)."""
    is_maintenance = isinstance(item, Maintenance)
    item_id = f"m{item.pk}" if is_maintenance else str(item.pk)
    data: dict[str, Any] = {
        "id": item_id,
        "name": item.name,
        "status": item.status,
        "created_at": _ts(item.created_at),
        "updated_at": _ts(item.updated_at),
        "monitoring_at": None if is_maintenance else _ts(item.monitoring_at),
        "resolved_at": _ts(item.completed_at if is_maintenance else item.resolved_at),
        "impact": "maintenance" if is_maintenance and item.impact == "none" else item.impact,
        "shortlink": f"{settings.PUBLIC_URL}{item.get_absolute_url()}",
        "started_at": _ts(item.started_at or item.scheduled_for) if is_maintenance else _ts(item.started_at),
        "page_id": page.slug,
        "incident_updates": [_update_json(u, item_id) for u in item.updates.all()],
        "components": [{**component_json(c), "page_id": page.slug} for c in item.components.all()],
    }
    if is_maintenance:
        data["scheduled_for"] = _ts(item.scheduled_for)
        data["scheduled_until"] = _ts(item.scheduled_until)
    return data


def status_json(indicator: str, description: str) -> dict[str, str]:
    return {"indicator": indicator, "description": description}


def summary_json(overview: PageOverview, groups: list[ComponentGroup]) -> dict[str, Any]:
    page = overview.page
    return {
        "page": page_json(page),
        "components": components_json(page, overview.components, groups),
        "incidents": [incident_json(i, page) for i in overview.open_incidents],
        "scheduled_maintenances": [
            incident_json(m, page) for m in overview.active_maintenances + overview.upcoming_maintenances
        ],
        "status": status_json(overview.indicator, overview.description),
    }


def webhook_payload(
    page: StatusPage,
    *,
    unsubscribe_url: str,
    item: PublicIncident | Maintenance | None = None,
    component: Component | None = None,
    change: Any = None,
) -> dict[str, Any]:
    """Statuspage-style webhook body: meta + page + incident, or component_update + component."""
    components = list(page.components.all())
    open_incidents = list(page.incidents.filter(published=True).exclude(status="resolved"))
    indicator, description = page_status(components, open_incidents)
    body: dict[str, Any] = {
        "meta": {"unsubscribe": unsubscribe_url, "documentation": f"{page.public_url}#subscribe"},
        "page": {"id": page.slug, "status_indicator": indicator, "status_description": description},
    }
    if item is not None:
        body["incident"] = incident_json(item, page)
    if component is not None and change is not None:
        body["component_update"] = {
            "created_at": _ts(change.changed_at),
            "new_status": change.new_status,
            "old_status": change.old_status,
            "id": str(change.pk),
            "component_id": str(component.pk),
        }
        body["component"] = {
            "created_at": _ts(component.created_at),
            "id": str(component.pk),
            "name": component.name,
            "status": component.status,
        }
    return body
