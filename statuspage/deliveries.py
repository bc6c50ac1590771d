"""Delivery records for subscriber notifications (the on-call Notification pattern):
the fan-out makes one SubscriberDelivery row per subscriber, and a delivery task
sends only after claiming its row with a compare-and-set and a lease. A repeated task
(django-q2 re-running it, the outbox handing it over twice, the fan-out running
twice) finds the row sent or claimed and sends nothing; the clock hands back to a task
the sends a crashed worker left half-way (lease run out) and the rows whose task was
lost (still pending a lease later)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from ircore.tasks import task_enqueue
from statuspage.models import ComponentStatusChange, PublicUpdate, Subscriber, SubscriberDelivery
from statuspage.subscribers import WebhookRefused

log = logging.getLogger(__name__)
Status = SubscriberDelivery.Status
# Far longer than a send takes (webhook timeout 10 s, SMTP a few seconds): a lease that
# runs out while the worker is still sending would let a second worker send again.
LEASE_SECONDS = 300
# Rows the clock hands back per tick; the rest on the next ticks.
REQUEUE_LIMIT = 500
UPDATE_TASK = "statuspage.tasks.deliver_update"
CHANGE_TASK = "statuspage.tasks.deliver_component_change"


def _lease() -> timedelta:
    return timedelta(seconds=getattr(settings, "STATUSPAGE_SEND_LEASE_SECONDS", LEASE_SECONDS))


def _row(subscriber: Subscriber, **target: PublicUpdate | ComponentStatusChange) -> SubscriberDelivery:
    return SubscriberDelivery(
        subscriber=subscriber, channel=subscriber.kind, address=str(subscriber), **target
    )


def deliveries_create(
    *, subscribers: Iterable[Subscriber], update: PublicUpdate | None = None,
    change: ComponentStatusChange | None = None,
) -> list[int]:
    """Make the rows that are missing; the ids of the subscribers still to be told
    (rows pending or failed: a second fan-out retries what failed, never what was sent)."""
    target = {"update": update} if update is not None else {"change": change}
    subscribers = list(subscribers)
    SubscriberDelivery.objects.bulk_create([_row(s, **target) for s in subscribers], ignore_conflicts=True)
    return list(
        SubscriberDelivery.objects.filter(
            **target, subscriber__in=subscribers, status__in=[Status.PENDING, Status.FAILED]
        ).order_by("pk").values_list("subscriber_id", flat=True)
    )


def _claim(pk: int, now: datetime) -> datetime | None:
    """The lease when this worker may send the row, else None (sent, skipped, or being
    sent by a worker whose lease still runs)."""
    until = now + _lease()
    claimable = Q(status__in=[Status.PENDING, Status.FAILED]) | Q(
        status=Status.SENDING, claimed_until__lt=now
    )
    claimed = SubscriberDelivery.objects.filter(claimable, pk=pk).update(
        status=Status.SENDING, claimed_until=until
    )
    return until if claimed else None


def _finish(pk: int, until: datetime, *, status: str, error: str = "") -> None:
    # Only while the claim is still ours: a worker whose lease ran out must not
    # overwrite what the worker that took the row over recorded.
    mine = SubscriberDelivery.objects.filter(pk=pk, status=Status.SENDING, claimed_until=until)
    changes: dict = {"status": status, "error": error[:2000], "claimed_until": None}
    if status != Status.SKIPPED:
        changes["attempts"] = F("attempts") + 1
    if status == Status.SENT:
        changes["sent_at"] = timezone.now()
        # A send that succeeded is recorded even if the lease ran out meanwhile.
        mine = SubscriberDelivery.objects.filter(pk=pk).exclude(status=Status.SENT)
    mine.update(**changes)


def delivery_run(*, row: SubscriberDelivery, send: Callable[[], str]) -> str:
    """Claim ``row``, call ``send`` (returns "email" / "webhook" / "skipped", raises on
    failure) and record the outcome. A failure is recorded and raised again so
    django-q2 retries the task; a refused webhook (private address) is recorded and
    raised as WebhookRefused, which the task does not retry."""
    until = _claim(row.pk, timezone.now())
    if until is None:
        status = SubscriberDelivery.objects.filter(pk=row.pk).values_list("status", flat=True).first()
        return "already sent" if status == Status.SENT else f"not sent: {status or 'gone'}"
    try:
        result = send()
    except WebhookRefused as exc:
        _finish(row.pk, until, status=Status.FAILED, error=f"refused: {exc}")
        raise
    except Exception as exc:
        _finish(row.pk, until, status=Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        log.warning("delivery %s to %s failed: %s", row.pk, row.address, exc)
        raise
    _finish(row.pk, until, status=Status.SKIPPED if result == "skipped" else Status.SENT)
    return result


def delivery_for(
    *, subscriber_id: int, update_id: int | None = None, change_id: int | None = None
) -> SubscriberDelivery | None:
    """The row a task works on; made here for tasks queued before the rows existed (or
    whose fan-out row was lost). None when the subscriber or the update/change is gone."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if update_id is not None:
        target = {"update": PublicUpdate.objects.filter(pk=update_id).first()}
    else:
        target = {"change": ComponentStatusChange.objects.filter(pk=change_id).first()}
    if subscriber is None or None in target.values():
        return None
    row = SubscriberDelivery.objects.filter(subscriber=subscriber, **target).first()
    if row is None:
        SubscriberDelivery.objects.bulk_create([_row(subscriber, **target)], ignore_conflicts=True)
        row = SubscriberDelivery.objects.filter(subscriber=subscriber, **target).first()
    return row


def _unsent(now: datetime) -> Q:
    """Rows no task is going to send any more: sends a crashed worker left in ``sending``
    past their lease, and rows still ``pending`` after the time their task was given
    (``claimed_until`` of a pending row; a lease after the fan-out made it). A pending row
    outlives its task when the task was lost: a worker killed during the fan-out, before
    it queued every task, or a broker that lost a task it had taken."""
    return (
        Q(status__in=[Status.SENDING, Status.PENDING], claimed_until__lt=now)
        | Q(status=Status.PENDING, claimed_until__isnull=True, created_at__lt=now - _lease())
    )


def deliveries_stuck_requeue(now: datetime) -> int:
    """Clock job: rows no task is going to send (``_unsent``) go back to pending and to a
    task, which has a lease's time to take them before they are handed on again. A row
    handed to two tasks is still sent once (``_claim``). One index lookup when nothing
    waits."""
    stuck = list(
        SubscriberDelivery.objects.filter(_unsent(now))
        .order_by("claimed_until", "pk")
        .values_list("pk", "subscriber_id", "update_id", "change_id")[:REQUEUE_LIMIT]
    )
    handed = 0
    for pk, subscriber_id, update_id, change_id in stuck:
        # Compare-and-set: with several clocks, one of them hands the row on.
        if not SubscriberDelivery.objects.filter(_unsent(now), pk=pk).update(
            status=Status.PENDING, claimed_until=now + _lease()
        ):
            continue
        if update_id is not None:
            task_enqueue(UPDATE_TASK, update_id, subscriber_id)
        else:
            task_enqueue(CHANGE_TASK, change_id, subscriber_id)
        handed += 1
    return handed
