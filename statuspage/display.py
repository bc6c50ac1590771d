"""Presentation helpers for the public page: labels, symbols, and the uptime bars.

The 90-day bars are built here as one SVG string per component rather than in a
template loop: 50 components x 90 days is 4,500 rectangles, and a template loop over
them would dominate an uncached render.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from weakref import WeakKeyDictionary

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from statuspage.uptime import DayUptime, PastUptime, format_duration

STATUS_LABEL = {
    "operational": "Operational",
    "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
    "under_maintenance": "Under maintenance",
}
# A symbol next to every colour, so status is never told by colour alone.
STATUS_SYMBOL = {
    "operational": "\u2714",  # heavy check mark
    "degraded_performance": "\u25b2",  # triangle
    "partial_outage": "\u25c6",  # diamond
    "major_outage": "\u2716",  # heavy x
    "under_maintenance": "\u2692",  # hammer and pick
}
INDICATOR_CLASS = {
    "none": "operational",
    "minor": "degraded_performance",
    "major": "partial_outage",
    "critical": "major_outage",
    "maintenance": "under_maintenance",
}

BAR_WIDTH, BAR_GAP, BAR_HEIGHT = 3, 2, 34


@lru_cache(maxsize=1024)
def day_label(day: date) -> str:
    return f"{day:%b} {day.day}, {day.year}"


def day_title(day: DayUptime) -> str:
    label = day_label(day.day)
    if not day.has_data:
        return f"{label}: no data"
    parts = [
        f"{STATUS_LABEL.get(status, status).lower()} {format_duration(secs)}"
        for status, secs in sorted(day.seconds_by_status.items(), key=lambda kv: -kv[1])
        if secs >= 30
    ]
    if not parts:
        return f"{label}: 100%, no incidents"
    return f"{label}: {format_percent(day.uptime)} uptime ({'; '.join(parts)})"


# Short class names: 50 components x 90 days is 4,500 rectangles per page.
DAY_CLASS = {
    "operational": "o",
    "degraded_performance": "d",
    "partial_outage": "p",
    "major_outage": "m",
    "under_maintenance": "u",
    "nodata": "n",
}


def day_class(day: DayUptime) -> str:
    if not day.has_data:
        return "nodata"
    worst = day.worst_status
    if worst == "operational" or day.seconds_by_status.get(worst, 0) < 30:
        return "operational"
    return worst


def format_percent(value: float | None) -> str:
    if value is None:
        return "no data"
    # Never round a bad day up to 100%: show 99.99% unless it really is 100.
    if value < 1.0:
        return f"{min(value * 100, 99.99):.2f}%"
    return "100%"


def _rect(index: int, day: DayUptime) -> str:
    return (
        f'<rect x="{index * (BAR_WIDTH + BAR_GAP)}" width="{BAR_WIDTH}" height="{BAR_HEIGHT}" '
        f'class="{DAY_CLASS[day_class(day)]}"><title>{day_title(day)}</title></rect>'
    )


@lru_cache(maxsize=8192)
def _clean_rect(index: int, day: date, tracked: float) -> str:
    # A clean day's markup depends only on its position and date: built once for all
    # the components of a page instead of 50 times.
    return _rect(index, DayUptime(day=day, tracked_seconds=tracked))


# Markup of the memoized days before today (see selectors.component_uptimes): the
# rectangles and the number of bad days, built once a day per component and process.
_PAST_MARKUP: WeakKeyDictionary[PastUptime, tuple[str, int]] = WeakKeyDictionary()


def _rects(days: Sequence[DayUptime], start: int = 0) -> str:
    # Titles are made only of dates, numbers and our own labels (nothing to escape);
    # skipping escape() for 4,500 of them per page is a measurable share of a render.
    return "".join(
        _rect(i, day) if day.seconds_by_status else _clean_rect(i, day.day, day.tracked_seconds)
        for i, day in enumerate(days, start)
    )


def _past_markup(days: list[DayUptime], past: PastUptime | None) -> tuple[int, str, int]:
    """(how many of ``days`` are ``past``'s, their rectangles, their bad days)."""
    count = len(past.days) if past is not None else 0
    if not count or len(days) < count or days[count - 1] is not past.days[-1]:
        return 0, "", 0
    found = _PAST_MARKUP.get(past)
    if found is None:
        found = _PAST_MARKUP[past] = (_rects(past.days), _bad_days(past.days))
    return count, found[0], found[1]


def uptime_bars_svg(days: list[DayUptime], name: str, past: PastUptime | None = None) -> SafeString:
    """The bars; ``past``: the memoized first days of ``days``, whose markup is reused."""
    width = len(days) * (BAR_WIDTH + BAR_GAP) - BAR_GAP
    count, rects, _bad = _past_markup(days, past)
    rects += _rects(days[count:], count)
    # The wrapper lets phones show the last 30 days at a readable width (see base.html).
    return mark_safe(  # noqa: S308 - the only outside text, the name, is escaped
        f'<div class="barwrap"><svg class="bars" viewBox="0 0 {width} {BAR_HEIGHT}" '
        f'preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(name)}: uptime per day for the last {len(days)} days">' + rects + "</svg></div>"
    )


def _bad_days(days: Sequence[DayUptime]) -> int:
    return sum(1 for d in days if d.has_data and day_class(d) not in ("operational", "nodata"))


def bad_days(days: list[DayUptime], past: PastUptime | None = None) -> int:
    count, _markup, bad = _past_markup(days, past)
    return bad + _bad_days(days[count:])


def component_rows_html(rows: list[dict], uptime_days: int) -> SafeString:
    """A group's component rows (``rows`` as views.page_context makes them), built here
    rather than in a template loop: each row carries its ~10 KB of bars, and the template
    engine copies a loop's output at every level it passes through."""
    parts = []
    for r in rows:
        component = r["component"]
        parts.append(
            f'<div class="comp">\n<div class="row"><span class="name">{escape(component.name)}</span>\n'
            f'<span class="st {escape(component.status)}"><span aria-hidden="true">{escape(r["symbol"])}'
            f'</span> {escape(r["label"])}</span></div>\n'
        )
        if component.description:
            parts.append(f'<div class="desc">{escape(component.description)}</div>')
        parts.append("\n")
        if r["bars"]:
            bad = r["bad_days"]
            plural = "" if bad == 1 else "s"
            problems = f'<span class="sr">, {bad} day{plural} with problems</span>' if bad else ""
            parts.append(
                f'{r["bars"]}\n<div class="axis"><span class="d90">{uptime_days} days ago</span>'
                '<span class="d30">30 days ago</span><span class="line"></span>'
                f'<span>{escape(r["uptime"])} uptime{problems}</span><span class="line"></span>'
                "<span>Today</span></div>"
            )
        parts.append("\n</div>")
    return mark_safe("".join(parts))  # noqa: S308 - every outside value above is escaped
