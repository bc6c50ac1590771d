"""iCalendar feeds of final shifts (one VEVENT per shift, stable UIDs, times in the
schedule's zone with its VTIMEZONE)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from icalendar import Calendar, Event

from oncall import schedule_engine as engine
from oncall import selectors
from oncall.models import Schedule

PAST = timedelta(days=7)
FUTURE = timedelta(days=60)
# Shifts are computed over a wider span than published so a shift that started before
# the window keeps its real start, and therefore its UID, from one fetch to the next.
_MARGIN = timedelta(days=35)


def feed_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or timezone.now()
    return now - PAST, now + FUTURE


def shift_uid(shift: engine.Shift) -> str:
    source = f"o{shift.override_id}" if shift.override_id else f"l{shift.layer_id}"
    return f"shift-{shift.schedule_id}-{source}-{shift.user_id}-{shift.start:%Y%m%dT%H%M%SZ}@ircore"


def _calendar(name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", "-//ircore//on-call schedules//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    # Hints for clients that honour them (Apple, Outlook) to refresh hourly.
    cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    return cal


def _user_name(user: object | None) -> str:
    if user is None:
        return "unknown"
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return full or user.get_username()


def _event(shift: engine.Shift, tz: ZoneInfo, summary: str, stamp: datetime, description: str) -> Event:
    event = Event()
    event.add("uid", shift_uid(shift))
    event.add("dtstamp", stamp)
    event.add("dtstart", shift.start.astimezone(tz))
    event.add("dtend", shift.end.astimezone(tz))
    event.add("summary", summary)
    event.add("description", description)
    event.add("transp", "OPAQUE")
    return event


def _shifts(
    schedules: Iterable[Schedule], start: datetime, end: datetime, user_id: int | None = None
) -> list[engine.Shift]:
    out: list[engine.Shift] = []
    for spec in selectors.schedule_specs(schedules=schedules, start=start - _MARGIN, end=end + _MARGIN):
        for shift in engine.final_schedule(spec, start - _MARGIN, end + _MARGIN, include_gaps=False):
            if shift.end > start and shift.start < end and (user_id is None or shift.user_id == user_id):
                out.append(shift)
    return out


def _source_label(shift: engine.Shift, layer_names: dict[int, str]) -> str:
    if shift.override_id:
        return "override"
    return f"layer {layer_names.get(shift.layer_id or 0, '?')}"


def schedule_calendar(*, schedule: Schedule, now: datetime | None = None) -> bytes:
    start, end = feed_window(now)
    tz = ZoneInfo(schedule.timezone)
    shifts = _shifts([schedule], start, end)
    users = selectors.users_by_id(s.user_id for s in shifts)
    layer_names = dict(schedule.rotations.values_list("id", "name"))
    cal = _calendar(f"On call: {schedule.name}")
    stamp = timezone.now()
    for shift in shifts:
        name = _user_name(users.get(shift.user_id))
        cal.add_component(
            _event(
                shift,
                tz,
                f"{name} on call ({schedule.name})",
                stamp,
                f"Schedule {schedule.name}, {_source_label(shift, layer_names)}.",
            )
        )
    cal.add_missing_timezones()
    return cal.to_ical()


def user_calendar(*, user: object, now: datetime | None = None) -> bytes:
    start, end = feed_window(now)
    schedules = selectors.schedules_of_user(user_id=user.pk, start=start - _MARGIN)
    shifts = _shifts(schedules, start, end, user_id=user.pk)
    by_id = {s.pk: s for s in schedules}
    cal = _calendar(f"My on-call shifts ({_user_name(user)})")
    stamp = timezone.now()
    for shift in shifts:
        schedule = by_id[shift.schedule_id]
        cal.add_component(
            _event(
                shift,
                ZoneInfo(schedule.timezone),
                f"On call: {schedule.name}",
                stamp,
                f"You are on call for {schedule.name} ({schedule.team.name}).",
            )
        )
    cal.add_missing_timezones()
    return cal.to_ical()
