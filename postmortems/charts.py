"""Server-rendered SVG charts for the metrics page: plain markup, readable without
JavaScript, printable, and every label escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

SEVERITY_COLORS = {"SEV1": "#b91c1c", "SEV2": "#ea580c", "SEV3": "#ca8a04", "SEV4": "#2563eb"}
WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 44


def _nice_max(value: float) -> float:
    """Smallest 1, 2 or 5 x 10^n at or above ``value``: round axis ticks."""
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for multiple in (1, 2, 5, 10):
        if multiple * magnitude >= value:
            return multiple * magnitude
    return 10 * magnitude


def _week_label(value: str) -> str:
    return date.fromisoformat(value).strftime("%d %b")


def _frame(title: str, y_max: float, y_unit: str, labels: Sequence[str], body: list[str],
           legend: list[tuple[str, str]]) -> SafeString:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'class="ir-chart" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
    ]
    # 1 and 5 x 10^n split in fifths, 2 x 10^n in quarters: round tick values.
    steps = 4 if f"{y_max:e}".startswith("2") else 5
    for i in range(steps + 1):
        value = y_max * i / steps
        y = TOP + plot_h - plot_h * i / steps
        text = f"{value:g}" if value < 100 else f"{value:.0f}"
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'fill="#555">{escape(text)}</text>')
    parts.append(f'<text x="8" y="{TOP - 10}" fill="#555">{escape(y_unit)}</text>')
    step = max(1, len(labels) // 12)
    slot = plot_w / max(len(labels), 1)
    for i, label in enumerate(labels):
        if i % step == 0:
            x = LEFT + slot * (i + 0.5)
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                         f'fill="#555">{escape(label)}</text>')
    parts += body
    x = LEFT
    for name, color in legend:
        parts.append(f'<rect x="{x}" y="{HEIGHT - 16}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{x + 14}" y="{HEIGHT - 7}" fill="#333">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above


def incidents_per_week_svg(weekly: Sequence[dict[str, Any]]) -> SafeString:
    """Stacked bars: incidents per week by severity."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    y_max = _nice_max(max((w["count"] for w in weekly), default=0))
    slot = plot_w / max(len(weekly), 1)
    bar = max(slot * 0.7, 1)
    body = []
    for i, week in enumerate(weekly):
        x = LEFT + slot * i + (slot - bar) / 2
        y = TOP + plot_h
        for sev, color in SEVERITY_COLORS.items():
            n = week["severity"].get(sev, 0)
            if not n:
                continue
            h = plot_h * n / y_max
            y -= h
            tip = escape(f"week of {week['week']}: {n} {sev}")
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                        f"<title>{tip}</title></rect>")
    labels = [_week_label(w["week"]) for w in weekly]
    return _frame("Incidents per week by severity", y_max, "incidents", labels, body,
                  list((k, v) for k, v in SEVERITY_COLORS.items()))


def _unit(max_seconds: float) -> tuple[str, float]:
    if max_seconds >= 2 * 86400:
        return "days", 86400
    if max_seconds >= 2 * 3600:
        return "hours", 3600
    return "minutes", 60


def mtta_mttr_trend_svg(weekly: Sequence[dict[str, Any]]) -> SafeString:
    """Weekly mean MTTA and MTTR as two lines; weeks without data leave a gap."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    peak = max((w[k] for w in weekly for k in ("mtta_mean", "mttr_mean") if w[k] is not None), default=0)
    unit, divisor = _unit(peak)
    y_max = _nice_max(peak / divisor)
    slot = plot_w / max(len(weekly), 1)
    body = []
    series = (("MTTA (mean)", "mtta_mean", "#7c3aed"), ("MTTR (mean)", "mttr_mean", "#059669"))
    for name, key, color in series:
        segment: list[str] = []
        segments = [segment]
        for i, week in enumerate(weekly):
            value = week[key]
            if value is None:
                segment = []
                segments.append(segment)
                continue
            x = LEFT + slot * (i + 0.5)
            y = TOP + plot_h - plot_h * (value / divisor) / y_max
            segment.append(f"{x:.1f},{y:.1f}")
            tip = escape(f"{name}, week of {week['week']}: {value / divisor:.1f} {unit}")
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                        f"<title>{tip}</title></circle>")
        for points in segments:
            if len(points) > 1:
                body.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" '
                            f'stroke-width="2"/>')
    labels = [_week_label(w["week"]) for w in weekly]
    return _frame("MTTA and MTTR per week", y_max, unit, labels, body,
                  [(name, color) for name, _, color in series])
