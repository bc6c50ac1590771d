"""Writes for status pages. A component's status and its ComponentStatusChange row
always change in one transaction; subscribers are notified after commit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from statuspage.models import (
    Component,
    ComponentStatus,
    ComponentStatusChange,
    Maintenance,
    PublicIncident,
    PublicUpdate,
    StatusPage,
)
from statuspage.rendering import markdown_to_html

User = AbstractBaseUser
Source = ComponentStatusChange.Source
MAX_BODY = 20_000


def page_row_key(slug: str) -> str:
    return f"statuspage:page-row:{slug}"


def page_touch(*, page_id: int, at: datetime | None = None) -> None:
    """Mark the page changed: invalidates its render cache, ETag and Last-Modified."""
    # Always the real time, even for back-dated changes: Last-Modified must only move forward.
    StatusPage.objects.filter(pk=page_id).update(changed_at=timezone.now())
    slug = StatusPage.objects.filter(pk=page_id).values_list("slug", flat=True).first()
    if slug:
        key = page_row_key(slug)
        cache.delete(key)
        # Again after commit: a reader between now and the commit may have cached the old row.
        transaction.on_commit(lambda: cache.delete(key))
    from statuspage import tasks

    tasks.export_enqueue(page_id=page_id)


def _valid_status(status: str) -> str:
    if status not in ComponentStatus.values:
        raise ValidationError(
            f"Unknown component status {status!r}; use one of: {', '.join(ComponentStatus.values)}."
        )
    return status


def component_set_status(
    *,
    component: Component,
    status: str,
    actor: User | None = None,
    source: str = Source.MANUAL,
    at: datetime | None = None,
) -> ComponentStatusChange | None:
    """Set the status and log the change; None (and no log row) when it is unchanged."""
    _valid_status(status)
    now = at or timezone.now()
    with transaction.atomic():
        locked = Component.objects.select_for_update().get(pk=component.pk)
        if locked.status == status:
            component.status = status
            return None
        change = ComponentStatusChange.objects.create(
            component=locked,
            old_status=locked.status,
            new_status=status,
            changed_at=now,
            source=source,
            actor=actor if getattr(actor, "pk", None) else None,
        )
        Component.objects.filter(pk=locked.pk).update(status=status, updated_at=now)
        component.status = status
        page_touch(page_id=locked.page_id, at=now)
        from statuspage import tasks

        tasks.component_change_enqueue(change_id=change.pk)
    return change


def components_bulk_set_status(
    *,
    components: Iterable[Component],
    status: str,
    actor: User | None = None,
    source: str = Source.MANUAL,
) -> int:
    _valid_status(status)
    with transaction.atomic():
        return sum(
            1
            for c in components
            if component_set_status(component=c, status=status, actor=actor, source=source)
        )


def _apply_component_statuses(
    *,
    page: StatusPage,
    statuses: Mapping[int, str],
    actor: User | None,
    source: str,
    at: datetime,
) -> list[dict[str, str]]:
    """Apply {component_id: status}; returns Statuspage-style affected_components."""
    affected = []
    components = {c.pk: c for c in Component.objects.filter(page=page, pk__in=list(statuses))}
    missing = set(statuses) - set(components)
    if missing:
        raise ValidationError(f"Component(s) {sorted(missing)} are not on the page {page.slug!r}.")
    for pk, status in statuses.items():
        component = components[pk]
        old = component.status
        if component_set_status(component=component, status=status, actor=actor, source=source, at=at):
            affected.append(
                {"code": str(pk), "name": component.name, "old_status": old, "new_status": status}
            )
    return affected


def _check_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError("The update message is empty.")
    if len(body) > MAX_BODY:
        raise ValidationError(f"The update message is longer than {MAX_BODY} characters.")
    return body


def _notify(update: PublicUpdate) -> None:
    from statuspage import tasks

    transaction.on_commit(lambda: tasks.notify_enqueue(update_id=update.pk))


def public_incident_create(
    *,
    page: StatusPage,
    name: str,
    body: str,
    status: str = PublicIncident.Status.INVESTIGATING,
    impact: str = "minor",
    component_statuses: Mapping[int, str] | None = None,
    published: bool = True,
    author: User | None = None,
    source_incident: Any = None,
    at: datetime | None = None,
    source: str = Source.PUBLIC_INCIDENT,
) -> PublicIncident:
    name = (name or "").strip()
    if not name:
        raise ValidationError("The incident needs a name.")
    if status not in PublicIncident.Status.values:
        raise ValidationError(f"Unknown incident status {status!r}.")
    body = _check_body(body)
    now = at or timezone.now()
    statuses = dict(component_statuses or {})
    for value in statuses.values():
        _valid_status(value)
    with transaction.atomic():
        incident = PublicIncident(
            page=page,
            name=name[:300],
            status=status,
            impact=impact,
            published=published,
            source_incident=source_incident,
            started_at=now,
            monitoring_at=now if status == PublicIncident.Status.MONITORING else None,
            resolved_at=now if status == PublicIncident.Status.RESOLVED else None,
        )
        incident.full_clean(exclude=["components", "source_incident", "page"])
        incident.save()
        incident.components.set(list(statuses))
        # A draft must not change what the public sees: component statuses apply on publish.
        affected = (
            _apply_component_statuses(page=page, statuses=statuses, actor=author, source=source, at=now)
            if published
            else [
                {"code": str(pk), "name": "", "old_status": "", "new_status": s} for pk, s in statuses.items()
            ]
        )
        _update_record(page_id=page.pk, published=published, status=status, body=body, author=author,
                       at=now, affected=affected, incident=incident)
    return incident


def _user_or_none(user: User | None) -> User | None:
    return user if getattr(user, "pk", None) else None


def _update_record(
    *, page_id: int, published: bool, status: str, body: str, author: User | None, at: datetime,
    affected: list | None = None, **owner: Any,
) -> PublicUpdate:
    """Store an update of a public incident or maintenance (``owner``: incident= or
    maintenance=), mark the page changed, and tell subscribers when it is public."""
    update = PublicUpdate.objects.create(
        **owner, status=status, body=body, body_html=markdown_to_html(body),
        affected_components=affected if affected is not None else [],
        author=_user_or_none(author), created_at=at,
    )
    page_touch(page_id=page_id, at=at)
    if published:
        _notify(update)
    return update


def public_incident_post_update(
    *,
    incident: PublicIncident,
    status: str,
    body: str,
    author: User | None = None,
    component_statuses: Mapping[int, str] | None = None,
    at: datetime | None = None,
    source: str = Source.PUBLIC_INCIDENT,
    impact: str | None = None,
) -> PublicUpdate:
    """Post an update; on 'resolved' without explicit statuses the incident's components
    return to operational."""
    if status not in PublicIncident.Status.values:
        raise ValidationError(
            f"Unknown incident status {status!r}; use one of: {', '.join(PublicIncident.Status.values)}."
        )
    body = _check_body(body)
    now = at or timezone.now()
    statuses = dict(component_statuses or {})
    for value in statuses.values():
        _valid_status(value)
    with transaction.atomic():
        locked = PublicIncident.objects.select_for_update().get(pk=incident.pk)
        if status == PublicIncident.Status.RESOLVED and component_statuses is None:
            statuses = {
                pk: ComponentStatus.OPERATIONAL for pk in locked.components.values_list("pk", flat=True)
            }
        fields: dict[str, Any] = {"status": status, "updated_at": now}
        if status == PublicIncident.Status.MONITORING and not locked.monitoring_at:
            fields["monitoring_at"] = now
        if status == PublicIncident.Status.RESOLVED:
            fields["resolved_at"] = locked.resolved_at or now
        elif locked.resolved_at:
            fields["resolved_at"] = None
        if impact:
            fields["impact"] = impact
        PublicIncident.objects.filter(pk=locked.pk).update(**fields)
        for key, value in fields.items():
            setattr(incident, key, value)
        if statuses:
            locked.components.add(*statuses)
        affected = (
            _apply_component_statuses(
                page=locked.page, statuses=statuses, actor=author, source=source, at=now
            )
            if locked.published
            else []
        )
        update = _update_record(page_id=locked.page_id, published=locked.published, status=status,
                                body=body, author=author, at=now, affected=affected, incident=locked)
    return update


def public_incident_publish(*, incident: PublicIncident, author: User | None = None) -> bool:
    """Draft -> published: applies the component statuses the draft proposed and
    notifies subscribers of its latest update. False when already published."""
    now = timezone.now()
    with transaction.atomic():
        if not PublicIncident.objects.filter(pk=incident.pk, published=False).update(
            published=True, updated_at=now
        ):
            return False
        incident.published = True
        latest = incident.updates.order_by("-created_at", "-id").first()
        if latest is not None and incident.is_open:
            proposed = {
                int(a["code"]): a["new_status"] for a in latest.affected_components if a.get("new_status")
            }
            affected = _apply_component_statuses(
                page=incident.page, statuses=proposed, actor=author, source=Source.PUBLIC_INCIDENT, at=now
            )
            PublicUpdate.objects.filter(pk=latest.pk).update(affected_components=affected)
        page_touch(page_id=incident.page_id, at=now)
        if latest is not None:
            _notify(latest)
    return True


_MAINTENANCE_COMPONENT_STATUS = {
    Maintenance.Status.IN_PROGRESS: ComponentStatus.UNDER_MAINTENANCE,
    Maintenance.Status.VERIFYING: ComponentStatus.UNDER_MAINTENANCE,
    Maintenance.Status.COMPLETED: ComponentStatus.OPERATIONAL,
}


def maintenance_create(
    *,
    page: StatusPage,
    name: str,
    body: str,
    scheduled_for: datetime,
    scheduled_until: datetime,
    component_ids: Iterable[int] = (),
    author: User | None = None,
    published: bool = True,
    impact: str = "none",
    auto_transition: bool = True,
) -> Maintenance:
    name = (name or "").strip()
    if not name:
        raise ValidationError("The maintenance needs a name.")
    if scheduled_until <= scheduled_for:
        raise ValidationError("The maintenance must end after it starts.")
    body = _check_body(body)
    ids = list(component_ids)
    if Component.objects.filter(page=page, pk__in=ids).count() != len(set(ids)):
        raise ValidationError("Some components are not on this page.")
    now = timezone.now()
    with transaction.atomic():
        maintenance = Maintenance.objects.create(
            page=page,
            name=name[:300],
            scheduled_for=scheduled_for,
            scheduled_until=scheduled_until,
            published=published,
            impact=impact,
            auto_transition=auto_transition,
        )
        maintenance.components.set(ids)
        _update_record(page_id=page.pk, published=published, status=Maintenance.Status.SCHEDULED,
                       body=body, author=author, at=now, maintenance=maintenance)
    return maintenance


def maintenance_post_update(
    *,
    maintenance: Maintenance,
    status: str,
    body: str,
    author: User | None = None,
    at: datetime | None = None,
) -> PublicUpdate:
    """In progress/verifying put the components under maintenance; completed returns
    them to operational."""
    if status not in Maintenance.Status.values:
        raise ValidationError(
            f"Unknown maintenance status {status!r}; use one of: {', '.join(Maintenance.Status.values)}."
        )
    body = _check_body(body)
    now = at or timezone.now()
    with transaction.atomic():
        locked = Maintenance.objects.select_for_update().get(pk=maintenance.pk)
        fields: dict[str, Any] = {"status": status, "updated_at": now}
        if status in (Maintenance.Status.IN_PROGRESS, Maintenance.Status.VERIFYING) and not locked.started_at:
            fields["started_at"] = now
        if status == Maintenance.Status.COMPLETED:
            fields["completed_at"] = now
        Maintenance.objects.filter(pk=locked.pk).update(**fields)
        for key, value in fields.items():
            setattr(maintenance, key, value)
        affected: list[dict[str, str]] = []
        target = _MAINTENANCE_COMPONENT_STATUS.get(status)
        if target and locked.published:
            affected = _apply_component_statuses(
                page=locked.page,
                statuses={pk: target for pk in locked.components.values_list("pk", flat=True)},
                actor=author,
                source=Source.MAINTENANCE,
                at=now,
            )
        update = _update_record(page_id=locked.page_id, published=locked.published, status=status,
                                body=body, author=author, at=now, affected=affected, maintenance=locked)
    return update


AUTO_START_TEXT = "The scheduled maintenance is now in progress. We will post an update when it is complete."
AUTO_COMPLETE_TEXT = "The scheduled maintenance has been completed."


def maintenances_auto_advance(now: datetime | None = None) -> int:
    """Clock job: start due maintenance and complete finished ones (auto_transition).
    Each row is claimed under a row lock (skipped when another clock holds it), and the
    status is re-checked under the lock, so two clocks never post the same update."""
    now = now or timezone.now()
    done = 0
    due = Maintenance.objects.filter(published=True, auto_transition=True).filter(
        Q(status=Maintenance.Status.SCHEDULED, scheduled_for__lte=now)
        | Q(
            status__in=[Maintenance.Status.IN_PROGRESS, Maintenance.Status.VERIFYING],
            scheduled_until__lte=now,
        )
    )
    for pk in list(due.values_list("pk", flat=True)[:100]):
        with transaction.atomic():
            item = Maintenance.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if item is None:
                continue
            if item.status == Maintenance.Status.SCHEDULED and item.scheduled_until > now:
                maintenance_post_update(
                    maintenance=item, status=Maintenance.Status.IN_PROGRESS, body=AUTO_START_TEXT, at=now
                )
                done += 1
            elif item.status != Maintenance.Status.COMPLETED and item.scheduled_until <= now:
                maintenance_post_update(
                    maintenance=item, status=Maintenance.Status.COMPLETED, body=AUTO_COMPLETE_TEXT, at=now
                )
                done += 1
    return done
