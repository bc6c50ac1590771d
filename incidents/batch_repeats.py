"""The applier's first step on PostgreSQL: repeats of open incidents, added in one
statement per batch.

Most of an alert stream repeats incidents that are already open, and for those the
applier's Python (decode, triage, build the rows) cost more CPU than the database's
writes. The endpoint has already triaged each event (``endpoint_route``, the queue's
``triaged_*`` columns), so one statement can do what ``AlertBatch._group`` does for all
of them: an alert with the outcome "grouped", its "Alert received" timeline entry, the
incident's alert count and last alert time. The batch's other events are left in the
queue for ``AlertBatch``, in order. An event is added here only if

- the endpoint found it a plain trigger (not an acknowledge or resolve, not suppressed:
  ``triaged_severity`` is set);
- its incident is open (locked here, ``FOR UPDATE``, in id order like ``AlertBatch``);
- it does not raise the incident's severity (that change sends a signal: ``AlertBatch``);
- its integration still exists;
- every event before it in the batch for the same incident was added here too (a
  running ``bool_and``), and none before it in the whole batch is an acknowledge or
  resolve (which may act on an incident of another key: the one its integration's
  trigger was re-keyed to) or lacks the triaged columns (queued by an older version),
  so no event overtakes one it follows.

The alert's columns come from the queued event's JSON as ``services.alert_values``
decides them; a test compares both ways column by column.
"""

from __future__ import annotations

from django.db import connection

from incidents.models import (
    Alert,
    AlertAction,
    Incident,
    Integration,
    MaintenanceWindow,
    QueuedEvent,
    TimelineEntry,
)
from incidents.services import GROUPED_DETAIL_PREFIX, NO_SUMMARY, alert_received_message


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _length(field: str) -> int:
    """The alert column's length, which ``alert_values`` cuts values to."""
    return Alert._meta.get_field(field).max_length  # type: ignore[return-value]


def _sql() -> str:
    incident = Incident._meta.db_table
    window_services = MaintenanceWindow.services.through._meta.db_table
    grouped_detail = _literal(GROUPED_DETAIL_PREFIX + Incident.REF_PREFIX)  # services.grouped_detail
    return f"""
WITH batch AS (
    SELECT id, integration_id, triaged_service_id, triaged_key, triaged_severity, triaged_priority, event,
           payload, received_at
    FROM {QueuedEvent._meta.db_table} WHERE error = '' ORDER BY id LIMIT %s
),
open AS (
    SELECT i.id, i.number, i.service_id, i.dedup_key, i.severity FROM {incident} i
    WHERE (i.service_id, i.dedup_key) IN (SELECT triaged_service_id, triaged_key FROM batch
                                          WHERE triaged_severity <> '')
      AND i.status <> {_literal(Incident.Status.RESOLVED)}
    ORDER BY i.id FOR UPDATE OF i
),
verdict AS (
    SELECT b.*, o.id AS incident_id, o.number,
        bool_and(COALESCE(b.triaged_severity <> '' AND b.payload <> '' AND o.id IS NOT NULL
                          AND b.triaged_severity >= o.severity AND g.id IS NOT NULL, false))
            OVER (PARTITION BY b.triaged_service_id, b.triaged_key ORDER BY b.id)
        AND bool_and(b.triaged_service_id IS NOT NULL AND b.triaged_key <> '') OVER (ORDER BY b.id)
        AS grouped
    FROM batch b
    LEFT JOIN open o ON o.service_id = b.triaged_service_id AND o.dedup_key = b.triaged_key
    LEFT JOIN {Integration._meta.db_table} g ON g.id = b.integration_id
),
repeats AS (
    SELECT v.*, v.event::jsonb AS e FROM verdict v WHERE v.grouped
),
alerts AS (
    INSERT INTO {Alert._meta.db_table} (integration_id, service_id, incident_id, action, dedup_key,
        sent_dedup_key, summary, details, severity, priority, source, labels, links, payload, outcome,
        outcome_detail, in_maintenance, received_at)
    SELECT r.integration_id, r.triaged_service_id, r.incident_id, {_literal(AlertAction.TRIGGER)},
        r.triaged_key, left(r.e->>'dedup_key', {_length("sent_dedup_key")}),
        left(coalesce(nullif(r.e->>'summary', ''), {_literal(NO_SUMMARY)}), {_length("summary")}),
        coalesce(r.e->>'details', ''), r.triaged_severity, r.triaged_priority,
        left(coalesce(r.e->>'source', ''), {_length("source")}),
        coalesce(r.e->'labels', '{{}}'), coalesce(r.e->'links', '[]'), r.payload::jsonb,
        {_literal(Alert.Outcome.GROUPED)}, {grouped_detail} || r.number,
        EXISTS (SELECT 1 FROM {window_services} s
                JOIN {MaintenanceWindow._meta.db_table} w ON w.id = s.maintenancewindow_id
                WHERE s.service_id = r.triaged_service_id AND w.starts_at <= r.received_at
                  AND w.ends_at > r.received_at),
        r.received_at
    FROM repeats r ORDER BY r.id
    RETURNING id, incident_id, service_id, summary, received_at
),
entries AS (
    INSERT INTO {TimelineEntry._meta.db_table} (incident_id, service_id, kind, message, via, data, created_at)
    SELECT incident_id, service_id, {_literal(TimelineEntry.Kind.ALERT)},
        {_literal(alert_received_message(""))} || summary, {_literal(TimelineEntry.Via.INTEGRATION)},
        jsonb_build_object('alert_id', id), received_at
    FROM alerts ORDER BY id
),
counted AS (
    UPDATE {incident} i SET alert_count = i.alert_count + c.n,
        last_alert_at = GREATEST(i.last_alert_at, c.at), updated_at = GREATEST(i.updated_at, c.at)
    FROM (SELECT incident_id, count(*) AS n, max(received_at) AS at FROM repeats GROUP BY incident_id) c
    WHERE i.id = c.incident_id
)
SELECT id, grouped FROM verdict ORDER BY id
"""


_STATEMENT = _sql()


def batch_repeats_add(limit: int) -> tuple[list[int], list[int]]:
    """Add the repeats among the oldest ``limit`` waiting events (inside the caller's
    transaction); return the ids of the events added and of the others, in order."""
    with connection.cursor() as cursor:
        cursor.execute(_STATEMENT, [limit])
        rows = cursor.fetchall()
    return [pk for pk, grouped in rows if grouped], [pk for pk, grouped in rows if not grouped]
