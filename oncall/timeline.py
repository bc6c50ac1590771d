"""Data for the server-rendered schedule timeline in the console (no JavaScript): rows of
bars positioned in percent of the span, times shown in the schedule's zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from oncall import schedule_engine as engine


@dataclass(frozen=True)
class Bar:
    left: float
    width: float
    label: str
    title: str
    css: str
    hue: int
    lane: int = 0


@dataclass
class Row:
    label: str
    kind: str  # final | overrides | layer
    bars: list[Bar] = field(default_factory=list)

    @property
    def lanes(self) -> int:
        return max((b.lane for b in self.bars), default=0) + 1

    @property
    def height(self) -> int:
        return self.lanes * 24


@dataclass
class Timeline:
    start: datetime
    end: datetime
    timezone: str
    days: list[Bar]
    rows: list[Row]
    now_left: float | None


def _name(users: dict[int, object], user_id: int | None) -> str:
    user = users.get(user_id or 0)
    if user is None:
        return "nobody" if user_id is None else f"user {user_id}"
    return getattr(user, "first_name", "") or user.get_username()


def _hue(user_id: int | None) -> int:
    return (user_id or 0) * 137 % 360


def _override_label(o: engine.OverrideSpec, users: dict[int, object]) -> str:
    who = _name(users, o.user_id)
    if o.kind == engine.OverrideKind.ADD:
        return f"+ {who}"
    if o.kind == engine.OverrideKind.REMOVE:
        return f"- {who}"
    if o.replaced_user_id is None:
        return f"{who} takes over"
    return f"{who} for {_name(users, o.replaced_user_id)}"


def _lanes(items: list[tuple[datetime, datetime]]) -> list[int]:
    """Greedy interval partitioning so concurrent bars (an added person) stack."""
    lane_ends: list[datetime] = []
    out: list[int] = []
    for s, e in items:
        for i, end in enumerate(lane_ends):
            if end <= s:
                lane_ends[i] = e
                out.append(i)
                break
        else:
            lane_ends.append(e)
            out.append(len(lane_ends) - 1)
    return out


def build_timeline(
    *,
    spec: engine.ScheduleSpec,
    start_day: date,
    days: int,
    users: dict[int, object],
    now: datetime | None = None,
    override_labels: dict[int, str] | None = None,
) -> Timeline:
    tz = ZoneInfo(spec.timezone)
    start, _ = engine.local_day_bounds(start_day, spec.timezone)
    end, _ = engine.local_day_bounds(start_day + timedelta(days=days), spec.timezone)
    total = (end - start).total_seconds()

    def pos(s: datetime, e: datetime) -> tuple[float, float]:
        s, e = max(s, start), min(e, end)
        return (
            round((s - start).total_seconds() / total * 100, 4),
            round((e - s).total_seconds() / total * 100, 4),
        )

    def when(s: datetime, e: datetime) -> str:
        return f"{s.astimezone(tz):%a %d %b %H:%M} – {e.astimezone(tz):%a %d %b %H:%M}"

    day_bars = []
    for i in range(days):
        d = start_day + timedelta(days=i)
        ds, de = engine.local_day_bounds(d, spec.timezone)
        left, width = pos(ds, de)
        day_bars.append(Bar(left, width, f"{d:%a %d}", f"{d:%A %d %B %Y}", "day", 0))

    layer_names = {layer.id: layer.name or f"layer {layer.priority}" for layer in spec.layers}
    final = Row("Final schedule", "final")
    shifts = engine.final_schedule(spec, start, end)
    for shift, lane in zip(shifts, _lanes([(s.start, s.end) for s in shifts]), strict=True):
        left, width = pos(shift.start, shift.end)
        if shift.user_id is None:
            final.bars.append(
                Bar(left, width, "gap", f"Nobody on call: {when(shift.start, shift.end)}", "gap", 0, lane)
            )
            continue
        source = "override" if shift.source == engine.Source.OVERRIDE else layer_names.get(shift.layer_id, "")
        name = _name(users, shift.user_id)
        final.bars.append(
            Bar(
                left,
                width,
                name,
                f"{name}: {when(shift.start, shift.end)} ({source})",
                "override" if shift.override_id else "shift",
                _hue(shift.user_id),
                lane,
            )
        )
    rows = [final]

    overrides = sorted((o for o in spec.overrides if o.start < end and o.end > start), key=lambda o: o.start)
    if overrides:
        row = Row("Overrides", "overrides")
        for o, lane in zip(overrides, _lanes([(o.start, o.end) for o in overrides]), strict=True):
            left, width = pos(o.start, o.end)
            label = (override_labels or {}).get(o.id) or _override_label(o, users)
            row.bars.append(
                Bar(left, width, label, f"{label}: {when(o.start, o.end)}", "override", _hue(o.user_id), lane)
            )
        rows.append(row)

    for layer in sorted(spec.layers, key=lambda layer: (-layer.priority, layer.id)):
        row = Row(f"{layer_names[layer.id]} ({layer.priority})", "layer")
        for s, e, user_id in engine.layer_segments(layer, tz, start, end):
            left, width = pos(s, e)
            name = _name(users, user_id)
            row.bars.append(Bar(left, width, name, f"{name}: {when(s, e)}", "shift", _hue(user_id)))
        rows.append(row)

    now_left = pos(now, end)[0] if now is not None and start <= now < end else None
    return Timeline(start, end, spec.timezone, day_bars, rows, now_left)
