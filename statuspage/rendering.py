"""Markdown for update bodies and template text for automatic updates.

Update bodies are written by staff but shown to the public (and mailed), so the
rendered HTML is always sanitized with nh3: script, event handlers, javascript: URLs
and style are dropped whatever the author typed.
"""

from __future__ import annotations

import markdown as md
import nh3
from django.template import Context, Template, TemplateSyntaxError

ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "b",
    "i",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "a",
    "blockquote",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "del",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}


def markdown_to_html(text: str) -> str:
    html = md.markdown(text or "", extensions=["sane_lists", "tables"], output_format="html")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def template_check(text: str) -> str | None:
    """The syntax error message for a template text, or None when it is fine."""
    try:
        Template(text)
    except TemplateSyntaxError as exc:
        return str(exc)
    return None


def template_render(text: str, values: dict[str, str]) -> str:
    """Render an UpdateTemplate text with plain string values only (no model objects, so
    a template can reach nothing else). The result is markdown, sanitized later."""
    try:
        return Template(text).render(Context(values, autoescape=False)).strip()
    except TemplateSyntaxError:
        return text
