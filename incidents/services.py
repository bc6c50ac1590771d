"""Writes for alerts and incidents. Every state change is a compare-and-set or runs
under a row lock, writes its timeline entry in the same transaction, and announces
itself through ``incidents.signals`` only after commit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.dispatch import Signal
from django.utils import timezone

from incidents import signals
from incidents.events import DEFAULT_PRIORITY_FOR_SEVERITY, AlertEvent, event_storable
from incidents.models import (
    Alert,
    AlertAction,
    Incident,
    Integration,
    MaintenanceWindow,
    Priority,
    Service,
    Severity,
    TimelineEntry,
    TriageRule,
)
from incidents.triage import triage_apply
from ircore.counters import counter_next

Status = Incident.Status
Kind = TimelineEntry.Kind
Via = TimelineEntry.Via
User = AbstractBaseUser

SEVERITY_RANK = {Severity.SEV1: 1, Severity.SEV2: 2, Severity.SEV3: 3, Severity.SEV4: 4}


def send_on_commit(signal: Signal, incident: Incident, **kwargs: Any) -> None:
    """Announce a change through ``incidents.signals`` once the transaction commits."""
    transaction.on_commit(lambda: signal.send(sender=Incident, incident=incident, **kwargs))


def timeline_add(
    *,
    incident: Incident | None,
    service: Service | None = None,
    kind: str,
    message: str,
    actor: User | None = None,
    via: str = Via.SYSTEM,
    data: dict | None = None,
    at: datetime | None = None,
) -> TimelineEntry:
    return TimelineEntry.objects.create(
        incident=incident,
        service_id=(service.pk if service else incident.service_id),  # type: ignore[union-attr]
        kind=kind,
        message=message,
        actor=actor,
        via=via,
        data=data or {},
        created_at=at or timezone.now(),
    )


def _actor_name(user: User | None, via: str) -> str:
    if user is None:
        return "an integration" if via == Via.INTEGRATION else "ircore"
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return full or user.get_username()


def _via_suffix(via: str) -> str:
    return f" via {Via(via).label}" if via in (Via.EMAIL, Via.API) else ""


# --------------------------------------------------------------------------- ingestion


@dataclass(frozen=True)
class IngestResult:
    alert: Alert
    incident: Incident | None
    outcome: str
    message: str


def service_in_maintenance(*, service_id: int, at: datetime) -> MaintenanceWindow | None:
    # Soonest end first, the id breaking ties: the batch applier's read of the windows
    # (incidents.alert_batch) keeps the same order, so both pick the same window.
    return (
        MaintenanceWindow.objects.filter(MaintenanceWindow.in_force_at(at), services=service_id)
        .order_by("ends_at", "id")
        .first()
    )


@dataclass(frozen=True)
class IngestKnown:
    """What the caller of ``alert_ingest`` already read in its transaction, so that
    applying one event does not read it again (the batch applier, for each event that
    is not a plain repeat)."""

    rules: list[TriageRule]  # the team's enabled rules in order, as team_rules reads them
    window_at: Callable[[int, datetime], MaintenanceWindow | None]  # as service_in_maintenance
    # (service id, dedup key) that the caller knows has no open incident: it holds the
    # locks of the open incidents it read and saw none for it. A writer that opened one
    # since is met by the unique index, and _ingest_trigger then looks it up as usual.
    none_open: tuple[int, str] | None = None
    # A caller that inserts rows in bulk takes a new incident's alert and opening
    # timeline entries (as timeline_add's keyword arguments) to insert with its own,
    # instead of one INSERT each here; the alert in the result then has no primary
    # key. ``flush`` writes what it holds: called before anything else is read or
    # written here, so reads see those rows and ids stay in arrival order.
    write_later: Callable[[Alert, list[dict[str, Any]]], None] | None = None
    flush: Callable[[], None] = lambda: None


# An alert's summary when its event had none (the column may not be empty).
NO_SUMMARY = "(no summary)"


def team_rules(team_id: int) -> list[TriageRule]:
    """The team's enabled triage rules, in the order they run."""
    return list(
        TriageRule.objects.filter(team_id=team_id, enabled=True).order_by("position", "id")
    )


def alert_values(
    *, integration_id: int | None, service_id: int, event: AlertEvent, sent_key: str, in_maintenance: bool,
    at: datetime,
) -> dict[str, Any]:
    """The column values of the alert for a triaged event (by attribute name): the one
    place that decides them, for ``alert_build`` and the batch applier's inserts."""
    return {
        "integration_id": integration_id,
        "service_id": service_id,
        "action": event.action,
        "dedup_key": event.dedup_key[:255],
        "sent_dedup_key": sent_key[:255],
        "summary": (event.summary or NO_SUMMARY)[:1024],
        "details": event.details,
        "severity": event.severity,
        "priority": event.priority,
        "source": event.source[:255],
        "labels": event.labels,
        "links": event.links,
        "payload": event.payload,
        "in_maintenance": in_maintenance,
        "received_at": at,
    }


def alert_build(
    *, integration: Integration | None, service: Service, event: AlertEvent, sent_key: str,
    window: MaintenanceWindow | None, at: datetime,
) -> Alert:
    """The (unsaved) alert for a triaged event."""
    alert = Alert(**alert_values(
        integration_id=integration.pk if integration else None, service_id=service.pk, event=event,
        sent_key=sent_key, in_maintenance=window is not None, at=at,
    ))
    # Keep the instances the caller already has (no query for alert.service later).
    if integration is not None:
        alert.integration = integration
    alert.service = service
    return alert


# What an alert says it did and what the timeline says about it: written by
# alert_ingest one event at a time and by the batch applier (incidents.alert_batch).


def suppressed_detail(rules: list[TriageRule]) -> str:
    return f"Suppressed by triage rule(s): {', '.join(rule.name for rule in rules)}"


GROUPED_DETAIL_PREFIX = "Added to "  # then the incident's ref (batch_repeats builds it in SQL)


def grouped_detail(incident: Incident) -> str:
    return f"{GROUPED_DETAIL_PREFIX}{incident.ref}"


def alert_received_message(summary: str) -> str:
    return f"Alert received: {summary}"


def severity_raised_message(old: str, new: str) -> str:
    return f"Severity raised from {old} to {new} by a new alert"


def alert_ingest(
    *, integration: Integration, event: AlertEvent, received_at: datetime | None = None
) -> IngestResult:
    """Store one event, triage it and apply it to the matching incident, atomically.

    The caller's 2xx must only follow a successful return: the alert row and every
    effect on incidents commit together.
    """
    event = event_storable(event)  # events that did not come through the queue (email, console)
    with transaction.atomic():
        return _ingest(integration, event, received_at or timezone.now(), None)


def alert_ingest_known(
    *, integration: Integration, event: AlertEvent, received_at: datetime, known: IngestKnown
) -> IngestResult:
    """``alert_ingest`` inside the caller's transaction, with what it already read.

    No savepoint of its own: the caller (the batch applier) rolls its whole
    transaction back if this raises, so a partial event can never be committed."""
    assert transaction.get_connection().in_atomic_block, "alert_ingest_known needs the caller's transaction"
    return _ingest(integration, event, received_at, known)


def _ingest(integration: Integration, event: AlertEvent, now: datetime, known: IngestKnown | None
            ) -> IngestResult:
    service = integration.service
    if not event.dedup_key:
        event.dedup_key = uuid.uuid4().hex
    given_key = event.dedup_key
    rules = known.rules if known else team_rules(service.team_id)
    triage = triage_apply(rules, event, service_id=service.pk, integration_id=integration.pk)
    if triage.route_to_service_id and triage.route_to_service_id != service.pk:
        routed = Service.objects.filter(
            pk=triage.route_to_service_id, team_id=service.team_id
        ).first()
        if routed is not None:
            service = routed
    if not event.priority:
        event.priority = DEFAULT_PRIORITY_FOR_SEVERITY[event.severity]
    if known:
        window = known.window_at(service.pk, now)
    else:
        window = service_in_maintenance(service_id=service.pk, at=now)
    alert = alert_build(integration=integration, service=service, event=event, sent_key=given_key,
                        window=window, at=now)
    rule_names = ", ".join(rule.name for rule in triage.applied)
    none_open = known is not None and known.none_open == (service.pk, alert.dedup_key)
    opens_unread = event.action == AlertAction.TRIGGER and none_open and not triage.suppress
    if known and not opens_unread:
        known.flush()
    if triage.suppress:
        alert.outcome = Alert.Outcome.SUPPRESSED
        alert.outcome_detail = suppressed_detail(triage.applied)
        alert.save(force_insert=True)
        return IngestResult(alert, None, alert.outcome, alert.outcome_detail)
    if event.action == AlertAction.TRIGGER:
        return _ingest_trigger(alert, service, window, rule_names, now, none_open=none_open,
                               write_later=known.write_later if known else None,
                               flush=known.flush if known else None)
    return _ingest_ack_or_resolve(alert, integration, now, given_key)


def _open_incident_locked(service_id: int, dedup_key: str) -> Incident | None:
    # At most one row (partial unique index), so no ORDER BY: the one .first() adds
    # costs CPU on every ingested event (see bench/profile_ingest.py).
    rows = list(
        Incident.objects.select_for_update()
        .filter(service_id=service_id, dedup_key=dedup_key)
        .exclude(status=Status.RESOLVED)
        .order_by()[:1]
    )
    return rows[0] if rows else None


def _ingest_trigger(
    alert: Alert, service: Service, window: MaintenanceWindow | None, rule_names: str, now: datetime,
    *, none_open: bool = False, write_later: Callable[[Alert, list[dict[str, Any]]], None] | None = None,
    flush: Callable[[], None] | None = None,
) -> IngestResult:
    for attempt in range(5):
        # The first look-up is skipped when the caller already knows there is no open
        # incident; an IntegrityError below brings it back on the next attempt.
        if none_open and attempt == 0:
            incident = None
        else:
            if flush is not None:
                flush()
            incident = _open_incident_locked(service.pk, alert.dedup_key)
        if incident is not None:
            break
        try:
            with transaction.atomic():
                incident = _incident_open(alert, service, window, rule_names, now)
        except IntegrityError:
            # Another writer opened it between our look-up and insert (PostgreSQL,
            # READ COMMITTED): the unique constraint stopped us, so join theirs on the
            # next look-up; a third writer may already have resolved it, in which
            # case we open one again.
            if attempt == 4:
                raise
            continue
        alert.incident = incident
        alert.outcome = Alert.Outcome.OPENED
        alert.outcome_detail = f"Opened {incident.ref}"
        entries = _opening_entries(incident, alert, window, rule_names, now)
        if write_later is not None:
            write_later(alert, entries)
        else:
            for entry in entries:
                timeline_add(incident=incident, **entry)
            alert.save(force_insert=True)
        return IngestResult(alert, incident, alert.outcome, alert.outcome_detail)
    assert incident is not None
    alert.incident = incident
    alert.outcome = Alert.Outcome.GROUPED
    alert.outcome_detail = grouped_detail(incident)
    alert.save(force_insert=True)
    updates: dict[str, Any] = {"alert_count": F("alert_count") + 1, "last_alert_at": now, "updated_at": now}
    raised = SEVERITY_RANK[alert.severity] < SEVERITY_RANK[incident.severity]
    if raised:
        updates["severity"] = alert.severity
    Incident.objects.filter(pk=incident.pk).update(**updates)
    timeline_add(
        incident=incident, kind=Kind.ALERT, via=Via.INTEGRATION, at=now,
        message=alert_received_message(alert.summary), data={"alert_id": alert.pk},
    )
    if raised:
        timeline_add(
            incident=incident, kind=Kind.SEVERITY, at=now,
            message=severity_raised_message(incident.severity, alert.severity),
        )
        incident.severity = alert.severity
        send_on_commit(signals.incident_updated, incident, user=None, via=Via.INTEGRATION,
                        fields=["severity"])
    return IngestResult(alert, incident, alert.outcome, alert.outcome_detail)


def _incident_open(
    alert: Alert, service: Service, window: MaintenanceWindow | None, rule_names: str, now: datetime
) -> Incident:
    incident = Incident.objects.create(
        number=counter_next(name="incident"),
        team_id=service.team_id,
        service=service,
        title=alert.summary,
        description=alert.details,
        severity=alert.severity,
        priority=alert.priority,
        dedup_key=alert.dedup_key,
        in_maintenance=window is not None,
        alert_count=1,
        last_alert_at=now,
        triggered_at=now,
    )
    send_on_commit(signals.incident_triggered, incident, user=None, via=Via.INTEGRATION, reopened=False)
    return incident


def _opening_entries(
    incident: Incident, alert: Alert, window: MaintenanceWindow | None, rule_names: str, now: datetime
) -> list[dict[str, Any]]:
    """The timeline entries of a new incident, in order, as timeline_add's arguments."""
    source = f" from {alert.source}" if alert.source else ""
    entries: list[dict[str, Any]] = [dict(
        kind=Kind.TRIGGERED, via=Via.INTEGRATION, at=now,
        message=f"Triggered by an alert{source}: {alert.summary}",
        data={"severity": incident.severity, "priority": incident.priority},
    )]
    if rule_names:
        entries.append(dict(
            kind=Kind.TRIAGE, via=Via.SYSTEM, at=now, data={},
            message=f"Triage rule(s) applied: {rule_names} "
            f"(severity {incident.severity}, priority {incident.priority})",
        ))
    if window is not None:
        entries.append(dict(
            kind=Kind.MAINTENANCE, via=Via.SYSTEM, at=now,
            message=f"Service is in maintenance until {window.ends_at:%Y-%m-%d %H:%M %Z} "
            f"({window}): nobody is paged.",
            data={"maintenance_window_id": window.pk},
        ))
    return entries


def _open_incident_of_integration(integration: Integration, keys: set[str]) -> Incident | None:
    """The open incident, anywhere in the team, that this integration's alerts with one
    of ``keys`` went to. Triage may have routed the trigger to another service or built
    its key from fields an acknowledge/resolve does not carry (PagerDuty's carry only
    the key the trigger's answer returned, which is the key before triage: the answer
    comes before the queue is applied); like PagerDuty, only the integration that sent
    the trigger can acknowledge or resolve it this way."""
    # Filtering by the team's services and excluding resolved (the partial unique
    # index's own predicate) keeps the first look-up an index look-up per service; the
    # second, by the key the trigger was sent with, only runs when that one found
    # nothing, over the team's open incidents.
    open_in_team = Incident.objects.filter(
        service_id__in=Service.objects.filter(team_id=integration.service.team_id).values("pk"),
    ).exclude(status=Status.RESOLVED)
    from_integration = Alert.objects.filter(incident=OuterRef("pk"), integration=integration)
    pk = None
    for candidates in (
        open_in_team.filter(dedup_key__in=keys).filter(Exists(from_integration)),
        open_in_team.filter(Exists(from_integration.filter(sent_dedup_key__in=keys))),
    ):
        pk = candidates.order_by("-triggered_at").values_list("pk", flat=True).first()
        if pk is not None:
            break
    if pk is None:
        return None
    return Incident.objects.select_for_update().filter(pk=pk).exclude(status=Status.RESOLVED).first()


def _ingest_ack_or_resolve(
    alert: Alert, integration: Integration, now: datetime, given_key: str
) -> IngestResult:
    incident = _open_incident_locked(alert.service_id, alert.dedup_key)
    if incident is None:
        incident = _open_incident_of_integration(integration, {alert.dedup_key, given_key})
        if incident is not None:
            alert.service_id, alert.dedup_key = incident.service_id, incident.dedup_key
    if incident is None:
        alert.outcome = Alert.Outcome.NO_OPEN_INCIDENT
        alert.outcome_detail = (
            f"No open incident with dedup key {alert.dedup_key!r} on {alert.service}: nothing changed"
        )
        alert.save(force_insert=True)
        return IngestResult(alert, None, alert.outcome, alert.outcome_detail)
    alert.incident = incident
    alert.save(force_insert=True)
    Incident.objects.filter(pk=incident.pk).update(alert_count=F("alert_count") + 1, last_alert_at=now)
    incident.alert_count += 1
    label = f"{integration.get_kind_display()} integration {integration.name!r}"
    if alert.action == AlertAction.ACKNOWLEDGE:
        changed = incident_acknowledge(
            incident=incident, user=None, via=Via.INTEGRATION, reason=f"by {label}", at=now
        )
        outcome = Alert.Outcome.ACKNOWLEDGED
        detail = f"Acknowledged {incident.ref}" if changed else f"{incident.ref} was already acknowledged"
    else:
        incident_resolve(incident=incident, user=None, via=Via.INTEGRATION, reason=f"by {label}", at=now)
        outcome = Alert.Outcome.RESOLVED
        detail = f"Resolved {incident.ref}"
    Alert.objects.filter(pk=alert.pk).update(outcome=outcome, outcome_detail=detail)
    alert.outcome, alert.outcome_detail = outcome, detail
    return IngestResult(alert, incident, outcome, detail)


def alert_store_failed(
    *, integration: Integration, event: AlertEvent, error: str, received_at: datetime | None = None
) -> Alert:
    """Keep an event whose processing raised, as it was received (before triage), so it
    is never lost; an operator can re-run it from the console (``alert_reprocess``)."""
    event = event_storable(event)
    if not event.dedup_key:
        event.dedup_key = uuid.uuid4().hex
    alert = alert_build(integration=integration, service=integration.service, event=event,
                        sent_key=event.dedup_key, window=None, at=received_at or timezone.now())
    alert.outcome = Alert.Outcome.FAILED
    alert.outcome_detail = error[:2000]
    alert.save(force_insert=True)
    return alert


def alert_reprocess(*, alert: Alert) -> IngestResult:
    """Run a failed alert through the pipeline again; the failed row is replaced."""
    if alert.outcome != Alert.Outcome.FAILED or alert.integration is None:
        raise ValueError("Only failed alerts from an integration can be re-processed.")
    event = AlertEvent(
        action=alert.action, summary=alert.summary, details=alert.details, severity=alert.severity,
        priority=alert.priority, dedup_key=alert.sent_dedup_key or alert.dedup_key, source=alert.source,
        labels=alert.labels, links=alert.links, payload=alert.payload,
    )
    with transaction.atomic():
        result = alert_ingest(integration=alert.integration, event=event, received_at=alert.received_at)
        alert.delete()
    return result


def change_event_record(
    *, integration: Integration, summary: str, source: str = "", details: dict | None = None,
    links: list | None = None, at: datetime | None = None,
) -> TimelineEntry:
    """A deploy or config change: context on the service's timeline, no incident."""
    return timeline_add(
        incident=None, service=integration.service, kind=Kind.CHANGE, via=Via.INTEGRATION,
        message=summary, at=at,
        data={"source": source, "details": details or {}, "links": links or [],
              "integration_id": integration.pk},
    )


# --------------------------------------------------------------------------- transitions


def _cas(incident: Incident, from_statuses: list[str], **values: Any) -> bool:
    """Compare-and-set the incident row; refresh the instance's fields on success."""
    values.setdefault("updated_at", timezone.now())  # .update() skips auto_now
    changed = Incident.objects.filter(pk=incident.pk, status__in=from_statuses).update(**values)
    if changed:
        for key, value in values.items():
            setattr(incident, key, value)
    return bool(changed)


def incident_acknowledge(
    *, incident: Incident, user: User | None, via: str, reason: str = "", at: datetime | None = None
) -> bool:
    """Triggered -> acknowledged. Returns False (and changes nothing) otherwise."""
    now = at or timezone.now()
    with transaction.atomic():
        if not _cas(incident, [Status.TRIGGERED], status=Status.ACKNOWLEDGED,
                    acknowledged_at=now, acknowledged_by=user):
            return False
        who = reason or f"by {_actor_name(user, via)}"
        timeline_add(incident=incident, kind=Kind.ACKNOWLEDGED, actor=user, via=via, at=now,
                     message=f"Acknowledged {who}{_via_suffix(via)}")
        send_on_commit(signals.incident_acknowledged, incident, user=user, via=via)
    return True


def incident_unacknowledge(*, incident: Incident, user: User | None, via: str) -> bool:
    with transaction.atomic():
        if not _cas(incident, [Status.ACKNOWLEDGED], status=Status.TRIGGERED,
                    acknowledged_at=None, acknowledged_by=None):
            return False
        timeline_add(incident=incident, kind=Kind.UNACKNOWLEDGED, actor=user, via=via,
                     message=f"Un-acknowledged by {_actor_name(user, via)}{_via_suffix(via)}")
        send_on_commit(signals.incident_unacknowledged, incident, user=user, via=via)
    return True


def incident_resolve(
    *, incident: Incident, user: User | None, via: str, reason: str = "", at: datetime | None = None
) -> bool:
    now = at or timezone.now()
    with transaction.atomic():
        if not _cas(incident, [Status.TRIGGERED, Status.ACKNOWLEDGED], status=Status.RESOLVED,
                    resolved_at=now, resolved_by=user):
            return False
        who = reason or f"by {_actor_name(user, via)}"
        timeline_add(incident=incident, kind=Kind.RESOLVED, actor=user, via=via, at=now,
                     message=f"Resolved {who}{_via_suffix(via)}")
        send_on_commit(signals.incident_resolved, incident, user=user, via=via)
    return True


class ReopenConflict(Exception):
    """Another incident with the same dedup key is already open on the service."""


def incident_reopen(*, incident: Incident, user: User | None, via: str) -> bool:
    now = timezone.now()
    try:
        with transaction.atomic():
            if not _cas(incident, [Status.RESOLVED], status=Status.TRIGGERED, resolved_at=None,
                        resolved_by=None, acknowledged_at=None, acknowledged_by=None,
                        mitigated_at=None):
                return False
            timeline_add(incident=incident, kind=Kind.REOPENED, actor=user, via=via, at=now,
                         message=f"Reopened by {_actor_name(user, via)}{_via_suffix(via)}")
            send_on_commit(signals.incident_triggered, incident, user=user, via=via, reopened=True)
    except IntegrityError:
        incident.refresh_from_db()
        raise ReopenConflict(
            f"Cannot reopen {incident.ref}: another incident with dedup key "
            f"{incident.dedup_key!r} is open on {incident.service}."
        ) from None
    return True


def incident_mitigate(*, incident: Incident, user: User | None, via: str) -> bool:
    """Record that impact has stopped (the fix may still be pending); once only."""
    now = timezone.now()
    with transaction.atomic():
        changed = Incident.objects.filter(
            pk=incident.pk, status__in=[Status.TRIGGERED, Status.ACKNOWLEDGED], mitigated_at__isnull=True
        ).update(mitigated_at=now, updated_at=now)
        if not changed:
            return False
        incident.mitigated_at = now
        timeline_add(incident=incident, kind=Kind.MITIGATED, actor=user, via=via, at=now,
                     message=f"Marked mitigated by {_actor_name(user, via)}{_via_suffix(via)}")
        send_on_commit(signals.incident_updated, incident, user=user, via=via, fields=["mitigated_at"])
    return True


def incident_escalate(*, incident: Incident, user: User | None, via: str) -> bool:
    """Ask the escalation engine for the next step; an acknowledged incident goes back
    to triggered so the next person is really paged."""
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if locked.status == Status.RESOLVED:
            return False
        if locked.status == Status.ACKNOWLEDGED:
            _cas(incident, [Status.ACKNOWLEDGED], status=Status.TRIGGERED,
                 acknowledged_at=None, acknowledged_by=None)
        timeline_add(incident=incident, kind=Kind.ESCALATION, actor=user, via=via,
                     message=f"Escalation requested by {_actor_name(user, via)}{_via_suffix(via)}")
        send_on_commit(signals.incident_escalation_requested, incident, user=user, via=via)
    return True


def incident_add_note(*, incident: Incident, user: User | None, text: str, via: str) -> TimelineEntry:
    text = text.strip()
    if not text:
        raise ValueError("A note cannot be empty.")
    with transaction.atomic():
        entry = timeline_add(incident=incident, kind=Kind.NOTE, actor=user, via=via, message=text)
        send_on_commit(signals.incident_updated, incident, user=user, via=via, fields=["notes"])
    return entry


def _set_field(
    *, incident: Incident, field: str, value: str, kind: str, label: str, user: User | None, via: str
) -> bool:
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        old = getattr(locked, field)
        if old == value:
            return False
        Incident.objects.filter(pk=incident.pk).update(**{field: value, "updated_at": timezone.now()})
        setattr(incident, field, value)
        timeline_add(incident=incident, kind=kind, actor=user, via=via,
                     message=f"{label} changed from {old} to {value} by "
                     f"{_actor_name(user, via)}{_via_suffix(via)}")
        send_on_commit(signals.incident_updated, incident, user=user, via=via, fields=[field])
    return True


def incident_set_severity(*, incident: Incident, severity: str, user: User | None, via: str) -> bool:
    if severity not in Severity.values:
        raise ValueError(f"Unknown severity {severity!r}; use one of {', '.join(Severity.values)}.")
    return _set_field(incident=incident, field="severity", value=severity, kind=Kind.SEVERITY,
                      label="Severity", user=user, via=via)


def incident_set_priority(*, incident: Incident, priority: str, user: User | None, via: str) -> bool:
    if priority not in Priority.values:
        raise ValueError(f"Unknown priority {priority!r}; use one of {', '.join(Priority.values)}.")
    return _set_field(incident=incident, field="priority", value=priority, kind=Kind.PRIORITY,
                      label="Priority", user=user, via=via)


ROLE_LABELS = {"commander": "Incident commander", "communication_lead": "Communication lead"}


def incident_assign_roles(
    *, incident: Incident, user: User | None, via: str, **roles: Any
) -> list[str]:
    """Set ``commander``, ``communication_lead`` (a user or None), ``responders`` /
    ``stakeholders`` (iterables of users) and ``war_room_url``; return changed names."""
    changed: list[str] = []
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        for field, label in ROLE_LABELS.items():
            new_id = roles[field].pk if roles.get(field) else None
            if field in roles and getattr(locked, f"{field}_id") != new_id:
                setattr(locked, field, roles[field])
                changed.append(field)
                who = _actor_name(roles[field], Via.WEB) if roles[field] else "nobody"
                timeline_add(incident=incident, kind=Kind.ROLE, actor=user, via=via,
                             message=f"{label}: {who} (set by {_actor_name(user, via)})")
        if "war_room_url" in roles and roles["war_room_url"] != locked.war_room_url:
            locked.war_room_url = roles["war_room_url"] or ""
            changed.append("war_room_url")
            timeline_add(incident=incident, kind=Kind.ROLE, actor=user, via=via,
                         message=f"War room: {locked.war_room_url or 'removed'}")
        if changed:
            locked.save(update_fields=changed + ["updated_at"])
        for field in ("responders", "stakeholders"):
            if field not in roles:
                continue
            new = {u.pk: u for u in roles[field]}
            current = set(getattr(locked, field).values_list("pk", flat=True))
            if set(new) != current:
                getattr(locked, field).set(list(new.values()))
                changed.append(field)
                names = ", ".join(_actor_name(u, Via.WEB) for u in new.values()) or "nobody"
                timeline_add(incident=incident, kind=Kind.ROLE, actor=user, via=via,
                             message=f"{field.capitalize()}: {names}")
        if changed:
            send_on_commit(signals.incident_updated, incident, user=user, via=via, fields=changed)
    incident.refresh_from_db()
    return changed


# --------------------------------------------------------------------------- bulk


def incidents_bulk(
    *, incidents: list[Incident], action: Callable[..., bool], user: User | None, via: str
) -> int:
    return sum(1 for incident in incidents if action(incident=incident, user=user, via=via))



# --------------------------------------------------------------------------- declared by hand


def incident_declare(
    *, service: Service, title: str, severity: str, priority: str = "", description: str = "",
    user: User | None, via: str,
) -> Incident:
    """Open an incident by hand (a customer report, an outage a person noticed): no
    alert, a dedup key of its own so no alert ever joins it by accident."""
    title = title.strip()
    if not title:
        raise ValueError("An incident needs a title.")
    if severity not in Severity.values:
        raise ValueError(f"Unknown severity {severity!r}; use one of {', '.join(Severity.values)}.")
    if priority and priority not in Priority.values:
        raise ValueError(f"Unknown priority {priority!r}; use one of {', '.join(Priority.values)}.")
    now = timezone.now()
    with transaction.atomic():
        window = service_in_maintenance(service_id=service.pk, at=now)
        incident = Incident.objects.create(
            number=counter_next(name="incident"), team_id=service.team_id, service=service,
            title=title[:1024],
            description=description.strip(), severity=severity,
            priority=priority or DEFAULT_PRIORITY_FOR_SEVERITY[severity],
            dedup_key=f"declared-{uuid.uuid4().hex}", in_maintenance=window is not None,
            triggered_at=now,
        )
        timeline_add(incident=incident, kind=Kind.TRIGGERED, actor=user, via=via, at=now,
                     message=f"Declared by {_actor_name(user, via)}{_via_suffix(via)} "
                     f"({incident.severity}, {incident.priority})")
        send_on_commit(signals.incident_triggered, incident, user=user, via=via, reopened=False)
    return incident
