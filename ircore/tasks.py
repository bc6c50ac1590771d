"""Enqueueing django-q2 tasks so that none is lost while the broker is unreachable.

Why: with REDIS_URL the broker is Redis, and django-q2's ``async_task`` raises while
Redis cannot be reached. Most tasks are enqueued in ``transaction.on_commit``, after the
change is committed, so the request answered 500 for a change that was made, and work
that no clock job sweeps from the database (a status page update's subscriber
notifications, a subscription's confirmation email) was lost.

``task_enqueue`` is the one way the apps enqueue: on a connection-level error (the set
ircore.cache degrades on, timeouts included) it stores the task in the outbox
(``OutboxTask``), warns once per outage and returns; the clock job ``outbox_flush``
hands stored tasks to the broker once it answers. Any other error is a bug or a
misconfiguration and still raises. After a failure a process leaves the broker alone
for RETRY_SECONDS (tasks go straight to the outbox), so a broker that hangs costs one
socket timeout per second, not one per task.

Delivery is at least once. The clock locks a row, hands it to the broker, deletes it and
commits, one row per transaction: a clock killed (or a database lost) between the
hand-over and the commit leaves the row, which is handed over again. At most once (delete,
commit, then enqueue) would lose the task in that window, and not losing tasks is the
point. Every task enqueued here is safe to run twice (fenced escalation steps, sends
claimed by compare-and-set, status page deliveries claimed through their
``SubscriberDelivery`` row, inbound messages taken only while ``received``, exports).

Order: the clock hands rows over in created order (with several clocks, each takes the
next unlocked row). Tasks enqueued directly once the broker answers again may run
before older ones still in the outbox; no task here depends on another's order.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

from ircore.breaker import Breaker
from ircore.cache import UNREACHABLE

log = logging.getLogger(__name__)

# Rows handed over per clock tick: a long outage's backlog must not hold up the
# clock's other jobs (escalations) for long; the rest goes on the next ticks.
FLUSH_LIMIT = 500
# How long a process leaves an unreachable broker alone (as ircore.cache does for Redis).
RETRY_SECONDS = 1.0


# The broker's reachability as this process last saw it (see ircore.breaker): after a
# failure tasks go straight to the outbox for RETRY_SECONDS, then one call tries again.
outage = Breaker(
    retry_seconds=RETRY_SECONDS,
    log=log,
    down_message="Task broker unreachable (%s): tasks are kept in the database (OutboxTask) "
                 "and handed over by the clock once it answers",
    up_message="Task broker reachable again",
)


def _encode(func: str, args: tuple, options: dict[str, Any]) -> str:
    # Always, not only during an outage: arguments the outbox could not store must fail
    # every time, not only when Redis is down.
    if not isinstance(func, str):
        raise TypeError("task_enqueue takes the task's dotted path, not a callable")
    return json.dumps([func, list(args), options], sort_keys=True, separators=(",", ":"))


def task_enqueue(func: str, *args: Any, **options: Any) -> str | None:
    """``async_task(func, *args, **options)`` that never loses the task to a broker
    outage. Returns the task id, or None when the task was stored for later."""
    encoded = _encode(func, args, options)
    error = "broker unreachable a moment ago: not tried"
    if outage.allowed():
        try:
            task_id = async_task(func, *args, **options)
        except UNREACHABLE as exc:
            outage.failed(exc)
            error = f"{type(exc).__name__}: {exc}"
        else:
            outage.answered()
            return task_id
    from ircore.models import OutboxTask

    # ignore_conflicts: the same task already waiting is kept once (OutboxTask.key),
    # without an IntegrityError breaking a surrounding transaction.
    OutboxTask.objects.bulk_create([OutboxTask(
        func=func, args=list(args), options=options, last_error=error[:1000],
        key=hashlib.sha256(encoded.encode()).hexdigest(),
    )], ignore_conflicts=True)
    return None


def outbox_flush(now: datetime) -> int:
    """Clock job: hand stored tasks to the broker in created order, deleting each once
    handed over (at least once: see the module docstring). Stops at the first failure:
    a connection error means the broker is still down (next tick tries again); any other
    error is recorded on the row and raised for the clock's log."""
    from ircore.models import OutboxTask

    brokers: dict[str | None, Broker] = {}  # one connection per flush, not one per task
    handed = 0
    while handed < FLUSH_LIMIT and outage.allowed():
        error: Exception | None = None
        with transaction.atomic():
            # SKIP LOCKED: several clocks share the backlog and never hand one row over twice.
            row = OutboxTask.objects.select_for_update(skip_locked=True).order_by("pk").first()
            if row is None:
                break
            cluster = row.options.get("cluster")
            try:
                if cluster not in brokers:
                    brokers[cluster] = get_broker(cluster)
                async_task(row.func, *row.args, broker=brokers[cluster], **row.options)
            except Exception as exc:  # noqa: BLE001 - kept on the row, then reported below
                error = exc
                OutboxTask.objects.filter(pk=row.pk).update(
                    attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:1000]
                )
            else:
                row.delete()
        if error is not None:
            if isinstance(error, UNREACHABLE):
                outage.failed(error)
                return handed
            raise error
        outage.answered()
        handed += 1
    return handed
