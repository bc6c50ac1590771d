"""One batch of queued events, applied in one transaction (see ``incidents.alert_queue``).

Repeats of an open incident (the bulk of any alert stream) are collected and written
together: one multi-row INSERT (COPY) for their alerts, one for their timeline entries,
one UPDATE for their incidents. Everything else (a new incident, an
acknowledge, a resolve, an event whose integration is gone) goes through
``services.alert_ingest``'s own code, in order, after the repeats before it are written
(``alert_ingest_known``: given the rules, windows and open incidents the batch read).
The writes are plain SQL because the ORM's per-object work (model instances, field
preparation, PostgreSQL's UNNEST arrays quoted in Python) cost more than the database
work itself; the values still come from ``services.alert_values``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from django.db import connection, models

from incidents import signals
from incidents.events import (
    DEFAULT_PRIORITY_FOR_SEVERITY,
    AlertEvent,
    RawJSON,
    event_from_json,
    payload_decoded,
)
from incidents.models import (
    Alert,
    AlertAction,
    Incident,
    Integration,
    MaintenanceWindow,
    Service,
    TimelineEntry,
    TriageRule,
)
from incidents.services import (
    SEVERITY_RANK,
    IngestKnown,
    alert_build,
    alert_ingest_known,
    alert_received_message,
    alert_values,
    grouped_detail,
    send_on_commit,
    service_in_maintenance,
    severity_raised_message,
    suppressed_detail,
)
from incidents.triage import TriageResult, triage_apply
from ircore.lookups import any_of_sql

log = logging.getLogger(__name__)

Kind = TimelineEntry.Kind
Via = TimelineEntry.Via

ALERT_COLUMNS = ("integration_id", "service_id", "incident_id", "action", "dedup_key", "sent_dedup_key",
                 "summary", "details", "severity", "priority", "source", "labels", "links", "payload",
                 "outcome", "outcome_detail", "in_maintenance", "received_at")
# What the batch reads of an open incident it may group alerts into, in the model's
# field order (as Model.from_db expects a subset of the fields).
_OPEN_INCIDENT_FIELDS = tuple(
    f.attname for f in Incident._meta.concrete_fields
    if f.attname in {"id", "number", "service_id", "dedup_key", "severity", "status"}
)


class _Locked:
    """An open incident the batch holds locked, with the few fields grouping reads:
    building a model instance of ~30 fields for each cost more than grouping an alert
    into it. ``incident()`` builds one when a signal is sent about it."""

    __slots__ = (*_OPEN_INCIDENT_FIELDS, "_instance")
    ref = Incident.ref

    def __init__(self, row: Sequence[Any]) -> None:
        for name, value in zip(_OPEN_INCIDENT_FIELDS, row, strict=True):
            setattr(self, name, value)
        self._instance: Incident | None = None

    @property
    def pk(self) -> int:
        return self.id  # type: ignore[attr-defined]

    def incident(self) -> Incident:
        """The model instance, the same one every time, with the severity set here."""
        if self._instance is None:
            values = [getattr(self, name) for name in _OPEN_INCIDENT_FIELDS]
            self._instance = Incident.from_db(connection.alias, _OPEN_INCIDENT_FIELDS, values)
        self._instance.severity = self.severity  # type: ignore[attr-defined]
        return self._instance


TIMELINE_COLUMNS = ("incident_id", "service_id", "kind", "message", "via", "data", "created_at")


class Queued(NamedTuple):
    """A queued event as the applier reads it (``QueuedEvent``'s columns): a plain row,
    as building a model instance per event cost more than reading it."""

    pk: int
    integration_id: int
    service_id: int
    event: str
    payload: str
    received_at: datetime


@dataclass
class Plan:
    item: Queued
    integration: Integration | None
    event: AlertEvent  # as received, for alert_ingest
    triaged: AlertEvent  # after triage rules
    triage: TriageResult
    service_id: int
    team_id: int | None

    @property
    def key(self) -> tuple[int, str]:
        return self.service_id, self.triaged.dedup_key[:255]


@dataclass
class _Pending:
    """Alerts and incident changes collected for the next flush."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    severity_entries: dict[int, tuple] = field(default_factory=dict)  # by position in alerts
    # A new incident's opening timeline entries, by the position of the alert that
    # opened it (which gets no "Alert received" entry).
    opening_entries: dict[int, list[tuple]] = field(default_factory=dict)
    deltas: dict[int, list] = field(default_factory=dict)  # incident pk -> [count, last at, severity]


class AlertBatch:
    def __init__(self, items: list[Queued]) -> None:
        self.items = items
        self.pending = _Pending()
        self.open: dict[tuple[int, str], Incident | _Locked] = {}
        self.rules: dict[int, list[TriageRule]] = {}
        # The maintenance windows of the services in `covered` over the `span` of
        # received_at times (see _windows).
        self.windows: dict[int, list[MaintenanceWindow]] = {}
        self.covered: set[int] = set()
        self.span: tuple[datetime, datetime] | None = None

    def apply(self) -> None:
        plans = self._plan()
        self.windows = self._windows(plans)
        self._lock_open_incidents(plans)
        for plan in plans:
            if plan.integration is None:
                self._flush()
                orphan_store(plan.item, payload_decoded(plan.event))
            elif plan.triage.suppress:
                self._collect(plan, self._window_at(plan), None, Alert.Outcome.SUPPRESSED,
                              suppressed_detail(plan.triage.applied))
            elif plan.triaged.action == AlertAction.TRIGGER and plan.key in self.open:
                self._group(plan, self.open[plan.key], self._window_at(plan))
            else:
                self._ingest_alone(plan)
        self._flush()

    # ------------------------------------------------------------------ reading

    def _plan(self) -> list[Plan]:
        integrations = Integration.objects.select_related("service").in_bulk(
            {item.integration_id for item in self.items}
        )
        teams = {i.service.team_id for i in integrations.values()}
        rules: dict[int, list[TriageRule]] = {team: [] for team in teams}
        self.rules = rules  # also for alert_ingest_known, as team_rules would read them
        for rule in TriageRule.objects.filter(team_id__in=teams, enabled=True).order_by("position", "id"):
            rules[rule.team_id].append(rule)
        plans = []
        for item in self.items:
            # The payload stays JSON text: an alert grouped into an open incident is
            # written with it as it is (_json_text); _ingest_alone decodes it.
            event = event_from_json(item.event, item.payload, raw_payload=True)
            integration = integrations.get(item.integration_id)
            if integration is None:
                plans.append(Plan(item, None, event, event, TriageResult(), item.service_id, None))
                continue
            service = integration.service
            team_rules = rules[service.team_id]
            # triage_apply changes the event it is given; alert_ingest needs the original
            # (without rules there is nothing to change: the default priority set below is
            # the one alert_ingest would set).
            triaged = replace(event) if team_rules else event
            result = triage_apply(team_rules, triaged, service_id=service.pk, integration_id=integration.pk)
            if not triaged.priority:
                triaged.priority = DEFAULT_PRIORITY_FOR_SEVERITY[triaged.severity]
            plans.append(Plan(item, integration, event, triaged, result, service.pk, service.team_id))
        routes = {p.triage.route_to_service_id for p in plans if p.triage.route_to_service_id}
        if routes:
            teams_of = dict(Service.objects.filter(pk__in=routes).values_list("pk", "team_id"))
            for plan in plans:
                target = plan.triage.route_to_service_id
                # Only within the team, as alert_ingest does.
                if target in teams_of and teams_of[target] == plan.team_id:
                    plan.service_id = target
        return plans

    def _windows(self, plans: list[Plan]) -> dict[int, list[MaintenanceWindow]]:
        """The maintenance windows of the batch's services that overlap its time span,
        in ``service_in_maintenance``'s order (soonest end first); one query."""
        times = [p.item.received_at for p in plans]
        self.span = (min(times), max(times))
        self.covered = {p.service_id for p in plans}
        links = (
            MaintenanceWindow.services.through.objects.filter(
                service_id__in=self.covered,
                maintenancewindow__starts_at__lte=max(times),
                maintenancewindow__ends_at__gt=min(times),
            )
            .select_related("maintenancewindow")
            .order_by("maintenancewindow__ends_at", "maintenancewindow_id")
        )
        by_service: dict[int, list[MaintenanceWindow]] = {}
        for link in links:
            by_service.setdefault(link.service_id, []).append(link.maintenancewindow)
        return by_service

    def _lock_open_incidents(self, plans: Iterable[Plan]) -> None:
        wanted = {p.key for p in plans if p.integration and p.triaged.action == AlertAction.TRIGGER}
        if not wanted:
            return
        # Plain SQL: the ORM compiled this statement anew for every batch, which cost
        # more CPU than running it. Only what _group and grouped_detail read is loaded.
        services = sorted({s for s, _ in wanted})
        keys = sorted({k for _, k in wanted})
        columns = ", ".join(_OPEN_INCIDENT_FIELDS)
        # Each list as one parameter: one statement text whatever the batch, which psycopg
        # parses once (an IN list of a few hundred placeholders was parsed anew every batch).
        by_service, service_params = any_of_sql("service_id", services, connection.vendor)
        by_key, key_params = any_of_sql("dedup_key", keys, connection.vendor)
        params = [*service_params, *key_params]
        sql = (
            f"SELECT {columns} FROM {Incident._meta.db_table}"
            f" WHERE {by_service} AND {by_key} AND status <> %s"
            " ORDER BY id"  # the same lock order in every batch
            f"{' FOR UPDATE' if connection.features.has_select_for_update else ''}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, Incident.Status.RESOLVED])
            rows = cursor.fetchall()
        for row in rows:
            locked = _Locked(row)
            self.open[(locked.service_id, locked.dedup_key)] = locked  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ writing

    def _collect(self, plan: Plan, window: MaintenanceWindow | None, incident: Incident | _Locked | None,
                 outcome: str, detail: str) -> dict[str, Any]:
        values = alert_values(integration_id=plan.integration.pk if plan.integration else None,
                              service_id=plan.service_id, event=plan.triaged, sent_key=plan.event.dedup_key,
                              in_maintenance=window is not None, at=plan.item.received_at)
        values.update(incident_id=incident.pk if incident else None, outcome=outcome, outcome_detail=detail)
        self.pending.alerts.append(values)
        return values

    def _group(self, plan: Plan, incident: Incident | _Locked, window: MaintenanceWindow | None) -> None:
        """What ``alert_ingest`` does for a trigger with an open incident, deferred to
        ``_flush``."""
        values = self._collect(plan, window, incident, Alert.Outcome.GROUPED, grouped_detail(incident))
        at = plan.item.received_at
        delta = self.pending.deltas.setdefault(incident.pk, [0, at, None])
        delta[0] += 1
        delta[1] = max(delta[1], at)
        severity = values["severity"]
        if SEVERITY_RANK[severity] < SEVERITY_RANK[incident.severity]:
            self.pending.severity_entries[len(self.pending.alerts) - 1] = (
                incident.pk, incident.service_id, Kind.SEVERITY,
                severity_raised_message(incident.severity, severity), Via.SYSTEM, {}, at,
            )
            incident.severity = delta[2] = severity
            instance = incident.incident() if isinstance(incident, _Locked) else incident
            send_on_commit(signals.incident_updated, instance, user=None, via=Via.INTEGRATION,
                           fields=["severity"])

    def _ingest_alone(self, plan: Plan) -> None:
        assert plan.integration is not None and plan.team_id is not None
        # What the batch read is passed on rather than read again for this event: the
        # same rules give the same triage, so the same service and key. A trigger gets
        # here only without an open incident in self.open, whose row locks the batch
        # holds (_lock_open_incidents) and which follows every incident it opens or
        # resolves. Opening that incident reads and writes nothing the pending repeats
        # touch, so they stay pending and its alert and timeline entries join them
        # (write_later); for anything else alert_ingest_known writes them first (flush).
        # alert_ingest reads the payload as a value: decoded once, shared as replace() shared it.
        plan.triaged.payload = payload_decoded(plan.event).payload
        trigger = plan.triaged.action == AlertAction.TRIGGER
        none_open = plan.key if trigger and plan.key not in self.open else None
        known = IngestKnown(rules=self.rules[plan.team_id], window_at=self._window_for, none_open=none_open,
                            write_later=self._write_later, flush=self._flush)
        result = alert_ingest_known(integration=plan.integration, event=plan.event,
                                    received_at=plan.item.received_at, known=known)
        incident = result.incident
        if incident is None:
            return
        key = (incident.service_id, incident.dedup_key)
        if incident.status == Incident.Status.RESOLVED:
            self.open.pop(key, None)
        else:
            self.open[key] = incident  # created or locked by alert_ingest in this transaction

    def _write_later(self, alert: Alert, entries: list[dict[str, Any]]) -> None:
        """A new incident's alert and timeline entries, written by the next _flush
        (which comes before any other event but a repeat is applied)."""
        self.pending.alerts.append({column: getattr(alert, column) for column in ALERT_COLUMNS})
        self.pending.opening_entries[len(self.pending.alerts) - 1] = [
            (alert.incident_id, alert.service_id, e["kind"], e["message"], e["via"], e["data"], e["at"])
            for e in entries
        ]

    def _window_at(self, plan: Plan) -> MaintenanceWindow | None:
        return self._window_for(plan.service_id, plan.item.received_at)

    def _window_for(self, service_id: int, at: datetime) -> MaintenanceWindow | None:
        """``service_in_maintenance`` from the windows read for the batch; a read of its
        own for a service or time the batch's read did not cover."""
        if self.span is None or service_id not in self.covered or not self.span[0] <= at <= self.span[1]:
            return service_in_maintenance(service_id=service_id, at=at)
        for window in self.windows.get(service_id, ()):
            if window.covers(at):
                return window
        return None

    def _flush(self) -> None:
        pending, self.pending = self.pending, _Pending()
        if not pending.alerts:
            return
        ids = rows_insert(Alert, ALERT_COLUMNS, [tuple(a[c] for c in ALERT_COLUMNS) for a in pending.alerts],
                          returning_ids=True)
        entries = []
        for position, (alert, alert_id) in enumerate(zip(pending.alerts, ids, strict=True)):
            if position in pending.opening_entries:
                entries.extend(pending.opening_entries[position])
                continue
            if alert["incident_id"] is None:
                continue
            entries.append((alert["incident_id"], alert["service_id"], Kind.ALERT,
                            alert_received_message(alert["summary"]), Via.INTEGRATION, {"alert_id": alert_id},
                            alert["received_at"]))
            if position in pending.severity_entries:
                entries.append(pending.severity_entries[position])
        rows_insert(TimelineEntry, TIMELINE_COLUMNS, entries)
        _incidents_update(pending.deltas)


def orphan_store(item: Queued, event: AlertEvent) -> None:
    """The integration was deleted between the 2xx and the batch: keep the alert on
    its service (if that still exists), marked failed, rather than drop it."""
    if not Service.objects.filter(pk=item.service_id).exists():
        log.warning("Dropping queued event %s: its integration and service were deleted", item.pk)
        return
    alert = alert_build(integration=None, service=Service(pk=item.service_id), event=event,
                        sent_key=event.dedup_key, window=None, at=item.received_at)
    alert.outcome = Alert.Outcome.FAILED
    alert.outcome_detail = "The integration was deleted before this event was applied."
    alert.save(force_insert=True)


def _incidents_update(deltas: dict[int, list]) -> None:
    """The incidents the flushed alerts joined: alert count, last alert, severity.
    PostgreSQL: one UPDATE joined to the batch's values as arrays (a third of the CPU,
    client and server, of one UPDATE per incident even when pipelined); elsewhere one
    UPDATE per incident, sent as one executemany."""
    if not deltas:
        return
    table = connection.ops.quote_name(Incident._meta.db_table)
    # updated_at = the last alert's arrival, as alert_ingest sets it.
    if connection.vendor == "postgresql":
        ids, counts, ats, severities = zip(*((pk, *delta) for pk, delta in deltas.items()), strict=True)
        sql = (
            f"UPDATE {table} AS i SET alert_count = i.alert_count + d.n, last_alert_at = d.at, "
            "updated_at = d.at, severity = COALESCE(d.severity, i.severity) "
            "FROM unnest(%s::bigint[], %s::integer[], %s::timestamptz[], %s::varchar[]) "
            "AS d(id, n, at, severity) WHERE i.id = d.id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(ids), list(counts), list(ats), list(severities)])
        return
    sql = (
        f"UPDATE {table} SET alert_count = alert_count + %s, "
        "last_alert_at = %s, updated_at = %s, severity = COALESCE(%s, severity) WHERE id = %s"
    )
    adapt = connection.ops.adapt_datetimefield_value
    rows = [(count, adapt(at), adapt(at), severity, pk) for pk, (count, at, severity) in deltas.items()]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def rows_insert(model: type[models.Model], columns: Sequence[str], rows: list[tuple], *,
                returning_ids: bool = False) -> list[int]:
    """Insert ``rows`` (values by attribute name, in ``columns`` order); return the new
    primary keys in row order if asked.

    PostgreSQL: ids drawn from the table's sequence in one query, then COPY, which
    costs a third of an INSERT per row on both sides. Elsewhere: multi-row INSERTs
    (SQLite 3.35+ returns the ids in VALUES order)."""
    if not rows:
        return []
    ops = connection.ops
    fields = [model._meta.get_field(name.removesuffix("_id")) for name in columns]
    table = ops.quote_name(model._meta.db_table)
    pk = ops.quote_name(model._meta.pk.column)
    copying = connection.vendor == "postgresql"
    adapters = [_adapter(f, copy=copying) for f in fields]
    names = ", ".join(ops.quote_name(f.column) for f in fields)
    ids: list[int] = []
    with connection.cursor() as cursor:
        if copying:
            raw = cursor.cursor  # psycopg's own cursor, for COPY
            if returning_ids:
                raw.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                            [model._meta.db_table, model._meta.pk.column, len(rows)])
                ids = [row[0] for row in raw.fetchall()]
            with raw.copy(f"COPY {table} ({pk + ', ' if returning_ids else ''}{names}) FROM STDIN") as copy:
                for position, row in enumerate(rows):
                    values = tuple(_adapted(adapters, row))
                    copy.write_row((ids[position], *values) if returning_ids else values)
            return ids
        one = "(" + ", ".join(["%s"] * len(fields)) + ")"
        per_statement = max(1, (connection.features.max_query_params or 999) // len(fields))
        returning = f" RETURNING {pk}" if returning_ids else ""
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            params = [value for row in chunk for value in _adapted(adapters, row)]
            values = ", ".join([one] * len(chunk))
            cursor.execute(f"INSERT INTO {table} ({names}) VALUES {values}{returning}", params)
            if returning_ids:
                ids.extend(row[0] for row in cursor.fetchall())
    return ids


def _adapter(f: models.Field, *, copy: bool = False) -> Callable[[Any], Any] | None:
    ops = connection.ops
    if isinstance(f, models.JSONField):
        if copy:
            # COPY reads a JSON column as text: the encoded string itself, rather than the
            # Jsonb wrapper that psycopg then encodes through its own dumper (~7 % of the
            # applier's instructions per event, four JSON values each; callgrind).
            return partial(_json_text, encoder=f.encoder)
        return lambda value: value if isinstance(value, RawJSON) else ops.adapt_json_value(value, f.encoder)
    if isinstance(f, models.DateTimeField):
        return ops.adapt_datetimefield_value
    return None


def _json_text(value: Any, *, encoder: type[json.JSONEncoder] | None) -> str:
    if isinstance(value, RawJSON):  # a payload as the queue holds it
        return value
    # Empty labels and links are most of them: no encoder for those.
    if value == {} and isinstance(value, dict):
        return "{}"
    if value == [] and isinstance(value, list):
        return "[]"
    return json.dumps(value, cls=encoder)


def _adapted(adapters: list[Callable[[Any], Any] | None], row: tuple) -> Iterable[Any]:
    return (value if adapt is None or value is None else adapt(value)
            for adapt, value in zip(adapters, row, strict=True))
