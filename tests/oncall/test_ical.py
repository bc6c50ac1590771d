from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import recurring_ical_events
import time_machine
from icalendar import Calendar

from oncall import selectors
from oncall.models import Rotation
from oncall.services import calendar_feed_get_or_create, calendar_feed_regenerate, override_create

NOW = datetime(2024, 3, 20, 12, tzinfo=UTC)


def fetch(client, url: str) -> Calendar:
    response = client.get(url)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/calendar")
    return Calendar.from_ical(response.content)


def events(cal: Calendar, start: datetime, end: datetime) -> list[tuple[datetime, datetime, str]]:
    found = recurring_ical_events.of(cal).between(start, end)
    return sorted(
        (e["DTSTART"].dt.astimezone(UTC), e["DTEND"].dt.astimezone(UTC), str(e["UID"])) for e in found
    )


def test_schedule_feed_matches_the_final_schedule_across_dst(client, weekly, responder, secondary):
    schedule = weekly.schedule
    daily = Rotation.objects.create(
        schedule=schedule,
        name="Days",
        priority=5,
        shift_unit="days",
        handoff_date=date(2024, 1, 1),
        handoff_time=time(9),
        restrictions=[{"days": ["sat", "sun"], "start": "10:00", "end": "18:00"}],
    )
    from oncall.services import rotation_members_set

    rotation_members_set(rotation=daily, user_ids=[secondary.pk])
    override_create(
        schedule=schedule,
        kind="replace",
        start=NOW + timedelta(days=2),
        end=NOW + timedelta(days=3),
        user_id=secondary.pk,
        replaced_user_id=responder.pk,
    )
    with time_machine.travel(NOW, tick=False):
        cal = fetch(client, f"/oncall/ical/schedule/{schedule.ical_token}.ics")
        again = fetch(client, f"/oncall/ical/schedule/{schedule.ical_token}.ics")
    start, end = NOW - timedelta(days=7), NOW + timedelta(days=60)
    shifts = selectors.schedule_shifts(
        schedule=schedule, start=start - timedelta(days=35), end=end + timedelta(days=35), include_gaps=False
    )
    expected = sorted((s.start, s.end) for s in shifts if s.end > start and s.start < end)
    got = events(cal, start, end)
    assert [(s, e) for s, e, _ in got] == expected
    assert len({uid for _, _, uid in got}) == len(got)
    assert [uid for *_, uid in events(again, start, end)] == [uid for *_, uid in got]  # stable UIDs
    # Times carry the schedule's zone, with its VTIMEZONE included.
    vevent = next(c for c in cal.walk("VEVENT"))
    assert vevent["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert any(tz["TZID"] == "Europe/Berlin" for tz in cal.walk("VTIMEZONE"))
    # Handoffs stay at 09:00 Berlin on both sides of the DST change (Mar 31): 08:00 UTC
    # before it, 07:00 UTC after it.
    handoffs = {e for _, e, _ in got if e.astimezone(ZoneInfo("Europe/Berlin")).time() == time(9)}
    assert (
        datetime(2024, 3, 25, 8, tzinfo=UTC) in handoffs and datetime(2024, 4, 1, 7, tzinfo=UTC) in handoffs
    )


def test_user_feed_lists_only_that_persons_shifts(client, weekly, responder, secondary):
    feed = calendar_feed_get_or_create(user=secondary)
    with time_machine.travel(NOW, tick=False):
        cal = fetch(client, f"/oncall/ical/user/{feed.token}.ics")
    start, end = NOW - timedelta(days=7), NOW + timedelta(days=60)
    wide = selectors.user_shifts(
        user_id=secondary.pk, start=start - timedelta(days=35), end=end + timedelta(days=35)
    )
    expected = [(s.start, s.end) for s in wide if s.end > start and s.start < end]
    got = [(s, e) for s, e, _ in events(cal, start, end)]
    assert got == expected and len(got) >= 3
    summaries = {str(e["SUMMARY"]) for e in cal.walk("VEVENT")}
    assert summaries == {"On call: Primary"}


def test_unknown_and_revoked_tokens_are_404(client, weekly, secondary):
    schedule = weekly.schedule
    old = schedule.ical_token
    from oncall.services import schedule_ical_token_regenerate

    schedule_ical_token_regenerate(schedule=schedule)
    assert client.get(f"/oncall/ical/schedule/{old}.ics").status_code == 404
    assert client.get(f"/oncall/ical/schedule/{schedule.ical_token}.ics").status_code == 200
    feed = calendar_feed_get_or_create(user=secondary)
    old_user_token = feed.token
    calendar_feed_regenerate(user=secondary)
    assert client.get(f"/oncall/ical/user/{old_user_token}.ics").status_code == 404
    assert client.get("/oncall/ical/user/nope.ics").status_code == 404
    assert client.post(f"/oncall/ical/schedule/{schedule.ical_token}.ics").status_code == 405
