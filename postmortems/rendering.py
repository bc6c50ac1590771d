"""Markdown in, safe HTML out; template placeholders; Markdown export.

Bodies are written by team members but read by everyone with access (and may be
published), so the HTML is sanitized with nh3 after rendering: raw HTML in the
markdown is allowed only as far as the allow-list below, event handlers and
``javascript:`` URLs never survive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

import markdown
import nh3
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from incidents.models import Incident

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"align", "style"},
    "td": {"align", "style"},
    "code": {"class"},
    "abbr": {"title"},
}
URL_SCHEMES = {"http", "https", "mailto"}
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
TEMPLATE_PLACEHOLDERS = (
    "title", "incidents", "services", "severity", "started", "resolved", "duration", "team",
)


def render_markdown(text: str) -> SafeString:
    html = markdown.markdown(
        text or "", extensions=["tables", "fenced_code", "sane_lists"], output_format="html"
    )
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        # Markdown tables align cells with style="text-align: ..."; nothing else passes.
        filter_style_properties={"text-align"},
    )
    return mark_safe(clean)  # noqa: S308 - sanitized by nh3 just above


def _fmt(value: datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z") if value else "(open)"


def _duration(start: datetime | None, end: datetime | None) -> str:
    if not start or not end:
        return "(ongoing)"
    minutes = int((end - start).total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d"] if days else []
    if hours or days:
        parts.append(f"{hours}h")
    parts.append(f"{minutes}m")
    return " ".join(parts)


def template_context(*, incidents: Iterable[Incident], title: str, team_name: str) -> dict[str, str]:
    incidents = sorted(incidents, key=lambda inc: inc.triggered_at)
    started = incidents[0].triggered_at if incidents else None
    ends = [inc.resolved_at for inc in incidents]
    resolved = max(ends) if ends and all(ends) else None  # type: ignore[type-var]
    severities = sorted({inc.severity for inc in incidents})
    return {
        "title": title,
        "incidents": ", ".join(f"{inc.ref} {inc.title}" for inc in incidents),
        "services": ", ".join(sorted({inc.service.name for inc in incidents})),
        "severity": ", ".join(severities),
        "started": _fmt(started),
        "resolved": _fmt(resolved),
        "duration": _duration(started, resolved),
        "team": team_name,
    }


def template_fill(body: str, context: dict[str, str]) -> str:
    """Replace known ``{{ name }}`` placeholders; anything else is left as written. Not
    the Django template language on purpose: team-written templates must not reach
    attributes of live objects."""
    return _PLACEHOLDER.sub(lambda m: context.get(m.group(1), m.group(0)), body)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def postmortem_markdown(postmortem: object) -> str:
    """The whole document as one Markdown file: body, contributing factors, action
    items and the visible timeline with annotations."""
    pm = postmortem
    lines = [pm.body.rstrip(), ""]  # type: ignore[attr-defined]
    factors = [f.strip() for f in pm.contributing_factors.splitlines() if f.strip()]  # type: ignore[attr-defined]
    if factors:
        lines += ["## Contributing factors", "", *[f"- {f.lstrip('-* ')}" for f in factors], ""]
    items = list(pm.action_items.select_related("owner"))  # type: ignore[attr-defined]
    if items:
        lines += ["## Action items", "", "| Title | Kind | Priority | Owner | Due | Status | Ticket |",
                  "|---|---|---|---|---|---|---|"]
        for item in items:
            owner = item.owner.get_username() if item.owner else ""
            lines.append(
                f"| {_md_cell(item.title)} | {item.get_kind_display()} | {item.get_priority_display()} "
                f"| {_md_cell(owner)} | {item.due_date or ''} | {item.get_status_display()} "
                f"| {_md_cell(item.ticket_url)} |"
            )
        lines.append("")
    entries = list(pm.timeline.filter(hidden=False))  # type: ignore[attr-defined]
    if entries:
        lines += ["## Timeline", "", "| Time | Incident | Event | Note |", "|---|---|---|---|"]
        for entry in entries:
            event = _md_cell(entry.message) + (f" ({_md_cell(entry.actor)})" if entry.actor else "")
            if entry.milestone:
                event = f"**{event}**"
            note = _md_cell(entry.annotation)
            lines.append(f"| {_fmt(entry.at)} | {entry.incident_ref} | {event} | {note} |")
        lines.append("")
    return "\n".join(lines)
