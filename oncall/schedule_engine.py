"""Who is on call: a pure function of plain data (no database, no clock).

Semantics, in one place:

* Rotation boundaries are computed in the schedule's *wall-clock* time: handoff k is
  ``anchor + k * shift_length`` as a naive local datetime, then localised. So a 09:00
  Europe/Berlin handoff stays 09:00 local across DST and a shift spanning the change is
  23h or 25h long. A boundary that falls into a spring-forward gap maps to the instant
  after the gap; a zero-length shift that results (hourly rotations) is dropped.
* Member list k-th shift goes to ``members[k % len(members)]`` using the list in force
  at that instant (``MemberPeriod``); a list change splits a shift at its effective
  time and never touches what came before it.
* A layer may have its own time zone (follow-the-sun); its anchor and windows are then
  in that zone.
* Restrictions are weekday time windows in local time; a window whose end is not after
  its start runs past midnight (nights). Outside the windows the layer has nobody.
* Layers: the highest ``priority`` with someone on call wins, lower layers fill gaps.
* Overrides: ``remove`` empties a layer slot held by that user (so a lower layer fills
  in); then ``replace`` (in creation order; without ``replaced_user_id`` the override
  takes the whole slot, gaps included); then ``add`` puts extra people on call.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo


class Unit(StrEnum):
    HOURS = "hours"
    DAYS = "days"
    WEEKS = "weeks"


class OverrideKind(StrEnum):
    ADD = "add"
    REMOVE = "remove"
    REPLACE = "replace"


class Source(StrEnum):
    LAYER = "layer"
    OVERRIDE = "override"
    GAP = "gap"


@dataclass(frozen=True, slots=True)
class Window:
    """``weekday`` 0=Monday. ``end <= start`` means the window ends the next day."""

    weekday: int
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class MemberPeriod:
    """The ordered member list in force from ``start`` (None: always) to ``end``."""

    user_ids: tuple[int, ...]
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Layer:
    id: int
    priority: int
    anchor: datetime  # naive, local wall-clock time of one handoff
    shift_amount: int
    shift_unit: Unit | str
    members: tuple[MemberPeriod, ...]
    windows: tuple[Window, ...] = ()
    name: str = ""
    timezone: str | None = None  # the layer's own zone (follow-the-sun); None: the schedule's

    @property
    def step(self) -> timedelta:
        return _step(self.shift_amount, str(self.shift_unit))


@dataclass(frozen=True, slots=True)
class OverrideSpec:
    id: int
    start: datetime
    end: datetime
    kind: OverrideKind | str
    user_id: int
    replaced_user_id: int | None = None


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    id: int
    timezone: str
    layers: tuple[Layer, ...] = ()
    overrides: tuple[OverrideSpec, ...] = ()
    name: str = ""


@dataclass(frozen=True, slots=True)
class OnCall:
    user_id: int
    source: Source
    layer_id: int | None = None
    override_id: int | None = None


@dataclass(frozen=True, slots=True)
class Shift:
    """One stretch of the final schedule. ``user_id`` None is a gap (nobody on call)."""

    start: datetime
    end: datetime
    user_id: int | None
    source: Source
    layer_id: int | None = None
    override_id: int | None = None
    schedule_id: int | None = field(default=None, compare=False)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@lru_cache(maxsize=256)
def _step(amount: int, unit: str) -> timedelta:
    if unit == Unit.HOURS:
        return timedelta(hours=amount)
    if unit == Unit.DAYS:
        return timedelta(days=amount)
    if unit == Unit.WEEKS:
        return timedelta(weeks=amount)
    raise ValueError(f"unknown shift unit {unit!r}")


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _to_utc(naive_local: datetime, tz: ZoneInfo) -> datetime:
    return naive_local.replace(tzinfo=tz).astimezone(UTC)


def _to_local_naive(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _check_aware(*instants: datetime) -> None:
    for instant in instants:
        if instant.tzinfo is None:
            raise ValueError("instants must be timezone-aware")


# ---------------------------------------------------------------------------
# One layer


def _shift_index(layer: Layer, local: datetime) -> int:
    return (local - layer.anchor) // layer.step


def _members_at(layer: Layer, at: datetime) -> tuple[int, ...]:
    for period in layer.members:
        if (period.start is None or period.start <= at) and (period.end is None or at < period.end):
            return period.user_ids
    return ()


def _in_windows(windows: Sequence[Window], local: datetime) -> bool:
    if not windows:
        return True
    t = local.time()
    today = local.weekday()
    yesterday = (today - 1) % 7
    for w in windows:
        if w.end > w.start:
            if w.weekday == today and w.start <= t < w.end:
                return True
        else:  # crosses midnight (end == start: 24 hours)
            if w.weekday == today and t >= w.start:
                return True
            if w.weekday == yesterday and t < w.end:
                return True
    return False


def layer_user_at(layer: Layer, tz: ZoneInfo, at: datetime) -> int | None:
    """The user a single layer puts on call at ``at`` (restrictions applied)."""
    if layer.timezone:
        tz = _zone(layer.timezone)
    local = _to_local_naive(at, tz)
    if not _in_windows(layer.windows, local):
        return None
    members = _members_at(layer, at)
    if not members:
        return None
    k = _shift_index(layer, local)
    # The naive index can be off by one around a fall-back/spring-forward boundary;
    # settle it against the real (UTC) boundaries.
    while _to_utc(layer.anchor + k * layer.step, tz) > at:
        k -= 1
    while _to_utc(layer.anchor + (k + 1) * layer.step, tz) <= at:
        k += 1
    return members[k % len(members)]


def _window_intervals(
    windows: Sequence[Window], tz: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Allowed UTC intervals covering [start, end), merged and sorted."""
    first = _to_local_naive(start, tz).date() - timedelta(days=1)
    last = _to_local_naive(end, tz).date() + timedelta(days=1)
    out: list[tuple[datetime, datetime]] = []
    day = first
    by_weekday: dict[int, list[Window]] = {}
    for w in windows:
        by_weekday.setdefault(w.weekday, []).append(w)
    while day <= last:
        for w in by_weekday.get(day.weekday(), ()):
            s_local = datetime.combine(day, w.start)
            e_day = day if w.end > w.start else day + timedelta(days=1)
            e_local = datetime.combine(e_day, w.end)
            s, e = _to_utc(s_local, tz), _to_utc(e_local, tz)
            s, e = max(s, start), min(e, end)
            if s < e:
                out.append((s, e))
        day += timedelta(days=1)
    out.sort()
    merged: list[tuple[datetime, datetime]] = []
    for s, e in out:
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def layer_segments(
    layer: Layer, tz: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, int]]:
    """(start, end, user_id) stretches where this layer has someone on call within
    [start, end), in order, non-overlapping."""
    if layer.timezone:
        tz = _zone(layer.timezone)
    step = layer.step
    k = _shift_index(layer, _to_local_naive(start, tz)) - 1
    raw: list[tuple[datetime, datetime, int]] = []
    period_cuts = sorted(
        {p.start for p in layer.members if p.start is not None}
        | {p.end for p in layer.members if p.end is not None}
    )
    b = _to_utc(layer.anchor + k * step, tz)
    while b < end:
        nb = _to_utc(layer.anchor + (k + 1) * step, tz)
        s, e = max(b, start), min(nb, end)
        if s < e:
            # Member-list changes split the shift; each piece uses the list in force.
            lo = bisect.bisect_right(period_cuts, s)
            hi = bisect.bisect_left(period_cuts, e)
            cuts = [s, *period_cuts[lo:hi], e]
            for ps, pe in zip(cuts, cuts[1:], strict=False):
                members = _members_at(layer, ps)
                if members:
                    raw.append((ps, pe, members[k % len(members)]))
        b = nb
        k += 1
    if not layer.windows:
        return _merge_same_user(raw)
    allowed = _window_intervals(layer.windows, tz, start, end)
    out: list[tuple[datetime, datetime, int]] = []
    i = 0
    for s, e, user in raw:
        while i < len(allowed) and allowed[i][1] <= s:
            i += 1
        j = i
        while j < len(allowed) and allowed[j][0] < e:
            cs, ce = max(s, allowed[j][0]), min(e, allowed[j][1])
            if cs < ce:
                out.append((cs, ce, user))
            j += 1
    return _merge_same_user(out)


def _merge_same_user(segments: list[tuple[datetime, datetime, int]]) -> list[tuple[datetime, datetime, int]]:
    merged: list[tuple[datetime, datetime, int]] = []
    for s, e, u in segments:
        if merged and merged[-1][2] == u and merged[-1][1] == s:
            merged[-1] = (merged[-1][0], e, u)
        else:
            merged.append((s, e, u))
    return merged


# ---------------------------------------------------------------------------
# Combining layers and overrides


def _sorted_layers(schedule: ScheduleSpec) -> list[Layer]:
    return sorted(schedule.layers, key=lambda layer: (-layer.priority, layer.id))


def _resolve(
    base_by_layer: Sequence[tuple[int, int | None]], overrides: Iterable[OverrideSpec]
) -> tuple[OnCall, ...]:
    """``base_by_layer``: (layer_id, user or None) highest priority first; ``overrides``
    active at the instant. Returns who is on call, in a stable order."""
    active = sorted(overrides, key=lambda o: o.id)
    removed = {o.user_id for o in active if o.kind == OverrideKind.REMOVE}
    slot: OnCall | None = None
    for layer_id, user in base_by_layer:
        if user is not None and user not in removed:
            slot = OnCall(user, Source.LAYER, layer_id=layer_id)
            break
    for o in active:
        if o.kind != OverrideKind.REPLACE:
            continue
        if o.replaced_user_id is None or (slot is not None and slot.user_id == o.replaced_user_id):
            slot = OnCall(o.user_id, Source.OVERRIDE, override_id=o.id)
    result: list[OnCall] = [slot] if slot is not None else []
    seen = {slot.user_id} if slot is not None else set()
    for o in active:
        if o.kind == OverrideKind.ADD and o.user_id not in seen:
            result.append(OnCall(o.user_id, Source.OVERRIDE, override_id=o.id))
            seen.add(o.user_id)
    return tuple(result)


def oncall_at(schedule: ScheduleSpec, at: datetime) -> tuple[OnCall, ...]:
    """Who is on call at instant ``at`` (aware), with the layer/override responsible."""
    _check_aware(at)
    tz = _zone(schedule.timezone)
    base = [(layer.id, layer_user_at(layer, tz, at)) for layer in _sorted_layers(schedule)]
    active = [o for o in schedule.overrides if o.start <= at < o.end]
    return _resolve(base, active)


def final_schedule(
    schedule: ScheduleSpec, start: datetime, end: datetime, *, include_gaps: bool = True
) -> list[Shift]:
    """The final schedule on [start, end): shifts sorted by (start, user), consecutive
    stretches of the same person from the same source merged; gaps (nobody on call) as
    ``user_id=None`` shifts unless ``include_gaps`` is false."""
    _check_aware(start, end)
    if end <= start:
        raise ValueError("end must be after start")
    tz = _zone(schedule.timezone)
    layers = _sorted_layers(schedule)
    segments = [layer_segments(layer, tz, start, end) for layer in layers]
    overrides = [o for o in schedule.overrides if o.start < end and o.end > start]
    cuts = {start, end}
    for segs in segments:
        for s, e, _ in segs:
            cuts.add(s)
            cuts.add(e)
    for o in overrides:
        cuts.add(max(o.start, start))
        cuts.add(min(o.end, end))
    points = sorted(cuts)
    pointers = [0] * len(layers)
    # Overrides enter the active set in start order and leave when they end (a sweep,
    # not a scan of every override for every interval).
    pending = sorted(overrides, key=lambda o: o.start)
    next_pending = 0
    active: list[OverrideSpec] = []
    open_starts: dict[tuple, datetime] = {}
    done: list[Shift] = []
    gap_key = (None, Source.GAP, None, None)
    for a in points[:-1]:
        base: list[tuple[int, int | None]] = []
        for idx, layer in enumerate(layers):
            segs = segments[idx]
            p = pointers[idx]
            while p < len(segs) and segs[p][1] <= a:
                p += 1
            pointers[idx] = p
            user = segs[p][2] if p < len(segs) and segs[p][0] <= a else None
            base.append((layer.id, user))
        while next_pending < len(pending) and pending[next_pending].start <= a:
            active.append(pending[next_pending])
            next_pending += 1
        if active:
            active = [o for o in active if o.end > a]
        now_on = _resolve(base, active)
        keys = {(oc.user_id, oc.source, oc.layer_id, oc.override_id) for oc in now_on}
        if not keys:
            keys = {gap_key}
        for key in [k for k in open_starts if k not in keys]:
            done.append(Shift(open_starts.pop(key), a, *key, schedule_id=schedule.id))
        for key in keys:
            if key not in open_starts:
                open_starts[key] = a
    for key, shift_start in open_starts.items():
        done.append(Shift(shift_start, end, *key, schedule_id=schedule.id))
    if not include_gaps:
        done = [s for s in done if s.user_id is not None]
    done.sort(key=lambda s: (s.start, s.user_id is None, s.user_id or 0))
    return done


def next_handoff(
    schedule: ScheduleSpec,
    after: datetime,
    *,
    horizon: timedelta = timedelta(days=60),
) -> datetime | None:
    """The first instant after ``after`` where the set of people on call changes."""
    _check_aware(after)
    now = {oc.user_id for oc in oncall_at(schedule, after)}
    limit = after + horizon
    span = timedelta(days=2)
    # Look a little ahead first and widen only when nothing changes: most schedules
    # hand off within days, and the console asks this for a whole page of schedules.
    while True:
        window_end = min(after + span, limit)
        for shift in final_schedule(schedule, after, window_end):
            if shift.start > after and {oc.user_id for oc in oncall_at(schedule, shift.start)} != now:
                return shift.start
        if window_end >= limit:
            return None
        span *= 6


def local_day_bounds(day: date, tz_name: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of a local calendar day (23/24/25 hours long)."""
    tz = _zone(tz_name)
    return (
        _to_utc(datetime.combine(day, time()), tz),
        _to_utc(datetime.combine(day + timedelta(days=1), time()), tz),
    )
