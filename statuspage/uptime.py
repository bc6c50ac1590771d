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
    now_utc = _utc(now)
    today = now.astimezone(tz).date()
    first_day = today - timedelta(days=days - 1)
    window_start, _ = local_day_bounds(first_day, tz)
    floor = max(window_start, _utc(tracked_from)) if tracked_from else window_start

    # Segments (start, end, status) covering [floor, now].
    ordered = sorted((_utc(at), status) for at, status in changes)
    segments: list[tuple[datetime, datetime, str]] = []
    current, cursor = initial_status, floor
    for at, status in ordered:
        if at > cursor:
            segments.append((cursor, min(at, now_utc), current))
            cursor = at
        current = status
        if cursor >= now_utc:
            break
    if cursor < now_utc:
        segments.append((cursor, now_utc, current))

    result: list[DayUptime] = []
    seg_index = 0
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        day_start, day_end = local_day_bounds(day, tz)
        lo, hi = max(day_start, floor), min(day_end, now_utc)
        tracked = max(0.0, (hi - lo).total_seconds())
        by_status: dict[str, float] = {}
        # Segments are sorted and non-overlapping: skip the ones that ended before today.
        while seg_index < len(segments) and segments[seg_index][1] <= day_start:
            seg_index += 1
        i = seg_index
        while tracked and i < len(segments) and segments[i][0] < hi:
            seg_start, seg_end, status = segments[i]
            overlap = (min(seg_end, hi) - max(seg_start, lo)).total_seconds()
            if overlap > 0 and status != OPERATIONAL:
                by_status[status] = by_status.get(status, 0.0) + overlap
            i += 1
        result.append(DayUptime(day=day, tracked_seconds=tracked, seconds_by_status=by_status))
    return result


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
