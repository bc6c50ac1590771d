"""Property-based tests: the final schedule and the point query always agree."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncall.schedule_engine import (
    Layer,
    MemberPeriod,
    OverrideSpec,
    ScheduleSpec,
    Window,
    final_schedule,
    layer_segments,
    oncall_at,
)

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]
# Spans Europe's spring-forward (Mar 31) and Sydney's fall-back (Apr 7) weekends.
START = datetime(2024, 3, 25, tzinfo=UTC)
USERS = st.integers(min_value=1, max_value=6)


@st.composite
def windows(draw) -> tuple[Window, ...]:
    if draw(st.booleans()):
        return ()
    out = []
    for _ in range(draw(st.integers(1, 4))):
        out.append(
            Window(
                draw(st.integers(0, 6)),
                time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30]))),
                time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30]))),
            )
        )
    return tuple(out)


@st.composite
def layers(draw, lid: int) -> Layer:
    unit = draw(st.sampled_from(["hours", "days", "weeks"]))
    amount = draw(st.integers(1, 12 if unit == "hours" else 3))
    members = tuple(draw(st.lists(USERS, min_size=0, max_size=4)))
    periods: tuple[MemberPeriod, ...] = (MemberPeriod(members),)
    if draw(st.booleans()):
        cut = START + timedelta(hours=draw(st.integers(0, 24 * 14)))
        later = tuple(draw(st.lists(USERS, min_size=0, max_size=4)))
        periods = (MemberPeriod(members, None, cut), MemberPeriod(later, cut, None))
    anchor = datetime(2024, 3, 1, draw(st.integers(0, 23)), draw(st.sampled_from([0, 30])))
    return Layer(
        id=lid,
        priority=lid,
        anchor=anchor,
        shift_amount=amount,
        shift_unit=unit,
        members=periods,
        # Sometimes a follow-the-sun layer in its own zone.
        timezone=draw(st.one_of(st.none(), st.sampled_from(ZONES))),
        windows=draw(windows()),
    )


@st.composite
def overrides(draw) -> tuple[OverrideSpec, ...]:
    out = []
    for oid in range(1, draw(st.integers(0, 6)) + 1):
        start = START + timedelta(minutes=30 * draw(st.integers(0, 48 * 14)))
        end = start + timedelta(minutes=30 * draw(st.integers(1, 200)))
        kind = draw(st.sampled_from(["add", "remove", "replace"]))
        replaced = draw(st.one_of(st.none(), USERS)) if kind == "replace" else None
        out.append(OverrideSpec(oid, start, end, kind, draw(USERS), replaced))
    return tuple(out)


@st.composite
def schedules(draw) -> ScheduleSpec:
    n = draw(st.integers(0, 3))
    return ScheduleSpec(
        id=1,
        timezone=draw(st.sampled_from(ZONES)),
        layers=tuple(draw(layers(i + 1)) for i in range(n)),
        overrides=draw(overrides()),
    )


SPAN_END = START + timedelta(days=15)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(spec=schedules(), offsets=st.lists(st.integers(0, 15 * 24 * 3600 - 1), min_size=1, max_size=20))
def test_oncall_at_agrees_with_final_schedule(spec, offsets):
    shifts = final_schedule(spec, START, SPAN_END)
    for offset in offsets:
        t = START + timedelta(seconds=offset)
        containing = [s for s in shifts if s.start <= t < s.end]
        expected = {(oc.user_id, oc.source, oc.layer_id, oc.override_id) for oc in oncall_at(spec, t)}
        people = {
            (s.user_id, s.source, s.layer_id, s.override_id) for s in containing if s.user_id is not None
        }
        assert people == expected
        assert any(s.user_id is None for s in containing) == (not expected)


@SETTINGS
@given(spec=schedules())
def test_final_schedule_has_no_overlaps_and_covers_the_span(spec):
    shifts = final_schedule(spec, START, SPAN_END)
    by_user: dict[object, list] = {}
    for s in shifts:
        assert START <= s.start < s.end <= SPAN_END
        by_user.setdefault(s.user_id, []).append(s)
    for items in by_user.values():
        items.sort(key=lambda s: s.start)
        for a, b in zip(items, items[1:], strict=False):
            assert a.end <= b.start
    # Gaps are exactly the complement of everyone's coverage.
    covered = _union([(s.start, s.end) for s in shifts if s.user_id is not None])
    gaps = _union([(s.start, s.end) for s in shifts if s.user_id is None])
    assert _union(covered + gaps) == [(START, SPAN_END)]
    for gs, ge in gaps:
        assert all(ce <= gs or cs >= ge for cs, ce in covered)


@SETTINGS
@given(spec=schedules())
def test_without_overrides_coverage_is_the_union_of_layers(spec):
    spec = ScheduleSpec(id=1, timezone=spec.timezone, layers=spec.layers)
    tz = ZoneInfo(spec.timezone)
    layer_cover = _union(
        [(s, e) for layer in spec.layers for s, e, _ in layer_segments(layer, tz, START, SPAN_END)]
    )
    final_cover = _union(
        [(s.start, s.end) for s in final_schedule(spec, START, SPAN_END, include_gaps=False)]
    )
    assert final_cover == layer_cover


def _union(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
