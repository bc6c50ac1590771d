"""The one place that renders and sends email (DESIGN.md §5).

A message named ``<name>`` is three templates: ``emails/<name>-subject.txt``,
``emails/<name>-body.txt`` and, optionally, ``emails/<name>-body.html``. They are
rendered with the same context and sent through Django's configured email backend,
so SMTP, an ESP through django-anymail, the console or file backend all work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str | None


def email_render(*, name: str, context: Mapping[str, Any]) -> RenderedEmail:
    ctx = dict(context)
    # Subjects are one line whatever the template's whitespace: a newline in a
    # header would be rejected by Django (header injection guard).
    subject = " ".join(render_to_string(f"emails/{name}-subject.txt", ctx).split())
    text = render_to_string(f"emails/{name}-body.txt", ctx)
    try:
        html: str | None = render_to_string(f"emails/{name}-body.html", ctx)
    except TemplateDoesNotExist:
        html = None
    return RenderedEmail(subject=subject, text=text, html=html)


def email_build(
    *,
    name: str,
    to: Sequence[str],
    context: Mapping[str, Any],
    from_email: str | None = None,
    reply_to: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMultiAlternatives:
    rendered = email_render(name=name, context=context)
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=from_email or settings.DEFAULT_FROM_EMAIL,
        to=list(to),
        reply_to=list(reply_to) if reply_to else None,
        headers=dict(headers or {}),
    )
    if rendered.html is not None:
        message.attach_alternative(rendered.html, "text/html")
    return message


def email_send(
    *,
    name: str,
    to: Sequence[str],
    context: Mapping[str, Any],
    from_email: str | None = None,
    reply_to: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
    connection: Any = None,
) -> EmailMultiAlternatives:
    """Render and send; raises the backend's error so a calling task can retry."""
    message = email_build(
        name=name, to=to, context=context, from_email=from_email, reply_to=reply_to, headers=headers
    )
    if connection is not None:
        message.connection = connection
    message.send(fail_silently=False)
    return message
