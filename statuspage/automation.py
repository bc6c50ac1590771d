"""Incidents drive status pages: receivers of ``incidents.signals`` (sent after commit).

An incident on a service linked to components sets their status from its severity
and, per link mode, opens a public incident (published, or a draft for the
communication lead) with text from an UpdateTemplate. Acknowledged becomes
"identified"; resolved becomes "resolved" and returns the components to operational
unless another open incident still holds them.

A failure here must never fail the request that changed the incident (it has
committed already), so each receiver logs and swallows its errors. Each page is
updated in its own transaction, its timeline note included: a page whose update fails
is left as it was (no half-written change, no note claiming one), and the other pages
are still updated.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db import transaction
from django.dispatch import receiver

from incidents import signals
from incidents.models import Incident, Severity, TimelineEntry
from incidents.services import timeline_add
from statuspage import services
from statuspage.models import (
    ComponentServiceLink,
    ComponentStatus,
    ComponentStatusChange,
    PublicIncident,
    StatusPage,
    UpdateTemplate,
)
from statuspage.rendering import template_render

log = logging.getLogger(__name__)
Mode = ComponentServiceLink.Mode
Source = ComponentStatusChange.Source

IMPACT_FOR_SEVERITY = {
    Severity.SEV1: "critical",
    Severity.SEV2: "major",
    Severity.SEV3: "minor",
    Severity.SEV4: "none",
}

# Used when neither the page nor the shipped templates (migration 0002) have one.
FALLBACK_TEXT = {
    UpdateTemplate.Event.TRIGGERED: (
        "Service disruption: {{ components }}",
        "We are investigating reports of a problem affecting {{ components }}. "
        "We will post an update as soon as we know more.",
    ),
    UpdateTemplate.Event.ACKNOWLEDGED: ("", "The issue has been identified and a fix is being worked on."),
    UpdateTemplate.Event.RESOLVED: (
        "",
        "This incident has been resolved. {{ components }} operating normally.",
    ),
}


def _safe(func: Callable[..., None]) -> Callable[..., None]:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except Exception:  # noqa: BLE001 - see module docstring
            incident = kwargs.get("incident")
            log.exception("Status page update failed for incident %s", getattr(incident, "pk", None))

    return wrapper


def template_for(page: StatusPage, event: str) -> tuple[str, str, str]:
    """(title, body, update status) of the page's template for the event, else the shipped one."""
    template = (
        UpdateTemplate.objects.filter(event=event, page=page).order_by("id").first()
        or UpdateTemplate.objects.filter(event=event, page__isnull=True).order_by("id").first()
    )
    if template is not None:
        return template.title, template.body, template.update_status
    title, body = FALLBACK_TEXT[event]
    status = {
        UpdateTemplate.Event.TRIGGERED: PublicIncident.Status.INVESTIGATING,
        UpdateTemplate.Event.ACKNOWLEDGED: PublicIncident.Status.IDENTIFIED,
        UpdateTemplate.Event.RESOLVED: PublicIncident.Status.RESOLVED,
    }[event]
    return title, body, status


def _values(page: StatusPage, incident: Incident, component_names: list[str]) -> dict[str, str]:
    names = component_names or ["some services"]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return {
        "incident_title": incident.title,
        "service": incident.service.name,
        "components": joined,
        "severity": incident.severity,
        "page": page.title,
    }


def _links_by_page(incident: Incident) -> dict[StatusPage, list[ComponentServiceLink]]:
    result: dict[StatusPage, list[ComponentServiceLink]] = defaultdict(list)
    links = ComponentServiceLink.objects.filter(service_id=incident.service_id).select_related(
        "component__page"
    )
    for link in links.order_by("component__position", "component_id"):
        result[link.component.page].append(link)
    return result


def _per_page(incident: Incident, page: StatusPage, step: Callable[..., None], *args: Any) -> None:
    """Run one page's ``step`` atomically; log and skip the page if it fails."""
    try:
        with transaction.atomic():
            step(incident, page, *args)
    except Exception:  # noqa: BLE001 - see module docstring
        log.exception("Status page %r: update failed for incident %s", page.slug, incident.pk)


def _note(incident: Incident, page: StatusPage, message: str) -> None:
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.STATUS_PAGE,
        message=f"Status page {page.title!r}: {message}",
        data={"status_page": page.slug},
    )


def _held_elsewhere(component_id: int, incident: Incident) -> bool:
    """Another open incident on a service linked to this component still holds it."""
    services_ids = ComponentServiceLink.objects.filter(component_id=component_id).values("service_id")
    return (
        Incident.objects.filter(service_id__in=services_ids)
        .exclude(pk=incident.pk)
        .exclude(status=Incident.Status.RESOLVED)
        .exists()
    )


@receiver(signals.incident_triggered, dispatch_uid="statuspage_incident_triggered")
@_safe
def on_incident_triggered(sender: Any, incident: Incident, reopened: bool = False, **kwargs: Any) -> None:
    for page, links in _links_by_page(incident).items():
        _per_page(incident, page, _triggered_on_page, links)


def _triggered_on_page(incident: Incident, page: StatusPage, links: list[ComponentServiceLink]) -> None:
    statuses = {
        lk.component_id: lk.status_for(incident.severity)
        for lk in links
        if lk.status_for(incident.severity)
    }
    publishing = [lk for lk in links if lk.mode != Mode.COMPONENT_ONLY]
    existing = PublicIncident.objects.filter(page=page, source_incident=incident).first()
    if not publishing:
        for link in links:
            if link.component_id in statuses:
                services.component_set_status(
                    component=link.component, status=statuses[link.component_id], source=Source.INCIDENT
                )
        _note(incident, page, "component status set from severity")
        return
    title, body, status = template_for(page, UpdateTemplate.Event.TRIGGERED)
    values = _values(page, incident, [lk.component.name for lk in links])
    if existing is not None:
        services.public_incident_post_update(
            incident=existing,
            status=status,
            body=template_render(body, values),
            component_statuses=statuses,
            source=Source.INCIDENT,
        )
        _note(incident, page, "public incident reopened")
        return
    published = any(lk.mode == Mode.AUTOMATIC for lk in publishing)
    public = services.public_incident_create(
        page=page,
        name=template_render(title, values) or incident.title,
        body=template_render(body, values),
        status=status,
        impact=IMPACT_FOR_SEVERITY.get(incident.severity, "minor"),
        component_statuses={
            lk.component_id: statuses.get(lk.component_id, ComponentStatus.OPERATIONAL) for lk in links
        },
        published=published,
        source_incident=incident,
        source=Source.INCIDENT,
    )
    _note(
        incident,
        page,
        f"public incident #{public.pk} "
        f"{'published' if published else 'drafted (publish it from the console)'}",
    )


@receiver(signals.incident_acknowledged, dispatch_uid="statuspage_incident_acknowledged")
@_safe
def on_incident_acknowledged(sender: Any, incident: Incident, **kwargs: Any) -> None:
    for public in PublicIncident.objects.filter(
        source_incident=incident, status=PublicIncident.Status.INVESTIGATING
    ).select_related("page"):
        _per_page(incident, public.page, _acknowledged_on_page, public)


def _acknowledged_on_page(incident: Incident, page: StatusPage, public: PublicIncident) -> None:
    title, body, status = template_for(page, UpdateTemplate.Event.ACKNOWLEDGED)
    names = list(public.components.values_list("name", flat=True))
    services.public_incident_post_update(
        incident=public,
        status=status,
        body=template_render(body, _values(page, incident, names)),
        component_statuses={},
        source=Source.INCIDENT,
    )
    _note(incident, page, f"public incident #{public.pk} marked {status}")


@receiver(signals.incident_resolved, dispatch_uid="statuspage_incident_resolved")
@_safe
def on_incident_resolved(sender: Any, incident: Incident, **kwargs: Any) -> None:
    publics = {
        p.page_id: p
        for p in PublicIncident.objects.filter(source_incident=incident)
        .exclude(status=PublicIncident.Status.RESOLVED)
        .select_related("page")
    }
    for page, links in _links_by_page(incident).items():
        _per_page(incident, page, _resolved_on_page, links, publics.pop(page.pk, None))
    # Public incidents whose links were removed meanwhile still get closed.
    for public in publics.values():
        _per_page(incident, public.page, _resolved_unlinked_on_page, public)


def _resolved_on_page(incident: Incident, page: StatusPage, links: list[ComponentServiceLink],
                      public: PublicIncident | None) -> None:
    component_ids = {lk.component_id for lk in links}
    if public is not None:
        component_ids |= set(public.components.values_list("pk", flat=True))
    back = {pk: ComponentStatus.OPERATIONAL for pk in component_ids if not _held_elsewhere(pk, incident)}
    if public is None:
        reset = [link for link in links if link.component_id in back]
        for link in reset:
            services.component_set_status(
                component=link.component, status=ComponentStatus.OPERATIONAL, source=Source.INCIDENT
            )
        if reset:
            _note(incident, page, "component status back to operational")
        return
    title, body, status = template_for(page, UpdateTemplate.Event.RESOLVED)
    services.public_incident_post_update(
        incident=public,
        status=status,
        body=template_render(body, _values(page, incident, [lk.component.name for lk in links])),
        component_statuses=back,
        source=Source.INCIDENT,
    )
    _note(incident, page, f"public incident #{public.pk} resolved")


def _resolved_unlinked_on_page(incident: Incident, page: StatusPage, public: PublicIncident) -> None:
    title, body, status = template_for(page, UpdateTemplate.Event.RESOLVED)
    services.public_incident_post_update(
        incident=public,
        status=status,
        body=template_render(body, _values(page, incident, [])),
        source=Source.INCIDENT,
    )
    _note(incident, page, f"public incident #{public.pk} resolved")


@receiver(signals.incident_updated, dispatch_uid="statuspage_incident_updated")
@_safe
def on_incident_updated(
    sender: Any, incident: Incident, fields: list[str] | None = None, **kwargs: Any
) -> None:
    if "severity" not in (fields or []) or not incident.is_open:
        return
    for page, links in _links_by_page(incident).items():
        _per_page(incident, page, _severity_on_page, links)


def _severity_on_page(incident: Incident, page: StatusPage, links: list[ComponentServiceLink]) -> None:
    public = PublicIncident.objects.filter(page=page, source_incident=incident).first()
    if public is not None and not public.published:
        return  # a draft changes nothing public; publishing applies its proposal
    changed = False
    for link in links:
        status = link.status_for(incident.severity)
        if status:
            services.component_set_status(component=link.component, status=status, source=Source.INCIDENT)
            changed = True
    if public is not None:
        PublicIncident.objects.filter(pk=public.pk).update(
            impact=IMPACT_FOR_SEVERITY.get(incident.severity, public.impact)
        )
        services.page_touch(page_id=page.pk)
        changed = True
    if changed:
        _note(incident, page, f"updated for severity {incident.severity}")
