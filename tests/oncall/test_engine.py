"""Scenario tests for the pure schedule engine: small stories with expected shifts."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from oncall.schedule_engine import (
    Layer,
    MemberPeriod,
    OverrideSpec,
    ScheduleSpec,
    Source,
    Window,
    final_schedule,
    next_handoff,
    oncall_at,
)

A, B, C, D = 1, 2, 3, 4
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)


def layer(
    lid: int = 1,
    *,
    members=(A, B, C),
    amount: int = 1,
    unit: str = "days",
    anchor: datetime = datetime(2024, 1, 1, 9, 0),
    priority: int = 1,
    windows=(),
    periods: tuple[MemberPeriod, ...] | None = None,
) -> Layer:
    return Layer(
        id=lid,
        priority=priority,
        anchor=anchor,
        shift_amount=amount,
        shift_unit=unit,
        members=periods if periods is not None else (MemberPeriod(tuple(members)),),
        windows=tuple(windows),
    )


def sched(*layers: Layer, tz: str = "UTC", overrides=()) -> ScheduleSpec:
    return ScheduleSpec(id=1, timezone=tz, layers=tuple(layers), overrides=tuple(overrides))


def table(shifts) -> list[tuple]:
    return [(s.start, s.end, s.user_id) for s in shifts]


def who(spec: ScheduleSpec, at: datetime) -> set[int]:
    return {oc.user_id for oc in oncall_at(spec, at)}


# --- lengths -------------------------------------------------------------------------


def test_daily_rotation_wraps_around_members():
    spec = sched(layer())
    shifts = final_schedule(spec, utc(2024, 1, 1, 9), utc(2024, 1, 5, 9))
    assert table(shifts) == [
        (utc(2024, 1, 1, 9), utc(2024, 1, 2, 9), A),
        (utc(2024, 1, 2, 9), utc(2024, 1, 3, 9), B),
        (utc(2024, 1, 3, 9), utc(2024, 1, 4, 9), C),
        (utc(2024, 1, 4, 9), utc(2024, 1, 5, 9), A),
    ]
    assert all(s.source == Source.LAYER and s.layer_id == 1 for s in shifts)


def test_hourly_rotation_and_clipping_to_the_requested_span():
    spec = sched(layer(members=(A, B), amount=8, unit="hours", anchor=datetime(2024, 1, 1, 6)))
    shifts = final_schedule(spec, utc(2024, 1, 1, 10), utc(2024, 1, 2, 0))
    assert table(shifts) == [
        (utc(2024, 1, 1, 10), utc(2024, 1, 1, 14), A),
        (utc(2024, 1, 1, 14), utc(2024, 1, 1, 22), B),
        (utc(2024, 1, 1, 22), utc(2024, 1, 2, 0), A),
    ]


def test_weekly_rotation_monday_0900_and_times_before_the_anchor():
    spec = sched(layer(unit="weeks"))
    assert who(spec, utc(2024, 1, 8, 8, 59)) == {A}
    assert who(spec, utc(2024, 1, 8, 9, 0)) == {B}
    assert who(spec, utc(2024, 1, 22, 9, 0)) == {A}
    # A week before the anchor is the previous member in the cycle.
    assert who(spec, utc(2023, 12, 25, 9, 0)) == {C}


def test_monthly_length_rotation_four_weeks():
    spec = sched(layer(members=(A, B), amount=4, unit="weeks"))
    shifts = final_schedule(spec, utc(2024, 1, 1), utc(2024, 3, 1))
    # The rotation also runs before its anchor: the shift ending at the anchor is B's.
    assert [(s.start, s.user_id) for s in shifts] == [
        (utc(2024, 1, 1), B),
        (utc(2024, 1, 1, 9), A),
        (utc(2024, 1, 29, 9), B),
        (utc(2024, 2, 26, 9), A),
    ]
    assert shifts[-1].end == utc(2024, 3, 1)


def test_single_member_consecutive_shifts_merge():
    spec = sched(layer(members=(A,)))
    assert table(final_schedule(spec, utc(2024, 1, 1), utc(2024, 1, 4))) == [
        (utc(2024, 1, 1), utc(2024, 1, 4), A)
    ]


# --- DST -----------------------------------------------------------------------------


def test_berlin_spring_forward_daily_handoff_stays_0900_local():
    spec = sched(layer(anchor=datetime(2024, 3, 1, 9)), tz="Europe/Berlin")
    shifts = final_schedule(spec, local(BERLIN, 2024, 3, 30, 9), local(BERLIN, 2024, 4, 1, 9))
    assert [s.start.astimezone(BERLIN).time() for s in shifts] == [time(9), time(9)]
    assert [s.duration for s in shifts] == [timedelta(hours=23), timedelta(hours=24)]
    assert shifts[0].start == utc(2024, 3, 30, 8) and shifts[1].start == utc(2024, 3, 31, 7)


def test_berlin_fall_back_shift_is_25_hours():
    spec = sched(layer(anchor=datetime(2024, 10, 1, 9)), tz="Europe/Berlin")
    shifts = final_schedule(spec, local(BERLIN, 2024, 10, 26, 9), local(BERLIN, 2024, 10, 28, 9))
    assert [s.duration for s in shifts] == [timedelta(hours=25), timedelta(hours=24)]
    assert all(s.start.astimezone(BERLIN).hour == 9 for s in shifts)


def test_new_york_spring_forward_and_fall_back_weekly():
    spec = sched(layer(unit="weeks", anchor=datetime(2024, 3, 4, 9)), tz="America/New_York")
    shifts = final_schedule(spec, local(NEW_YORK, 2024, 3, 4, 9), local(NEW_YORK, 2024, 3, 18, 9))
    assert [s.duration for s in shifts] == [timedelta(hours=167), timedelta(hours=168)]
    shifts = final_schedule(spec, local(NEW_YORK, 2024, 10, 28, 9), local(NEW_YORK, 2024, 11, 11, 9))
    assert [s.duration for s in shifts] == [timedelta(hours=169), timedelta(hours=168)]
    assert all(s.start.astimezone(NEW_YORK).time() == time(9) for s in shifts)


def test_hourly_shift_in_the_spring_forward_gap_is_dropped_not_shifted():
    spec = sched(layer(members=(A, B), unit="hours", anchor=datetime(2024, 3, 31, 0)), tz="Europe/Berlin")
    shifts = final_schedule(spec, local(BERLIN, 2024, 3, 31, 0), local(BERLIN, 2024, 3, 31, 5))
    # Local 02:00-03:00 does not exist: A's 02:00 shift has no length, B's 01:00 and 03:00
    # shifts touch and merge; 04:00 stays a 04:00 handoff.
    assert [(s.start.astimezone(BERLIN).hour, s.user_id) for s in shifts] == [(0, A), (1, B), (4, A)]
    assert sum((s.duration for s in shifts), timedelta()) == timedelta(hours=4)


def test_oncall_at_just_after_the_gap_with_a_handoff_inside_it():
    spec = sched(
        layer(members=(A, B, C), unit="hours", anchor=datetime(2024, 3, 31, 0, 30)), tz="Europe/Berlin"
    )
    # 02:30 local does not exist; that handoff happens at 03:30 CEST (01:30 UTC), so at
    # 03:15 CEST B (shift 01:30-02:30) is still on call.
    assert who(spec, utc(2024, 3, 31, 1, 15)) == {B}
    assert who(spec, utc(2024, 3, 31, 1, 30)) == {A}
    shifts = final_schedule(spec, utc(2024, 3, 31, 0), utc(2024, 3, 31, 2))
    assert table(shifts) == [
        (utc(2024, 3, 31, 0), utc(2024, 3, 31, 0, 30), A),
        (utc(2024, 3, 31, 0, 30), utc(2024, 3, 31, 1, 30), B),
        (utc(2024, 3, 31, 1, 30), utc(2024, 3, 31, 2), A),
    ]


def test_oncall_at_on_both_sides_of_the_berlin_change():
    spec = sched(layer(members=(A, B), anchor=datetime(2024, 3, 30, 9)), tz="Europe/Berlin")
    assert who(spec, local(BERLIN, 2024, 3, 31, 8, 59)) == {A}
    assert who(spec, local(BERLIN, 2024, 3, 31, 9, 0)) == {B}
    assert who(spec, utc(2024, 3, 31, 7, 30)) == {B}  # 09:30 CEST


# --- restrictions --------------------------------------------------------------------

BUSINESS = tuple(Window(d, time(9), time(17)) for d in range(5))


def test_business_hours_restriction_leaves_gaps_outside():
    spec = sched(layer(members=(A, B), unit="weeks", windows=BUSINESS))
    shifts = final_schedule(spec, utc(2024, 1, 5, 0), utc(2024, 1, 9, 0))  # Fri .. Tue
    assert table(shifts) == [
        (utc(2024, 1, 5, 0), utc(2024, 1, 5, 9), None),
        (utc(2024, 1, 5, 9), utc(2024, 1, 5, 17), A),
        (utc(2024, 1, 5, 17), utc(2024, 1, 8, 9), None),
        (utc(2024, 1, 8, 9), utc(2024, 1, 8, 17), B),
        (utc(2024, 1, 8, 17), utc(2024, 1, 9, 0), None),
    ]


def test_night_window_crosses_midnight():
    nights = tuple(Window(d, time(18), time(8)) for d in range(7))
    spec = sched(layer(members=(A,), windows=nights))
    assert who(spec, utc(2024, 1, 2, 23)) == {A}
    assert who(spec, utc(2024, 1, 3, 7, 59)) == {A}
    assert who(spec, utc(2024, 1, 3, 8)) == set()
    shifts = final_schedule(spec, utc(2024, 1, 2, 12), utc(2024, 1, 3, 12), include_gaps=False)
    assert table(shifts) == [(utc(2024, 1, 2, 18), utc(2024, 1, 3, 8), A)]


def test_weekend_window_friday_evening_to_monday_morning():
    weekend = (
        Window(4, time(18), time(0)),
        Window(5, time(0), time(0)),
        Window(6, time(0), time(0)),
        Window(0, time(0), time(9)),
    )
    spec = sched(layer(members=(A,), windows=weekend), tz="Europe/Berlin")
    shifts = final_schedule(spec, local(BERLIN, 2024, 1, 1), local(BERLIN, 2024, 1, 15), include_gaps=False)
    assert [(s.start.astimezone(BERLIN), s.end.astimezone(BERLIN)) for s in shifts] == [
        (local(BERLIN, 2024, 1, 1), local(BERLIN, 2024, 1, 1, 9)),
        (local(BERLIN, 2024, 1, 5, 18), local(BERLIN, 2024, 1, 8, 9)),
        (local(BERLIN, 2024, 1, 12, 18), local(BERLIN, 2024, 1, 15)),
    ]


def test_restriction_windows_follow_local_time_across_dst():
    spec = sched(layer(members=(A,), windows=BUSINESS), tz="Europe/Berlin")
    before = final_schedule(spec, local(BERLIN, 2024, 3, 29), local(BERLIN, 2024, 3, 30), include_gaps=False)
    after = final_schedule(spec, local(BERLIN, 2024, 4, 1), local(BERLIN, 2024, 4, 2), include_gaps=False)
    assert before[0].start == utc(2024, 3, 29, 8) and after[0].start == utc(2024, 4, 1, 7)


# --- layers --------------------------------------------------------------------------


def test_higher_layer_wins_lower_fills_gaps():
    day = layer(1, members=(A,), priority=2, windows=BUSINESS)
    base = layer(2, members=(B,), priority=1)
    spec = sched(day, base)
    shifts = final_schedule(spec, utc(2024, 1, 2, 0), utc(2024, 1, 3, 0))
    assert [(s.start.hour, s.end.hour, s.user_id, s.layer_id) for s in shifts] == [
        (0, 9, B, 2),
        (9, 17, A, 1),
        (17, 0, B, 2),
    ]


def test_empty_schedule_is_one_gap():
    spec = sched()
    assert table(final_schedule(spec, utc(2024, 1, 1), utc(2024, 1, 2))) == [
        (utc(2024, 1, 1), utc(2024, 1, 2), None)
    ]
    assert oncall_at(spec, utc(2024, 1, 1)) == ()
    assert next_handoff(spec, utc(2024, 1, 1)) is None


def test_layer_without_members_is_empty():
    spec = sched(layer(members=()))
    assert final_schedule(spec, utc(2024, 1, 1), utc(2024, 1, 2), include_gaps=False) == []


# --- member changes ------------------------------------------------------------------


def test_member_added_mid_rotation_leaves_past_shifts_alone():
    change = utc(2024, 1, 10, 12)
    periods = (MemberPeriod((A, B, C), None, change), MemberPeriod((A, B, C, D), change, None))
    old = sched(layer())
    new = sched(layer(periods=periods))
    span = (utc(2024, 1, 1, 9), change)
    assert table(final_schedule(new, *span)) == table(final_schedule(old, *span))
    # The shift running at the change is split; afterwards the longer list applies.
    assert who(new, change - timedelta(seconds=1)) == {A}  # shift 9 of [A, B, C]
    assert who(new, change) == {B}  # shift 9 of [A, B, C, D]
    assert who(new, utc(2024, 1, 12, 10)) == {D}  # k=11 -> 11 % 4 = 3


def test_member_removed_and_reordered_later_only():
    change = utc(2024, 1, 4, 9)
    periods = (MemberPeriod((A, B, C), None, change), MemberPeriod((C, A), change, None))
    spec = sched(layer(periods=periods))
    shifts = final_schedule(spec, utc(2024, 1, 1, 9), utc(2024, 1, 7, 9))
    assert [s.user_id for s in shifts] == [A, B, C, A, C, A]


def test_member_change_mid_shift_splits_the_shift():
    change = utc(2024, 1, 1, 21)
    periods = (MemberPeriod((A, B), None, change), MemberPeriod((B, A), change, None))
    spec = sched(layer(periods=periods))
    assert table(final_schedule(spec, utc(2024, 1, 1, 9), utc(2024, 1, 2, 9))) == [
        (utc(2024, 1, 1, 9), change, A),
        (change, utc(2024, 1, 2, 9), B),
    ]


# --- overrides -----------------------------------------------------------------------


def ov(oid: int, start: datetime, end: datetime, kind: str, user: int, replaced: int | None = None):
    return OverrideSpec(oid, start, end, kind, user, replaced)


def test_override_replace_covers_a_person():
    spec = sched(layer(), overrides=[ov(1, utc(2024, 1, 1, 12), utc(2024, 1, 1, 18), "replace", D, A)])
    shifts = final_schedule(spec, utc(2024, 1, 1, 9), utc(2024, 1, 2, 9))
    assert [(s.start.hour, s.end.hour, s.user_id, s.source) for s in shifts] == [
        (9, 12, A, Source.LAYER),
        (12, 18, D, Source.OVERRIDE),
        (18, 9, A, Source.LAYER),
    ]
    assert shifts[1].override_id == 1


def test_replace_of_someone_not_on_call_does_nothing():
    spec = sched(layer(), overrides=[ov(1, utc(2024, 1, 1, 12), utc(2024, 1, 1, 18), "replace", D, B)])
    assert who(spec, utc(2024, 1, 1, 13)) == {A}


def test_takeover_replace_without_replaced_user_fills_gaps():
    spec = sched(
        layer(windows=BUSINESS), overrides=[ov(1, utc(2024, 1, 1, 16), utc(2024, 1, 1, 20), "replace", D)]
    )
    shifts = final_schedule(spec, utc(2024, 1, 1, 9), utc(2024, 1, 1, 21))
    assert [(s.start.hour, s.end.hour, s.user_id) for s in shifts] == [
        (9, 16, A),
        (16, 20, D),
        (20, 21, None),
    ]


def test_override_add_puts_a_second_person_on_call():
    spec = sched(layer(), overrides=[ov(1, utc(2024, 1, 1, 10), utc(2024, 1, 1, 11), "add", D)])
    assert who(spec, utc(2024, 1, 1, 10, 30)) == {A, D}
    shifts = final_schedule(spec, utc(2024, 1, 1, 9), utc(2024, 1, 1, 12))
    assert table(shifts) == [
        (utc(2024, 1, 1, 9), utc(2024, 1, 1, 12), A),
        (utc(2024, 1, 1, 10), utc(2024, 1, 1, 11), D),
    ]


def test_override_remove_lets_the_lower_layer_fill():
    spec = sched(
        layer(1, members=(A,), priority=2),
        layer(2, members=(B,), priority=1),
        overrides=[ov(1, utc(2024, 1, 1, 10), utc(2024, 1, 1, 11), "remove", A)],
    )
    assert who(spec, utc(2024, 1, 1, 10, 30)) == {B}
    single = sched(
        layer(members=(A,)), overrides=[ov(1, utc(2024, 1, 1, 10), utc(2024, 1, 1, 11), "remove", A)]
    )
    assert [s.user_id for s in final_schedule(single, utc(2024, 1, 1, 9), utc(2024, 1, 1, 12))] == [
        A,
        None,
        A,
    ]


def test_overlapping_overrides_chain_in_creation_order():
    spec = sched(
        layer(members=(A,)),
        overrides=[
            ov(1, utc(2024, 1, 1, 10), utc(2024, 1, 1, 14), "replace", B, A),
            ov(2, utc(2024, 1, 1, 12), utc(2024, 1, 1, 13), "replace", C, B),
            ov(3, utc(2024, 1, 1, 12, 30), utc(2024, 1, 1, 15), "add", B),
        ],
    )
    assert who(spec, utc(2024, 1, 1, 11)) == {B}
    assert who(spec, utc(2024, 1, 1, 12, 15)) == {C}
    assert who(spec, utc(2024, 1, 1, 12, 45)) == {C, B}
    assert who(spec, utc(2024, 1, 1, 14, 30)) == {A, B}


def test_next_handoff():
    spec = sched(layer(), overrides=[ov(1, utc(2024, 1, 1, 12), utc(2024, 1, 1, 18), "replace", D, A)])
    assert next_handoff(spec, utc(2024, 1, 1, 10)) == utc(2024, 1, 1, 12)
    assert next_handoff(spec, utc(2024, 1, 1, 18)) == utc(2024, 1, 2, 9)


def test_naive_instants_are_refused():
    with pytest.raises(ValueError):
        oncall_at(sched(layer()), datetime(2024, 1, 1))
    with pytest.raises(ValueError):
        final_schedule(sched(layer()), utc(2024, 1, 2), utc(2024, 1, 1))


def test_next_handoff_far_ahead_and_none_within_the_horizon():
    spec = sched(layer(members=(A, B), amount=3, unit="weeks"))
    assert next_handoff(spec, utc(2024, 1, 2)) == utc(2024, 1, 22, 9)
    assert next_handoff(sched(layer(members=(A,))), utc(2024, 1, 2)) is None
    assert next_handoff(spec, utc(2024, 1, 2), horizon=timedelta(days=10)) is None
