"""Uptime arithmetic: pure function, days in the page's time zone."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from statuspage.uptime import format_duration, local_day_bounds, uptime_days, uptime_percent

BERLIN = ZoneInfo("Europe/Berlin")
DAY = 86400


def at(*args, tz=UTC):
    return datetime(*args, tzinfo=tz)


def test_no_changes_all_operational_is_full_uptime():
    now = at(2026, 3, 10, 12)
    days = uptime_days(changes=[], initial_status="operational", tz=UTC, now=now, days=3)
    assert [d.day for d in days] == [date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)]
    assert [d.uptime for d in days] == [1.0, 1.0, 1.0]
    # Today only counts up to now.
    assert days[-1].tracked_seconds == 12 * 3600
    assert uptime_percent(days) == 1.0


def test_major_outage_spanning_midnight_is_split_between_days():
    now = at(2026, 3, 10, 12)
    changes = [(at(2026, 3, 8, 23), "major_outage"), (at(2026, 3, 9, 1), "operational")]
    days = uptime_days(changes=changes, initial_status="operational", tz=UTC, now=now, days=3)
    assert days[0].seconds_by_status == {"major_outage": 3600}
    assert days[1].seconds_by_status == {"major_outage": 3600}
    assert days[0].uptime == pytest.approx(1 - 3600 / DAY)
    assert days[1].worst_status == "major_outage"
    assert days[2].seconds_by_status == {}
    total = 2 * DAY + 12 * 3600
    assert uptime_percent(days) == pytest.approx(1 - 7200 / total)


def test_partial_outage_counts_thirty_percent_degraded_and_maintenance_not_at_all():
    now = at(2026, 3, 2, 0)
    changes = [
        (at(2026, 3, 1, 0), "partial_outage"),
        (at(2026, 3, 1, 10), "degraded_performance"),
        (at(2026, 3, 1, 12), "under_maintenance"),
        (at(2026, 3, 1, 14), "operational"),
    ]
    (day,) = uptime_days(
        changes=changes, initial_status="operational", tz=UTC, now=now - timedelta(seconds=1), days=1
    )
    assert day.seconds_by_status["partial_outage"] == 10 * 3600
    assert day.downtime_seconds == pytest.approx(0.3 * 10 * 3600)
    assert day.worst_status == "partial_outage"


def test_days_follow_the_page_time_zone_not_utc():
    # 22:30 UTC on March 9 is 23:30 in Berlin (CET, +1): the outage until 23:30 UTC
    # (00:30 Berlin on the 10th) splits 30 min / 30 min in Berlin, all on the 9th in UTC.
    now = at(2026, 3, 10, 12)
    changes = [(at(2026, 3, 9, 22, 30), "major_outage"), (at(2026, 3, 9, 23, 30), "operational")]
    berlin = uptime_days(changes=changes, initial_status="operational", tz=BERLIN, now=now, days=2)
    utc = uptime_days(changes=changes, initial_status="operational", tz=UTC, now=now, days=2)
    assert [d.seconds_by_status.get("major_outage", 0) for d in berlin] == [1800, 1800]
    assert [d.seconds_by_status.get("major_outage", 0) for d in utc] == [3600, 0]


def test_dst_day_is_23_hours_long():
    # Europe/Berlin springs forward on 2026-03-29.
    start, end = local_day_bounds(date(2026, 3, 29), BERLIN)
    assert (end - start).total_seconds() == 23 * 3600
    now = at(2026, 3, 30, 12, tz=BERLIN)
    days = uptime_days(
        changes=[(at(2026, 3, 28, 12, tz=BERLIN), "major_outage")],
        initial_status="operational",
        tz=BERLIN,
        now=now,
        days=3,
    )
    assert days[1].day == date(2026, 3, 29)
    assert days[1].tracked_seconds == 23 * 3600
    assert days[1].uptime == 0.0


def test_time_before_the_component_existed_is_no_data():
    now = at(2026, 3, 10, 12)
    days = uptime_days(
        changes=[], initial_status="operational", tz=UTC, now=now, days=3, tracked_from=at(2026, 3, 9, 18)
    )
    assert not days[0].has_data and days[0].uptime is None
    assert days[1].tracked_seconds == 6 * 3600
    assert uptime_percent(days[:1]) is None


def test_initial_status_applies_until_the_first_change():
    now = at(2026, 3, 10, 12)
    days = uptime_days(
        changes=[(at(2026, 3, 10, 6), "operational")], initial_status="major_outage", tz=UTC, now=now, days=2
    )
    assert days[0].uptime == 0.0
    assert days[1].seconds_by_status == {"major_outage": 6 * 3600}


def test_unsorted_changes_and_changes_in_the_future_are_handled():
    now = at(2026, 3, 10, 12)
    changes = [
        (at(2026, 3, 10, 13), "major_outage"),
        (at(2026, 3, 10, 2), "partial_outage"),
        (at(2026, 3, 10, 1), "major_outage"),
    ]
    (day,) = uptime_days(changes=changes, initial_status="operational", tz=UTC, now=now, days=1)
    assert day.seconds_by_status == {"major_outage": 3600, "partial_outage": 10 * 3600}


def test_ninety_days_window_and_durations():
    now = at(2026, 6, 1, 0, 30)
    days = uptime_days(changes=[], initial_status="operational", tz=UTC, now=now)
    assert len(days) == 90 and days[-1].day == date(2026, 6, 1)
    assert format_duration(59) == "1 min"
    assert format_duration(3600 * 2 + 60 * 5) == "2 h 5 min"
    assert format_duration(3600) == "1 h"
