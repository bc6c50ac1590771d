"""The ingestion queue: how an accepted event becomes an alert.

The endpoints validate an event and store it with ``events_enqueue`` (one INSERT into
``QueuedEvent``, committed before the 2xx), so a request costs little whatever the
incident state. The applier (a thread of ``manage.py clock``, ``queue_applier_run``)
takes the oldest queued events in batches and applies them with the same rules as
``services.alert_ingest``: triage, dedup into the open incident, timeline, signals on
commit. A batch pays once for what events share (rules, maintenance windows, the
open incidents and their row locks, the inserts) instead of once per event. On
PostgreSQL the repeats of open incidents, triaged already by the endpoint, are added
first by one set-based statement (``incidents.batch_repeats``); ``AlertBatch`` applies
the rest.

Order is kept: batches run one at a time (a counter row is updated first, which
serializes appliers on PostgreSQL and SQLite alike), in id order, and inside a batch
every event that is not a plain repeat of an open incident (a new incident, an
acknowledge, a resolve) goes through ``alert_ingest`` itself after the repeats before
it are written. If a batch fails for any reason but the database being unreachable,
it is rolled back and its events are applied one by one, each failure kept as a
FAILED alert (never lost, re-processable from the console); an event the database
refuses even as a failed alert stays in the queue with its error, out of the applier's
way (console: Queued events).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime
from typing import Any

from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.utils import timezone

from incidents.alert_batch import AlertBatch, Queued, orphan_store
from incidents.batch_repeats import batch_repeats_add
from incidents.endpoint_route import event_triaged
from incidents.events import AlertEvent, event_encode, event_from_json
from incidents.models import Integration, QueuedEvent
from incidents.queue_insert import group_commit
from incidents.services import alert_ingest, alert_store_failed
from ircore.counters import counter_next
from ircore.lookups import any_of_sql

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# How long an idle applier waits before looking again: the added latency of a quiet
# system, and 20 cheap primary-key look-ups a second.
IDLE_WAIT_SECONDS = 0.05
# After a batch that did not fill up, wait until this long after its start: under load,
# events then arrive in batches of a few hundred, whose fixed costs (rules, windows,
# locks, statements) are shared, instead of a trickle of tiny ones that cost several
# times more per event. It is the most an event waits for a busy applier.
BATCH_INTERVAL_SECONDS = 0.2
# After an error the applier waits, from the first to the most.
ERROR_PAUSE_MIN_SECONDS = 0.5
ERROR_PAUSE_MAX_SECONDS = 5.0


def events_enqueue(
    *, integration: Integration, events: list[AlertEvent], received_at: datetime | None = None,
    body: tuple[Any, bytes] | None = None,
) -> list[str]:
    """Store validated events durably (one INSERT, its own commit unless the caller
    holds a transaction); return their dedup keys. A key is generated here for an event
    without one, so the sender gets the key it can acknowledge or resolve with later.

    ``body``: the request's parsed JSON and its bytes. An event whose payload is that
    whole body (a PagerDuty event, a one-alert notification) stores the bytes as its
    payload instead of encoding the same value again, if they are plain ASCII (then they
    are UTF-8 text, and an unstorable escape in them is found as in json.dumps's output)."""
    at = received_at or timezone.now()
    raw = None
    if body is not None and body[1].isascii() and b"\x00" not in body[1]:  # no UTF-16/32 either
        raw = body[1].decode("ascii")
    rows, keys = [], []
    for event in events:
        if not event.dedup_key:
            event.dedup_key = uuid.uuid4().hex
        as_received = raw if raw is not None and event.payload is body[0] else None
        stored, text, payload = event_encode(event, payload_text=as_received)
        rows.append((integration.pk, integration.service_id, text, payload, at,
                     *event_triaged(integration, stored)))
        keys.append(stored.dedup_key)
    # A plain INSERT rather than bulk_create (this is the whole database work of an
    # ingestion request, and the ORM's statement building costs twice the insert),
    # shared with the process's other requests of the moment (queue_insert).
    group_commit.insert(rows)
    return keys


def queue_health(*, now: datetime | None = None) -> dict[str, int | float | None]:
    """What waits in the queue: events, the age of the oldest, and events that could not
    be applied (for the console's dashboard and /healthz)."""
    now = now or timezone.now()
    waiting = QueuedEvent.objects.filter(error="")
    oldest = waiting.order_by("id").values_list("received_at", flat=True).first()
    return {
        "waiting": waiting.count(),
        "oldest_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
        "stuck": QueuedEvent.objects.exclude(error="").count(),
    }


# Beyond this, the dashboard says the applier is not keeping up (or no clock runs).
QUEUE_LAG_WARNING_SECONDS = 30


# --------------------------------------------------------------------------- applying


def queue_apply_batch(*, limit: int = BATCH_SIZE) -> int:
    """Apply up to ``limit`` of the oldest queued events; return how many."""
    if not _waiting_any():  # idle polling stays a read
        return 0
    with transaction.atomic():
        counter_next(name="alert-queue-batch")  # one batch at a time, in id order
        try:
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    added, others = batch_repeats_add(limit)
                    items = _waiting_by_id(others)
                else:
                    added, items = [], _waiting_oldest(limit)
                if items:
                    AlertBatch(items).apply()
            done = handled = [*added, *(item.pk for item in items)]
        except (OperationalError, InterfaceError):
            raise  # the database is gone: the events stay queued for the next try
        except Exception:  # noqa: BLE001 - one bad event must not block the queue
            items = _waiting_oldest(limit)
            log.exception("Applying a batch of %d queued events failed; applying them one by one",
                          len(items))
            handled = items  # kept as failed alerts, or marked in the queue
            done = [item.pk for item in items if _apply_alone(item)]
        _queue_delete(done)
    return len(handled)


# The applier's reads and deletes of the queue are plain SQL: the ORM compiled each of
# them anew for every batch (about 1 ms of CPU apiece on a slow machine, more than the
# statements' own cost), and the idle applier polls 20 times a second.
_QUEUE = QueuedEvent._meta.db_table


def _waiting_any() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {_QUEUE} WHERE error = '' LIMIT 1")
        return cursor.fetchone() is not None


# Queued's fields, in order.
_SELECT_QUEUED = f"SELECT id, integration_id, service_id, event, payload, received_at FROM {_QUEUE}"


def _waiting_oldest(limit: int) -> list[Queued]:
    return _queued_rows(f"{_SELECT_QUEUED} WHERE error = '' ORDER BY id LIMIT %s", [limit])


def _queued_rows(sql: str, params: list) -> list[Queued]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # SQLite hands back datetimes as text; Django's converter makes them aware ones.
    convert = getattr(connection.ops, "convert_datetimefield_value", None)
    if convert is None:
        return [Queued(*row) for row in rows]
    return [Queued(*row[:-1], convert(row[-1], None, connection)) for row in rows]


def _waiting_by_id(pks: list[int]) -> list[Queued]:
    if not pks:
        return []
    where, params = any_of_sql("id", pks, connection.vendor)
    return _queued_rows(f"{_SELECT_QUEUED} WHERE {where} ORDER BY id", params)


def _queue_delete(pks: list[int]) -> None:
    if not pks:
        return
    where, params = any_of_sql("id", pks, connection.vendor)  # one parameter: no SQLite limit to mind
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_QUEUE} WHERE {where}", params)


def queue_drain(*, limit: int = BATCH_SIZE) -> int:
    """Apply queued events until none is left (tests, the benchmark, ``manage.py
    alerts_apply``); return how many."""
    total = 0
    while applied := queue_apply_batch(limit=limit):
        total += applied
    return total


def queue_applier_run(
    stop: threading.Event, *, idle_wait: float = IDLE_WAIT_SECONDS, interval: float = BATCH_INTERVAL_SECONDS
) -> None:
    """The applier loop: full batches back to back, a partial one every ``interval``,
    a look every ``idle_wait`` while the queue is empty, a pause after an error."""
    log.info("alert queue applier started")
    pause = 0.0
    while not stop.is_set():
        started = time.monotonic()
        try:
            applied = queue_apply_batch()
        except DatabaseError:
            # Doubling from 0.5 s: a lock that was busy for a moment (SQLite) or a brief
            # failover costs half a second, a database that stays down one try per 5 s.
            pause = min(ERROR_PAUSE_MAX_SECONDS, max(ERROR_PAUSE_MIN_SECONDS, pause * 2))
            log.exception("alert queue applier: database error, retrying in %g s", pause)
            close_old_connections()
            stop.wait(pause)
            continue
        except Exception:  # noqa: BLE001 - the loop must outlive any bug
            pause = ERROR_PAUSE_MAX_SECONDS
            log.exception("alert queue applier failed; retrying in %g s", pause)
            stop.wait(pause)
            continue
        pause = 0.0
        if not applied:
            close_old_connections()
            stop.wait(idle_wait)
        elif applied < BATCH_SIZE:
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
    connection.close()


def _apply_alone(item: Queued) -> bool:
    """Apply one event in its own savepoint; if that fails, keep it as a FAILED alert.
    False if even that failed: the event then stays in the queue, marked."""
    event = event_from_json(item.event, item.payload)
    integration = Integration.objects.select_related("service").filter(pk=item.integration_id).first()
    try:
        with transaction.atomic():
            if integration is None:
                orphan_store(item, event)
            else:
                alert_ingest(integration=integration, event=event, received_at=item.received_at)
        return True
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:  # noqa: BLE001 - keep the event whatever went wrong
        log.exception("Applying queued event %s failed", item.pk)
        error = repr(exc)
    try:
        with transaction.atomic():
            if integration is not None:
                alert_store_failed(integration=integration, event=event_from_json(item.event, item.payload),
                                   error=error, received_at=item.received_at)
                return True
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:  # noqa: BLE001
        log.critical("Queued event %s can neither be applied nor kept as an alert; it stays queued",
                     item.pk, exc_info=True)
        error = f"{error}; keeping it as a failed alert failed too: {exc!r}"
    QueuedEvent.objects.filter(pk=item.pk).update(error=error[:4000])
    return False
