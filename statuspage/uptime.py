"""Uptime arithmetic, pure (no database): a component's status log in, per-day uptime out.

The rule, also written on the page: a major outage counts fully as downtime, a
partial outage at 30%, degraded performance and maintenance not at all. Days are
calendar days in the page's time zone, so a day can be 23 or 25 hours long around a
DST change; time before the component existed or after "now" is not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

OPERATIONAL = "operational"
DEGRADED = "degraded_performance"
PARTIAL = "partial_outage"
MAJOR = "major_outage"
MAINTENANCE = "under_maintenance"

DOWNTIME_WEIGHT: dict[str, float] = {MAJOR: 1.0, PARTIAL: 0.3}
# Worst status of a day decides the colour of its bar.
STATUS_RANK: dict[str, int] = {OPERATIONAL: 0, MAINTENANCE: 1, DEGRADED: 2, PARTIAL: 3, MAJOR: 4}
UPTIME_RULE = (
    "Uptime counts a major outage fully as downtime and a partial outage at 30%; "
    "degraded performance and maintenance do not count as downtime."
)


@dataclass(slots=True)
class DayUptime:
    day: date
    tracked_seconds: float
    # Seconds spent in each non-operational status that day.
    seconds_by_status: dict[str, float] = field(default_factory=dict)
    # Derived once in __post_init__: a page reads them several times for 4,500 days.
    downtime_seconds: float = field(init=False, default=0.0)
    worst_status: str = field(init=False, default=OPERATIONAL)

    def __post_init__(self) -> None:
        worst, downtime = OPERATIONAL, 0.0
        for status, secs in self.seconds_by_status.items():
            downtime += DOWNTIME_WEIGHT.get(status, 0.0) * secs
            if secs > 0 and STATUS_RANK.get(status, 0) > STATUS_RANK[worst]:
                worst = status
        self.downtime_seconds, self.worst_status = downtime, worst

    @property
    def has_data(self) -> bool:
        return self.tracked_seconds > 0

    @property
    def uptime(self) -> float | None:
        """Fraction 0..1, or None when the day has no tracked time."""
        if not self.has_data:
            return None
        return max(0.0, 1.0 - self.downtime_seconds / self.tracked_seconds)


def _utc(value: datetime) -> datetime:
    # Aware datetimes with the *same* tzinfo subtract as wall-clock times, which is
    # wrong across DST; always compute in UTC.
    return value.astimezone(UTC)


@lru_cache(maxsize=8192)
def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return _utc(start), _utc(end)


def uptime_days(
    *,
    changes: Sequence[tuple[datetime, str]],
    initial_status: str,
    tz: ZoneInfo,
    now: datetime,
    days: int = 90,
    tracked_from: datetime | None = None,
) -> list[DayUptime]:
    """Per-day uptime for the ``days`` calendar days ending today (in ``tz``), oldest first.

    ``changes``: (changed_at, new_status), in any order. ``initial_status``: the status
    before the first change (or throughout, without changes). ``tracked_from``: when
    the component started to exist; earlier time counts as no data.
    """
    today = now.astimezone(tz).date()
    bounds = _day_bounds_ts(today - timedelta(days=days - 1), days, tz)
    return _span(_ordered(changes), initial_status, bounds, now.timestamp(), tracked_from)


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class PastUptime:
    """The days of a window before today: they can no longer change (the status log is
    append-only and stamped with the time of the change), so a page computes them once a
    day instead of on every render. Compared by identity: presentation code may keep
    markup for an instance in a WeakKeyDictionary."""

    days: tuple[DayUptime, ...]
    # The status at the start of today, where today's bar starts from.
    status_at_end: str


def past_uptime(
    *,
    changes: Sequence[tuple[datetime, str]],
    initial_status: str,
    tz: ZoneInfo,
    today: date,
    days: int = 90,
    tracked_from: datetime | None = None,
) -> PastUptime:
    """The first ``days - 1`` days of the window that ends with ``today``: the same
    values as ``uptime_days`` gives for them at any time of ``today``. ``changes``: those
    before the start of ``today`` (later ones are ignored)."""
    today_start = local_day_bounds(today, tz)[0].timestamp()
    ordered = [change for change in _ordered(changes) if change[0] < today_start]
    bounds = _day_bounds_ts(today - timedelta(days=days - 1), days - 1, tz)
    result = _span(ordered, initial_status, bounds, today_start, tracked_from) if bounds else []
    return PastUptime(days=tuple(result), status_at_end=ordered[-1][1] if ordered else initial_status)


def today_uptime(
    *,
    changes: Sequence[tuple[datetime, str]],
    initial_status: str,
    tz: ZoneInfo,
    now: datetime,
    tracked_from: datetime | None = None,
) -> DayUptime:
    """Today (in ``tz``) up to ``now``: the last day of ``uptime_days``. ``initial_status``:
    the status at the start of today (``PastUptime.status_at_end``); ``changes``: those
    from the start of today on."""
    today = now.astimezone(tz).date()
    bounds = _day_bounds_ts(today, 1, tz)
    (day,) = _span(_ordered(changes), initial_status, bounds, now.timestamp(), tracked_from)
    return day


def _ordered(changes: Sequence[tuple[datetime, str]]) -> list[tuple[float, str]]:
    return sorted((at.timestamp(), status) for at, status in changes)


def _span(
    ordered: list[tuple[float, str]],
    initial_status: str,
    bounds: tuple[tuple[date, float, float], ...],
    now_ts: float,
    tracked_from: datetime | None,
) -> list[DayUptime]:
    # Epoch seconds throughout: float arithmetic is several times faster than datetime
    # arithmetic, and a page computes 90 days for each of its components.
    window_start = bounds[0][1]
    floor = max(window_start, tracked_from.timestamp()) if tracked_from else window_start

    # Segments (start, end, status) covering [floor, now], operational ones left out.
    segments: list[tuple[float, float, str]] = []
    current, cursor = initial_status, floor
    for at, status in ordered:
        if at > cursor:
            if current != OPERATIONAL:
                segments.append((cursor, min(at, now_ts), current))
            cursor = at
        current = status
        if cursor >= now_ts:
            break
    if cursor < now_ts and current != OPERATIONAL:
        segments.append((cursor, now_ts, current))

    result: list[DayUptime] = []
    seg_index, seg_count = 0, len(segments)
    for day, day_start, day_end in bounds:
        lo = day_start if day_start > floor else floor
        hi = day_end if day_end < now_ts else now_ts
        tracked = hi - lo if hi > lo else 0.0
        by_status: dict[str, float] = {}
        # Segments are sorted and non-overlapping: skip the ones that ended before today.
        while seg_index < seg_count and segments[seg_index][1] <= day_start:
            seg_index += 1
        i = seg_index
        while tracked and i < seg_count and segments[i][0] < hi:
            seg_start, seg_end, status = segments[i]
            overlap = (seg_end if seg_end < hi else hi) - (seg_start if seg_start > lo else lo)
            if overlap > 0:
                by_status[status] = by_status.get(status, 0.0) + overlap
            i += 1
        result.append(
            _clean_day(day, tracked)
            if not by_status
            else DayUptime(day=day, tracked_seconds=tracked, seconds_by_status=by_status)
        )
    return result


@lru_cache(maxsize=256)
def _day_bounds_ts(first_day: date, days: int, tz: ZoneInfo) -> tuple[tuple[date, float, float], ...]:
    result = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        start, end = local_day_bounds(day, tz)
        result.append((day, start.timestamp(), end.timestamp()))
    return tuple(result)


_CLEAN_DAYS: dict[tuple[date, float], DayUptime] = {}


def _clean_day(day: date, tracked: float) -> DayUptime:
    # Most days of most components are clean: one shared object per (day, tracked time)
    # instead of thousands of equal ones. Never mutated after creation.
    key = (day, tracked)
    found = _CLEAN_DAYS.get(key)
    if found is None:
        if len(_CLEAN_DAYS) > 4096:
            _CLEAN_DAYS.clear()
        found = _CLEAN_DAYS[key] = DayUptime(day=day, tracked_seconds=tracked)
    return found


def uptime_percent(days: Sequence[DayUptime]) -> float | None:
    """Uptime over the whole span, weighted by tracked time; None without data."""
    tracked = sum(d.tracked_seconds for d in days)
    if not tracked:
        return None
    return max(0.0, 1.0 - sum(d.downtime_seconds for d in days) / tracked)


def format_duration(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
