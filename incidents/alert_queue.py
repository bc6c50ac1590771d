"""The ingestion queue: how an accepted event becomes an alert.

The endpoints validate an event and store it with ``events_enqueue`` (one INSERT into
``QueuedEvent``, committed before the 2xx), so a request costs little whatever the
incident state. The applier (a thread of ``manage.py clock``, ``queue_applier_run``)
takes the oldest queued events in batches and applies them with the same rules as
``services.alert_ingest``: triage, dedup into the open incident, timeline, signals on
commit. A batch pays once for what events share (rules, maintenance windows, the
open incidents and their row locks, the inserts) instead of once per event.

Order is kept: batches run one at a time (a counter row is updated first, which
serializes appliers on PostgreSQL and SQLite alike), in id order, and inside a batch
every event that is not a plain repeat of an open incident (a new incident, an
acknowledge, a resolve) goes through ``alert_ingest`` itself after the repeats before
it are written. If a batch fails for any reason but the database being unreachable,
it is rolled back and its events are applied one by one, each failure kept as a
FAILED alert (never lost, re-processable from the console).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.utils import timezone

from incidents import signals
from incidents.events import DEFAULT_PRIORITY_FOR_SEVERITY, AlertEvent
from incidents.models import (
    Alert,
    AlertAction,
    Incident,
    Integration,
    MaintenanceWindow,
    QueuedEvent,
    Service,
    TimelineEntry,
    TriageRule,
)
from incidents.services import (
    SEVERITY_RANK,
    alert_build,
    alert_ingest,
    alert_mark_suppressed,
    alert_store_failed,
)
from incidents.triage import TriageResult, triage_apply
from ircore.counters import counter_next

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# How long an idle applier waits before looking again: the added latency of a quiet
# system, and 20 cheap primary-key look-ups a second.
IDLE_WAIT_SECONDS = 0.05

_EVENT_FIELDS = ("action", "summary", "details", "severity", "priority", "dedup_key", "source",
                 "labels", "links", "payload")


def event_dumps(event: AlertEvent) -> str:
    return json.dumps({name: getattr(event, name) for name in _EVENT_FIELDS}, default=str)


def event_loads(text: str) -> AlertEvent:
    data = json.loads(text)
    return AlertEvent(**{name: data[name] for name in _EVENT_FIELDS if name in data})


def events_enqueue(
    *, integration: Integration, events: list[AlertEvent], received_at: datetime | None = None
) -> list[str]:
    """Store validated events durably (one INSERT, its own commit unless the caller
    holds a transaction); return their dedup keys. A key is generated here for an event
    without one, so the sender gets the key it can acknowledge or resolve with later."""
    now = received_at or timezone.now()
    rows = []
    for event in events:
        if not event.dedup_key:
            event.dedup_key = uuid.uuid4().hex
        rows.append(QueuedEvent(integration_id=integration.pk, service_id=integration.service_id,
                                event=event_dumps(event), received_at=now))
    QueuedEvent.objects.bulk_create(rows)
    return [event.dedup_key for event in events]


# --------------------------------------------------------------------------- applying


def queue_apply_batch(*, limit: int = BATCH_SIZE) -> int:
    """Apply up to ``limit`` of the oldest queued events; return how many."""
    if not QueuedEvent.objects.exists():  # idle polling stays a read
        return 0
    with transaction.atomic():
        counter_next(name="alert-queue-batch")  # one batch at a time, in id order
        items = list(QueuedEvent.objects.order_by("id")[:limit])
        if not items:
            return 0
        try:
            with transaction.atomic():
                _Batch(items).apply()
        except (OperationalError, InterfaceError):
            raise  # the database is gone: the events stay queued for the next try
        except Exception:  # noqa: BLE001 - one bad event must not block the queue
            log.exception("Applying a batch of %d queued events failed; applying them one by one",
                          len(items))
            for item in items:
                _apply_alone(item)
        QueuedEvent.objects.filter(pk__in=[item.pk for item in items]).delete()
    return len(items)


def queue_drain(*, limit: int = BATCH_SIZE) -> int:
    """Apply queued events until none is left (tests, the benchmark, ``manage.py
    alerts_apply``); return how many."""
    total = 0
    while applied := queue_apply_batch(limit=limit):
        total += applied
    return total


def queue_applier_run(stop: threading.Event, *, idle_wait: float = IDLE_WAIT_SECONDS) -> None:
    """The applier loop: a batch as soon as the previous one is done, a short wait when
    the queue is empty, a longer one after a database error."""
    log.info("alert queue applier started")
    while not stop.is_set():
        try:
            applied = queue_apply_batch()
        except DatabaseError:
            log.exception("alert queue applier: database error, retrying in 5 s")
            close_old_connections()
            stop.wait(5)
            continue
        except Exception:  # noqa: BLE001 - the loop must outlive any bug
            log.exception("alert queue applier failed; retrying in 5 s")
            stop.wait(5)
            continue
        if not applied:
            close_old_connections()
            stop.wait(idle_wait)
    connection.close()


def _apply_alone(item: QueuedEvent) -> None:
    event = event_loads(item.event)
    integration = Integration.objects.select_related("service").filter(pk=item.integration_id).first()
    try:
        with transaction.atomic():
            if integration is None:
                _store_orphan(item, event)
            else:
                alert_ingest(integration=integration, event=event, received_at=item.received_at)
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:  # noqa: BLE001 - keep the event whatever went wrong
        log.exception("Applying queued event %s failed", item.pk)
        if integration is not None:
            alert_store_failed(integration=integration, event=event_loads(item.event), error=repr(exc))


def _store_orphan(item: QueuedEvent, event: AlertEvent) -> None:
    """The integration was deleted between the 2xx and the batch: keep the alert on
    its service (if that still exists), marked failed, rather than drop it."""
    if not Service.objects.filter(pk=item.service_id).exists():
        log.warning("Dropping queued event %s: its integration and service were deleted", item.pk)
        return
    alert = alert_build(integration=None, service=Service(pk=item.service_id), event=event, window=None,
                        at=item.received_at)
    alert.outcome = Alert.Outcome.FAILED
    alert.outcome_detail = "The integration was deleted before this event was applied."
    alert.save(force_insert=True)


@dataclass
class _Plan:
    item: QueuedEvent
    integration: Integration | None
    event: AlertEvent  # as received, for alert_ingest
    triaged: AlertEvent  # after triage rules
    triage: TriageResult
    service: Service


class _Batch:
    """One transaction's worth of queued events. Repeats of an open incident (the
    bulk of any alert stream) are collected and written together; everything else
    goes through ``alert_ingest`` in order."""

    def __init__(self, items: list[QueuedEvent]) -> None:
        self.items = items
        self.alerts: list[Alert] = []
        self.severity_entries: dict[int, TimelineEntry] = {}  # by position in self.alerts
        self.deltas: dict[int, list] = {}  # incident pk -> [alerts added, last alert at, raised severity]
        self.open: dict[tuple[int, str], Incident] = {}

    def apply(self) -> None:
        plans = self._plan()
        windows = self._windows(plans)
        self._lock_open_incidents(plans)
        for plan in plans:
            key = (plan.service.pk, plan.triaged.dedup_key[:255])
            if plan.integration is None:
                self._flush()
                _store_orphan(plan.item, plan.event)
            elif plan.triage.suppress:
                window = self._window_at(windows, plan)
                alert = self._alert(plan, window)
                alert_mark_suppressed(alert, ", ".join(rule.name for rule in plan.triage.applied))
                self.alerts.append(alert)
            elif plan.triaged.action == AlertAction.TRIGGER and key in self.open:
                self._group(plan, self.open[key], self._window_at(windows, plan))
            else:
                self._flush()
                self._ingest_alone(plan)
        self._flush()

    # ------------------------------------------------------------------ reading

    def _plan(self) -> list[_Plan]:
        integrations = Integration.objects.select_related("service").in_bulk(
            {item.integration_id for item in self.items}
        )
        teams = {i.service.team_id for i in integrations.values()}
        rules: dict[int, list[TriageRule]] = {team: [] for team in teams}
        for rule in TriageRule.objects.filter(team_id__in=teams, enabled=True).order_by("position", "id"):
            rules[rule.team_id].append(rule)
        plans = []
        for item in self.items:
            event = event_loads(item.event)
            integration = integrations.get(item.integration_id)
            if integration is None:
                plans.append(_Plan(item, None, event, event, TriageResult(), Service(pk=item.service_id)))
                continue
            service = integration.service
            # triage_apply changes the event it is given; alert_ingest needs the original.
            triaged = replace(event)
            result = triage_apply(rules[service.team_id], triaged, service_id=service.pk,
                                  integration_id=integration.pk)
            if not triaged.priority:
                triaged.priority = DEFAULT_PRIORITY_FOR_SEVERITY[triaged.severity]
            plans.append(_Plan(item, integration, event, triaged, result, service))
        routes = {p.triage.route_to_service_id for p in plans if p.triage.route_to_service_id}
        if routes:
            routed = Service.objects.in_bulk(routes)
            for plan in plans:
                target = routed.get(plan.triage.route_to_service_id)
                # Only within the team, as alert_ingest does.
                if target is not None and target.team_id == plan.service.team_id:
                    plan.service = target
        return plans

    def _windows(self, plans: list[_Plan]) -> dict[int, list[MaintenanceWindow]]:
        """The maintenance windows of the batch's services that overlap its time span,
        in ``service_in_maintenance``'s order (soonest end first); one query."""
        times = [p.item.received_at for p in plans]
        links = (
            MaintenanceWindow.services.through.objects.filter(
                service_id__in={p.service.pk for p in plans},
                maintenancewindow__starts_at__lte=max(times),
                maintenancewindow__ends_at__gt=min(times),
            )
            .select_related("maintenancewindow")
            .order_by("maintenancewindow__ends_at")
        )
        by_service: dict[int, list[MaintenanceWindow]] = {}
        for link in links:
            by_service.setdefault(link.service_id, []).append(link.maintenancewindow)
        return by_service

    @staticmethod
    def _window_at(windows: dict[int, list[MaintenanceWindow]], plan: _Plan) -> MaintenanceWindow | None:
        at = plan.item.received_at
        for window in windows.get(plan.service.pk, ()):
            if window.starts_at <= at < window.ends_at:
                return window
        return None

    def _lock_open_incidents(self, plans: Iterable[_Plan]) -> None:
        triggers = [p for p in plans if p.triaged.action == AlertAction.TRIGGER and p.integration]
        if not triggers:
            return
        wanted = {(p.service.pk, p.triaged.dedup_key[:255]) for p in triggers}
        rows = (
            Incident.objects.select_for_update()
            .filter(service_id__in={s for s, _ in wanted}, dedup_key__in={k for _, k in wanted})
            .exclude(status=Incident.Status.RESOLVED)
            .order_by("pk")  # the same lock order in every batch
        )
        for incident in rows:
            self.open[(incident.service_id, incident.dedup_key)] = incident

    # ------------------------------------------------------------------ writing

    def _alert(self, plan: _Plan, window: MaintenanceWindow | None) -> Alert:
        return alert_build(integration=plan.integration, service=plan.service, event=plan.triaged,
                           window=window, at=plan.item.received_at)

    def _group(self, plan: _Plan, incident: Incident, window: MaintenanceWindow | None) -> None:
        """What ``alert_ingest`` does for a trigger with an open incident, deferred to
        ``_flush``."""
        alert = self._alert(plan, window)
        alert.incident = incident
        alert.outcome = Alert.Outcome.GROUPED
        alert.outcome_detail = f"Added to {incident.ref}"
        at = plan.item.received_at
        delta = self.deltas.setdefault(incident.pk, [0, at, None])
        delta[0] += 1
        delta[1] = max(delta[1], at)
        if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[incident.severity]:
            self.severity_entries[len(self.alerts)] = TimelineEntry(
                incident=incident, service_id=incident.service_id, kind=TimelineEntry.Kind.SEVERITY,
                via=TimelineEntry.Via.SYSTEM, created_at=at, data={},
                message=f"Severity raised from {incident.severity} to {alert.severity} by a new alert",
            )
            incident.severity = delta[2] = alert.severity
            transaction.on_commit(
                lambda incident=incident: signals.incident_updated.send(
                    sender=Incident, incident=incident, user=None, via=TimelineEntry.Via.INTEGRATION,
                    fields=["severity"],
                )
            )
        self.alerts.append(alert)

    def _ingest_alone(self, plan: _Plan) -> None:
        assert plan.integration is not None
        result = alert_ingest(integration=plan.integration, event=plan.event,
                              received_at=plan.item.received_at)
        incident = result.incident
        if incident is None:
            return
        key = (incident.service_id, incident.dedup_key)
        if incident.status == Incident.Status.RESOLVED:
            self.open.pop(key, None)
        else:
            self.open[key] = incident  # created or locked by alert_ingest in this transaction

    def _flush(self) -> None:
        if not self.alerts:
            return
        Alert.objects.bulk_create(self.alerts)
        entries = []
        for position, alert in enumerate(self.alerts):
            if alert.incident_id is None:
                continue
            entries.append(TimelineEntry(
                incident_id=alert.incident_id, service_id=alert.service_id, kind=TimelineEntry.Kind.ALERT,
                via=TimelineEntry.Via.INTEGRATION, created_at=alert.received_at,
                message=f"Alert received: {alert.summary}", data={"alert_id": alert.pk},
            ))
            if position in self.severity_entries:
                entries.append(self.severity_entries[position])
        TimelineEntry.objects.bulk_create(entries)
        self._update_incidents()
        self.alerts, self.severity_entries, self.deltas = [], {}, {}

    def _update_incidents(self) -> None:
        """One statement for every incident the flushed alerts joined (executemany: a
        single round trip with psycopg's pipeline)."""
        if not self.deltas:
            return
        ops = connection.ops
        now = ops.adapt_datetimefield_value(timezone.now())
        table = connection.ops.quote_name(Incident._meta.db_table)
        sql = (
            f"UPDATE {table} SET alert_count = alert_count + %s, last_alert_at = %s, updated_at = %s, "
            "severity = COALESCE(%s, severity) WHERE id = %s"
        )
        rows = [
            (count, ops.adapt_datetimefield_value(last_at), now, severity, pk)
            for pk, (count, last_at, severity) in self.deltas.items()
        ]
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
