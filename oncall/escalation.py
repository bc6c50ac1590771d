"""The escalation engine: pick a route and chain, freeze the chain into an
``Escalation``, run its steps on time, stop/restart it as the incident changes.

Exactly-once paging rests on three things: the escalation row is locked while a step
runs and its ``fence`` moves on every transition (a stale task or a second clock claim
finds a different fence and does nothing); every page is a ``Notification`` row whose
unique ``key`` names (incident, generation, step, loop, person, contact method), created
in the step's transaction; and a row is sent only by whoever moves it from pending to
sending (``oncall.notify``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from incidents.models import Incident, MaintenanceWindow, TimelineEntry
from incidents.services import timeline_add
from ircore.models import TeamMembership
from oncall.models import WEEKDAYS, Schedule
from oncall.models_escalation import (
    ContactMethod,
    Escalation,
    EscalationChain,
    EscalationRoute,
    Notification,
    NotificationRule,
    OutgoingWebhook,
    Urgency,
)
from oncall.selectors import schedules_oncall_at

log = logging.getLogger(__name__)
Kind = TimelineEntry.Kind
State = Escalation.State
HIGH_URGENCY = {"SEV1", "SEV2"}

# Enqueue hook: oncall.tasks replaces it with django-q2's async_task; kept as a module
# attribute so the engine has no import-time dependency on the queue.
enqueue: Callable[..., Any] = lambda func, *args: None  # noqa: E731


# --------------------------------------------------------------------------- routes


def _local_minutes(at: datetime, tz: str) -> tuple[str, int]:
    local = at.astimezone(ZoneInfo(tz))
    return WEEKDAYS[local.weekday()], local.hour * 60 + local.minute


def route_matches(route: EscalationRoute, incident: Incident, at: datetime, service_ids: set[int]) -> bool:
    if service_ids and incident.service_id not in service_ids:
        return False
    if route.severities and incident.severity not in route.severities:
        return False
    if route.priorities and incident.priority not in route.priorities:
        return False
    day, minutes = _local_minutes(at, route.timezone)
    if route.start_time is not None and route.end_time is not None:
        start = route.start_time.hour * 60 + route.start_time.minute
        end = route.end_time.hour * 60 + route.end_time.minute
        if end > start:
            inside = start <= minutes < end
            window_day = day
        else:  # past midnight: the window belongs to the day it started on
            inside = minutes >= start or minutes < end
            window_day = day if minutes >= start else WEEKDAYS[(WEEKDAYS.index(day) - 1) % 7]
        if not inside:
            return False
        day = window_day
    return not route.days or day in route.days


class RoutePick(NamedTuple):
    route: EscalationRoute | None
    chain: EscalationChain | None
    team_has_chains: bool  # whether nobody is paged because nothing is set up, or by the routes


def route_select(*, incident: Incident, at: datetime) -> RoutePick:
    # The model's ordering without its leading team__name, a constant here: the same
    # order without a join.
    routes = list(
        EscalationRoute.objects.filter(team_id=incident.team_id).order_by("position", "id")
        .select_related("chain").prefetch_related("services")
    )
    for route in routes:
        if route_matches(route, incident, at, {s.pk for s in route.services.all()}):
            return RoutePick(route, route.chain, True)
    # The default chain (at most one: a unique constraint) sorts first; any other chain
    # found says the team has chains, but no default: one query answers both.
    first = EscalationChain.objects.filter(team_id=incident.team_id).order_by("-is_default", "pk").first()
    return RoutePick(None, first if first is not None and first.is_default else None, first is not None)


def wait_until_next(route: EscalationRoute, at: datetime) -> datetime:
    """The next weekday (Mon-Fri) at ``route.wait_until`` local time after ``at``."""
    assert route.wait_until is not None
    tz = ZoneInfo(route.timezone)
    local = at.astimezone(tz)
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        candidate = datetime.combine(day, route.wait_until, tzinfo=tz)
        if candidate > local and candidate.weekday() < 5:
            return candidate.astimezone(at.tzinfo)
    return at


def chain_freeze(chain: EscalationChain) -> dict[str, Any]:
    steps = []
    for step in chain.steps.order_by("position", "id").prefetch_related("users", "schedules", "webhooks"):
        steps.append({
            "id": step.pk,
            "delay_minutes": step.delay_minutes,
            "user_ids": [u.pk for u in step.users.all()],
            "schedule_ids": [s.pk for s in step.schedules.all()],
            "webhook_ids": [w.pk for w in step.webhooks.all()],
            "notify_team": step.notify_team,
            "team_managers": step.team_managers,
        })
    return {"chain_id": chain.pk, "name": chain.name, "team_id": chain.team_id, "repeat": chain.repeat,
            "steps": steps}


# --------------------------------------------------------------------------- start / stop


def _after_commit_run(escalation: Escalation) -> None:
    esc_id, fence = escalation.pk, escalation.fence
    transaction.on_commit(lambda: enqueue("oncall.tasks.escalation_step", esc_id, fence))


def escalation_start(*, incident: Incident, restart: bool = False, reason: str = "",
                     at: datetime | None = None) -> Escalation | None:
    """Freeze the routed chain and schedule its first step. ``restart`` (reopen, ack
    timeout) starts a new generation so the same steps page again."""
    now = at or timezone.now()
    with transaction.atomic():
        # NO KEY UPDATE: a step inserting timeline rows (a key-share lock on the incident)
        # while holding its escalation row must not wait for us, nor we for it.
        # Whether a maintenance window covers now comes with it (as
        # incidents.services.service_in_maintenance would answer): one statement less.
        in_window = MaintenanceWindow.objects.filter(MaintenanceWindow.in_force_at(now),
                                                     services=OuterRef("service_id"))
        incident = (Incident.objects.select_for_update(no_key=True).select_related("service")
                    .annotate(window_now=Exists(in_window)).get(pk=incident.pk))
        if incident.status != Incident.Status.TRIGGERED:
            return None
        if incident.in_maintenance or incident.window_now:
            if restart:
                timeline_add(incident=incident, kind=Kind.MAINTENANCE, at=now,
                             message="Service is in maintenance: nobody is paged.")
            return None
        route, chain, team_has_chains = route_select(incident=incident, at=now)
        existing = Escalation.objects.select_for_update().filter(incident=incident).first()
        if existing is not None and not restart and existing.state == State.ACTIVE:
            return existing  # a duplicate trigger signal: already running
        escalation = existing or Escalation(incident=incident, started_at=now, generation=0)
        escalation.generation += 1
        escalation.chain, escalation.route = chain, route
        escalation.frozen = chain_freeze(chain) if chain else {"steps": [], "repeat": 0}
        escalation.step_index = escalation.loop = escalation.pages_sent = 0
        escalation.fence += 1
        escalation.started_at, escalation.claimed_until, escalation.ack_deadline = now, None, None
        escalation.stop_reason = escalation.warning = ""
        if chain is None:
            escalation.state, escalation.next_at = State.EXHAUSTED, None
            escalation.warning = ("No escalation route matched and the team has no default chain: "
                                  "nobody was paged.")
            escalation.save()
            # A team that has not set up escalation at all gets the warning on the
            # console only; one whose routes miss this incident gets it on the timeline.
            if team_has_chains:
                timeline_add(incident=incident, kind=Kind.WARNING, at=now, message=escalation.warning)
            return escalation
        escalation.state, escalation.next_at = State.ACTIVE, now
        how = f"route {route.name!r}" if route else "the team's default chain"
        message = f"{reason + ': ' if reason else ''}Escalating with chain {chain.name!r} ({how})"
        if route is not None and route.wait_until is not None:
            escalation.next_at = wait_until_next(route, now)
            local = escalation.next_at.astimezone(ZoneInfo(route.timezone))
            message += f"; first page held until {local:%a %Y-%m-%d %H:%M} {route.timezone}"
        escalation.save()
        timeline_add(incident=incident, kind=Kind.ESCALATION, at=now, message=message,
                     data={"chain_id": chain.pk, "generation": escalation.generation})
        if escalation.next_at <= now:
            _after_commit_run(escalation)
    return escalation


def escalation_stop(*, incident: Incident, reason: str) -> bool:
    with transaction.atomic():
        escalation = Escalation.objects.select_for_update().filter(incident_id=incident.pk).first()
        if escalation is None:
            return False
        changed = escalation.state == State.ACTIVE
        escalation.state, escalation.stop_reason = State.STOPPED, reason
        escalation.next_at = escalation.claimed_until = None
        escalation.fence += 1
        if reason == "resolved":
            escalation.ack_deadline = None
        escalation.save()
        # Pages not yet sent (delayed notification rules) are no longer needed.
        Notification.objects.filter(
            incident_id=incident.pk, kind=Notification.Kind.PAGE, status=Notification.Status.PENDING
        ).update(status=Notification.Status.CANCELLED, error=f"incident {reason} before it was sent")
    return changed


def escalation_set_ack_deadline(*, incident: Incident) -> None:
    minutes = incident.service.ack_timeout
    if not minutes or incident.acknowledged_at is None:
        return
    Escalation.objects.filter(incident_id=incident.pk).update(
        ack_deadline=incident.acknowledged_at + timedelta(minutes=minutes)
    )


def escalation_escalate(*, incident: Incident, at: datetime | None = None) -> Escalation | None:
    """Manual escalate: run the next step now (the incident is already triggered again)."""
    now = at or timezone.now()
    with transaction.atomic():
        escalation = Escalation.objects.select_for_update().filter(incident_id=incident.pk).first()
        if escalation is None:
            return escalation_start(incident=incident, at=now)
        if not escalation.steps:
            timeline_add(incident=incident, kind=Kind.WARNING, at=now,
                         message="Escalation requested, but there is no chain with steps to escalate to.")
            return escalation
        if escalation.state == State.EXHAUSTED:
            # Past the last step: go round again, as one more loop.
            escalation.step_index, escalation.loop = 0, escalation.loop + 1
        escalation.state, escalation.stop_reason = State.ACTIVE, ""
        escalation.next_at, escalation.claimed_until, escalation.ack_deadline = now, None, None
        escalation.fence += 1
        escalation.save()
        _after_commit_run(escalation)
    return escalation


# --------------------------------------------------------------------------- running a step


def _urgency(incident: Incident) -> str:
    return Urgency.HIGH if incident.severity in HIGH_URGENCY else Urgency.LOW


def user_channels(user: Any, urgency: str) -> list[tuple[ContactMethod, int]]:
    """(contact method, delay minutes) to reach ``user``: their rules for this urgency,
    one entry per contact method (the earliest delay wins, so two rules on one method
    send one message); without usable rules, their account email at once."""
    best: dict[int, tuple[ContactMethod, int]] = {}
    rules = NotificationRule.objects.filter(
        user=user, urgency__in=[urgency, Urgency.ANY], contact_method__verified_at__isnull=False
    ).select_related("contact_method")
    for rule in rules:
        cm = rule.contact_method
        if cm.pk not in best or rule.delay_minutes < best[cm.pk][1]:
            best[cm.pk] = (cm, rule.delay_minutes)
    if best:
        return sorted(best.values(), key=lambda pair: (pair[1], pair[0].pk))
    if not user.email:
        return []
    cm, _ = ContactMethod.objects.get_or_create(
        user=user, kind=ContactMethod.Kind.EMAIL, address=user.email,
        defaults={"verified_at": timezone.now(), "label": "account email"},
    )
    return [(cm, 0)]


def _step_targets(escalation: Escalation, step: dict, now: datetime) -> tuple[list[int], list[str]]:
    """User ids in order (duplicates removed) and warnings (empty schedules)."""
    warnings: list[str] = []
    ids: list[int] = list(step.get("user_ids", []))
    schedules = list(Schedule.objects.filter(pk__in=step.get("schedule_ids", [])))
    missing = set(step.get("schedule_ids", [])) - {s.pk for s in schedules}
    if missing:
        warnings.append(f"{len(missing)} schedule(s) of this step no longer exist")
    for now_oncall in schedules_oncall_at(schedules=schedules, at=now):
        if not now_oncall.oncall:
            warnings.append(f"nobody is on call in schedule {now_oncall.schedule.name!r}")
        ids.extend(o.user_id for o in now_oncall.oncall)
    team_id = escalation.frozen.get("team_id")
    if step.get("notify_team") and team_id:
        ids.extend(TeamMembership.objects.filter(team_id=team_id).values_list("user_id", flat=True))
    if step.get("team_managers") and team_id:
        ids.extend(TeamMembership.objects.filter(team_id=team_id, role=TeamMembership.Role.MANAGER)
                   .values_list("user_id", flat=True))
    return list(dict.fromkeys(ids)), warnings


def _name(user: Any) -> str:
    return (user.get_full_name() or user.get_username()) if user else "?"


def _page_key(escalation: Escalation, tail: str) -> str:
    return (f"page:{escalation.incident_id}:{escalation.generation}:{escalation.step_index}:"
            f"{escalation.loop}:{tail}")


def _create_pages(escalation: Escalation, step: dict, now: datetime) -> tuple[list[Notification], list[str]]:
    incident = escalation.incident
    user_ids, warnings = _step_targets(escalation, step, now)
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in=user_ids, is_active=True)}
    created: list[Notification] = []
    base = {"incident": incident, "escalation": escalation, "kind": Notification.Kind.PAGE,
            "generation": escalation.generation, "step_index": escalation.step_index, "loop": escalation.loop}
    lease = now + timedelta(seconds=settings.ONCALL_CLAIM_LEASE_SECONDS)
    for uid in user_ids:
        user = users.get(uid)
        if user is None:
            continue
        channels = user_channels(user, _urgency(incident))
        if not channels:
            warnings.append(f"{_name(user)} has no contact method and no email address")
        for cm, delay in channels:
            note, _ = Notification.objects.get_or_create(
                key=_page_key(escalation, f"u{uid}:c{cm.pk}"),
                defaults={**base, "user": user, "contact_method": cm, "channel": cm.kind,
                          "address": cm.address, "due_at": now + timedelta(minutes=delay),
                          "claimed_until": None if delay else lease},
            )
            created.append(note)
    for hook in OutgoingWebhook.objects.filter(pk__in=step.get("webhook_ids", []), enabled=True):
        note, _ = Notification.objects.get_or_create(
            key=_page_key(escalation, f"w{hook.pk}"),
            defaults={**base, "webhook": hook, "channel": Notification.Channel.WEBHOOK,
                      "address": hook.url, "due_at": now, "claimed_until": lease},
        )
        created.append(note)
    return created, warnings


def _describe(notes: list[Notification]) -> str:
    parts = []
    for note in notes:
        who = _name(note.user) if note.user else f"webhook {note.webhook.name if note.webhook else '?'}"
        when = "" if note.due_at <= note.created_at + timedelta(seconds=1) else \
            f" in {round((note.due_at - note.created_at).total_seconds() / 60)} min"
        parts.append(f"{who} by {note.get_channel_display().lower()}{when}")
    return ", ".join(parts)


def escalation_step_run(*, escalation_id: int, fence: int | None = None,
                        at: datetime | None = None) -> list[int]:
    """Run the due step of one escalation, if it is still due and ``fence`` (when
    given) still current. Returns the ids of notifications to send now: the caller
    (oncall.tasks) sends them right after, saving a queue round trip; they are leased
    for a while so the clock does not hand them out meanwhile, and picks them up if the
    caller dies first."""
    now = at or timezone.now()
    send_now: list[int] = []
    with transaction.atomic():
        escalation = (Escalation.objects.select_for_update(of=("self",)).select_related("incident")
                      .filter(pk=escalation_id).first())
        if (escalation is None or escalation.state != State.ACTIVE or escalation.next_at is None
                or escalation.next_at > now or (fence is not None and escalation.fence != fence)):
            return []
        incident = escalation.incident
        if incident.status != Incident.Status.TRIGGERED:
            escalation.state, escalation.stop_reason = State.STOPPED, incident.status
            escalation.next_at = escalation.claimed_until = None
            escalation.fence += 1
            escalation.save()
            return []
        steps = escalation.steps
        repeat = int(escalation.frozen.get("repeat", 0))
        # Empty steps and steps with nobody on call escalate on at once; bounded by
        # the number of steps in all loops.
        for _ in range(max(1, len(steps) * (repeat + 1))):
            if not steps or escalation.loop > repeat:
                break
            step = steps[escalation.step_index]
            notes, warnings = _create_pages(escalation, step, now)
            label = (f"Step {escalation.step_index + 1} of {len(steps)}"
                     + (f" (loop {escalation.loop + 1} of {repeat + 1})" if repeat else ""))
            if notes:
                escalation.pages_sent += len(notes)
                delay = int(step.get("delay_minutes", 0))
                timeline_add(incident=incident, kind=Kind.ESCALATION, at=now,
                             message=f"{label}: notifying {_describe(notes)}",
                             data={"step": escalation.step_index, "loop": escalation.loop,
                                   "generation": escalation.generation,
                                   "notification_ids": [n.pk for n in notes]})
                send_now.extend(n.pk for n in notes if n.due_at <= now and n.status == "pending")
            for warning in warnings:
                timeline_add(incident=incident, kind=Kind.WARNING, at=now, message=f"{label}: {warning}")
            if not notes:
                timeline_add(incident=incident, kind=Kind.WARNING, at=now,
                             message=f"{label} reached nobody; escalating to the next step")
            escalation.step_index += 1
            if escalation.step_index >= len(steps):
                escalation.step_index, escalation.loop = 0, escalation.loop + 1
            if notes:
                escalation.next_at = now + timedelta(minutes=delay)
                break
        if not steps or escalation.loop > repeat:
            escalation.state, escalation.next_at = State.EXHAUSTED, None
            if escalation.pages_sent == 0:
                escalation.warning = "The escalation chain paged no one."
                timeline_add(incident=incident, kind=Kind.WARNING, at=now, message=escalation.warning)
        escalation.claimed_until = None
        escalation.fence += 1
        escalation.save()
        if escalation.state == State.ACTIVE and escalation.next_at is not None and escalation.next_at <= now:
            _after_commit_run(escalation)
    return send_now


# --------------------------------------------------------------------------- clock jobs


def _claim(queryset: Any, now: datetime, batch: int = 100) -> list[Any]:
    """Claim due rows for a lease: SKIP LOCKED lets several clocks share the work on
    PostgreSQL (on SQLite, IMMEDIATE transactions serialize the clocks)."""
    with transaction.atomic():
        rows = list(queryset.select_for_update(skip_locked=True)[:batch])
        if rows:
            lease = timedelta(seconds=settings.ONCALL_CLAIM_LEASE_SECONDS)
            type(rows[0]).objects.filter(pk__in=[r.pk for r in rows]).update(claimed_until=now + lease)
    return rows


def escalations_due_dispatch(now: datetime) -> int:
    rows = _claim(
        Escalation.objects.filter(state=State.ACTIVE, next_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)).order_by("next_at"),
        now,
    )
    for row in rows:
        enqueue("oncall.tasks.escalation_step", row.pk, row.fence)
    return len(rows)


def ack_timeouts_run(now: datetime) -> int:
    from incidents.services import incident_unacknowledge

    count = 0
    with transaction.atomic():
        rows = list(Escalation.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(ack_deadline__lte=now).select_related("incident__service")[:100])
        for row in rows:
            Escalation.objects.filter(pk=row.pk).update(ack_deadline=None)
            incident = row.incident
            if incident.status != Incident.Status.ACKNOWLEDGED:
                continue
            if incident_unacknowledge(incident=incident, user=None, via=TimelineEntry.Via.SYSTEM):
                count += 1
                timeline_add(incident=incident, kind=Kind.ESCALATION, at=now,
                             message=f"Acknowledgement timed out after {incident.service.ack_timeout} min "
                             "without a resolution: re-triggered, escalating again")
    return count


def auto_resolve_run(now: datetime) -> int:
    from incidents.services import incident_resolve

    count = 0
    candidates = (Incident.objects.filter(service__auto_resolve_timeout__isnull=False)
                  .exclude(status=Incident.Status.RESOLVED).select_related("service")[:500])
    for incident in candidates:
        last = incident.last_alert_at or incident.triggered_at
        minutes = incident.service.auto_resolve_timeout
        if minutes and last + timedelta(minutes=minutes) <= now:
            if incident_resolve(incident=incident, user=None, via=TimelineEntry.Via.SYSTEM,
                                reason=f"automatically after {minutes} min without new alerts"):
                count += 1
    return count


def maintenance_run(now: datetime) -> int:
    """Clock job: a maintenance window that starts pauses the running escalations of its
    services; when it ends, those still triggered escalate again from the first step."""
    from incidents.models import MaintenanceWindow

    in_window = MaintenanceWindow.objects.filter(MaintenanceWindow.in_force_at(now)).values("services")
    count = 0
    for esc in (Escalation.objects.filter(state=State.ACTIVE, incident__service_id__in=in_window)
                .select_related("incident")[:200]):
        if escalation_stop(incident=esc.incident, reason="maintenance"):
            timeline_add(incident=esc.incident, kind=Kind.MAINTENANCE, at=now,
                         message="A maintenance window started: paging paused until it ends.")
            count += 1
    for esc in (Escalation.objects.filter(state=State.STOPPED, stop_reason="maintenance",
                                          incident__status=Incident.Status.TRIGGERED)
                .exclude(incident__service_id__in=in_window).select_related("incident")[:200]):
        reason = "The maintenance window ended"
        if escalation_start(incident=esc.incident, restart=True, reason=reason, at=now):
            count += 1
    return count
