"""Sending Notification rows through the transports, with retries; updates to the
people paged; contact-method verification and test messages."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from incidents.models import Incident, TimelineEntry
from incidents.services import timeline_add
from oncall import escalation as engine
from oncall.models_escalation import ContactMethod, Escalation, Notification, new_code
from oncall.transports import TransportError, deliver

log = logging.getLogger(__name__)
Status = Notification.Status
MAX_ATTEMPTS = 5


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the n-th failed attempt: 15 s, 1 min, 4 min, 16 min."""
    return timedelta(seconds=15 * 4 ** (attempts - 1))


def _claim_one(notification_id: int, now: datetime) -> Notification | None:
    claimed = Notification.objects.filter(
        pk=notification_id, status=Status.PENDING, due_at__lte=now
    ).update(status=Status.SENDING, claimed_until=now + timedelta(seconds=settings.ONCALL_SEND_LEASE_SECONDS))
    if not claimed:
        return None
    return (Notification.objects.select_related("incident__service", "incident__team", "user",
                                                "contact_method", "webhook").get(pk=notification_id))


def _still_wanted(note: Notification) -> str:
    """Why a page should not go out any more ('' if it should)."""
    if note.kind != Notification.Kind.PAGE or note.incident is None:
        return ""
    if note.incident.status != Incident.Status.TRIGGERED:
        return f"incident {note.incident.status} before it was sent"
    return ""


def _who(note: Notification) -> str:
    if note.user is not None:
        return note.user.get_full_name() or note.user.get_username()
    return f"webhook {note.webhook.name}" if note.webhook else note.address


def notification_send(*, notification_id: int, at: datetime | None = None) -> str:
    """Send one notification if it is due and nobody else is sending it. Returns the
    resulting status ('' when there was nothing to do)."""
    now = at or timezone.now()
    note = _claim_one(notification_id, now)
    if note is None:
        return ""
    reason = _still_wanted(note)
    if reason:
        Notification.objects.filter(pk=note.pk).update(
            status=Status.CANCELLED, error=reason, claimed_until=None
        )
        return Status.CANCELLED
    attempts = note.attempts + 1
    try:
        result = deliver(note)
    except TransportError as exc:
        final = not exc.retry or attempts >= MAX_ATTEMPTS
        status = Status.FAILED if final else Status.PENDING
        with transaction.atomic():
            Notification.objects.filter(pk=note.pk).update(
                status=status, attempts=attempts, error=str(exc)[:2000], claimed_until=None,
                due_at=note.due_at if final else now + retry_delay(attempts),
            )
            if note.incident is not None:
                retry = "gave up" if final else f"retrying in {int(retry_delay(attempts).total_seconds())} s"
                timeline_add(incident=note.incident, kind=TimelineEntry.Kind.WARNING, at=now,
                             message=f"Could not notify {_who(note)} by {note.channel} "
                             f"(attempt {attempts}, {retry}): {exc}",
                             data={"notification_id": note.pk})
        log.warning("notification %s failed (attempt %s): %s", note.pk, attempts, exc)
        return status
    with transaction.atomic():
        Notification.objects.filter(pk=note.pk).update(
            status=Status.SENT, attempts=attempts, sent_at=timezone.now(), claimed_until=None,
            message_id=result[:200] if note.channel == Notification.Channel.EMAIL else "", error="",
        )
        if note.incident is not None and note.kind in (Notification.Kind.PAGE, Notification.Kind.UPDATE):
            what = "Notified" if note.kind == Notification.Kind.PAGE else f"Sent the {note.event} update to"
            timeline_add(incident=note.incident, kind=TimelineEntry.Kind.NOTIFICATION, at=now,
                         message=f"{what} {_who(note)} by {note.channel} ({note.address})",
                         data={"notification_id": note.pk})
    return Status.SENT


def notifications_due_dispatch(now: datetime) -> int:
    """Clock job: pages whose rule delay has passed, retries whose backoff is over, and
    sends that a crashed worker left half-way (their lease ran out)."""
    Notification.objects.filter(status=Status.SENDING, claimed_until__lt=now).update(
        status=Status.PENDING, claimed_until=None
    )
    rows = engine._claim(
        Notification.objects.filter(status=Status.PENDING, due_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)).order_by("due_at"),
        now,
    )
    for row in rows:
        engine.enqueue("oncall.tasks.notification_send", row.pk)
    return len(rows)


def _enqueue_on_commit(ids: list[int]) -> None:
    if ids:
        transaction.on_commit(lambda: [engine.enqueue("oncall.tasks.notification_send", i) for i in ids])


def updates_create(*, incident: Incident, event: str, at: datetime | None = None) -> list[int]:
    """A short "acknowledged by X" / "resolved" to everyone paged for this incident
    (once per person and contact method), unless they opted out on that method."""
    now = at or timezone.now()
    stamp = incident.acknowledged_at if event == "acknowledged" else incident.resolved_at
    marker = int((stamp or now).timestamp())
    paged = (Notification.objects.filter(incident=incident, kind=Notification.Kind.PAGE, status=Status.SENT)
             .select_related("contact_method", "webhook"))
    created: list[int] = []
    with transaction.atomic():
        seen: set[str] = set()
        for page in paged:
            if page.contact_method is not None and not page.contact_method.send_updates:
                continue
            tail = f"c{page.contact_method_id}" if page.contact_method_id else f"w{page.webhook_id}"
            if tail in seen or tail in ("cNone", "wNone"):
                continue
            seen.add(tail)
            note, new = Notification.objects.get_or_create(
                key=f"update:{incident.pk}:{event}:{marker}:{tail}",
                defaults={"incident": incident, "kind": Notification.Kind.UPDATE, "event": event,
                          "user": page.user, "contact_method": page.contact_method, "webhook": page.webhook,
                          "channel": page.channel, "address": page.address, "due_at": now},
            )
            if new:
                created.append(note.pk)
        _enqueue_on_commit(created)
    return created


def contact_method_send_verification(*, contact_method: ContactMethod) -> Notification:
    """Send a code; the person proves they receive messages there by entering it."""
    now = timezone.now()
    with transaction.atomic():
        ContactMethod.objects.filter(pk=contact_method.pk).update(
            verification_code=new_code(), verification_sent_at=now
        )
        contact_method.refresh_from_db()
    return _send_now(contact_method, Notification.Kind.VERIFY, now)


def contact_method_verify(*, contact_method: ContactMethod, code: str) -> bool:
    code = (code or "").strip()
    if not code or not contact_method.verification_code:
        return False
    sent = contact_method.verification_sent_at
    if sent and timezone.now() - sent > timedelta(days=1):
        return False
    changed = ContactMethod.objects.filter(pk=contact_method.pk, verification_code=code).update(
        verified_at=timezone.now(), verification_code=""
    )
    contact_method.refresh_from_db()
    return bool(changed)


def contact_method_send_test(*, contact_method: ContactMethod) -> Notification:
    return _send_now(contact_method, Notification.Kind.TEST, timezone.now())


def _send_now(contact_method: ContactMethod, kind: str, now: datetime) -> Notification:
    """A one-off message to ``contact_method`` (test, verification code), sent in this
    request so the caller can show the outcome."""
    note = Notification.objects.create(
        key=f"{kind}:{contact_method.pk}:{now.timestamp()}", kind=kind,
        user=contact_method.user, contact_method=contact_method, channel=contact_method.kind,
        address=contact_method.address, due_at=now,
    )
    notification_send(notification_id=note.pk)
    note.refresh_from_db()
    return note


def escalation_summary(incident: Any) -> dict[str, Any] | None:
    """For the console and the API: where the escalation is and who was reached."""
    try:
        esc = incident.escalation
    except Escalation.DoesNotExist:
        return None
    steps = esc.steps
    return {
        "state": esc.state, "chain": esc.frozen.get("name", ""), "generation": esc.generation,
        "next_step": esc.step_index + 1 if esc.state == "active" else None, "steps": len(steps),
        "loop": esc.loop + 1, "loops": int(esc.frozen.get("repeat", 0)) + 1, "next_at": esc.next_at,
        "warning": esc.warning, "stop_reason": esc.stop_reason,
    }
