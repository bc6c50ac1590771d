"""django-anymail inbound webhooks (``/anymail/<esp>/inbound/``) into the one inbound
path: anymail checks the webhook secret (and the ESP's signature where it has one)
and parses the ESP's payload; this receiver only stores and enqueues."""

from __future__ import annotations

import logging
from typing import Any

from anymail.signals import inbound as anymail_inbound
from django.conf import settings

from ircore import inbound
from ircore.models import InboundMessage, SecurityLogEntry

log = logging.getLogger(__name__)


def esp_slug(esp_name: str) -> str:
    """Anymail's display name ("Amazon SES") to its URL segment ("amazon_ses")."""
    return "_".join(str(esp_name or "").lower().split())


def _raw(message: Any) -> bytes:
    try:
        return bytes(message.as_bytes())
    except Exception:  # noqa: BLE001 - a message the stdlib cannot re-serialize; keep what we can
        return str(message).encode("utf-8", errors="replace")


def on_inbound(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    message = event.message
    esp = esp_slug(esp_name)
    envelope_sender = str(getattr(message, "envelope_sender", "") or "")
    if esp != settings.INBOUND_EMAIL_ESP:
        # Only the configured ESP may hand us mail: an endpoint left open for another
        # ESP would be a way in without that ESP's signature checks.
        inbound.security_log_add(
            reason=SecurityLogEntry.Reason.NOT_ALLOWED,
            detail=f"inbound webhook from {esp_name!r}; INBOUND_EMAIL_ESP is {settings.INBOUND_EMAIL_ESP!r}",
            sender=envelope_sender,
        )
        return
    if message is None:
        return
    recipient = getattr(message, "envelope_recipient", None)
    if recipient:
        recipients = [r.strip() for r in str(recipient).split(",")]  # Mailgun may list several
    else:
        recipients = [a.addr_spec for a in (list(message.to or []) + list(message.cc or []))]
    extra: dict[str, Any] = {}
    if getattr(message, "stripped_text", None):
        extra["stripped_text"] = str(message.stripped_text)
    if getattr(message, "spam_score", None) is not None:
        extra["spam_score"] = message.spam_score
    stored, created = inbound.inbound_store(
        raw=_raw(message), via=InboundMessage.Via.WEBHOOK, esp=esp, recipients=recipients,
        mail_from=envelope_sender, extra=extra,
    )
    if stored is not None and not created:
        log.info("inbound message %s delivered again by %s: ignored", stored.message_id, esp)


def connect() -> None:
    anymail_inbound.connect(on_inbound, dispatch_uid="ircore.inbound_anymail")
