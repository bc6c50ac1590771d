"""The built-in SMTP listener (``manage.py smtpd``) for installs without an ESP.

It only accepts and stores: unknown recipients are refused at RCPT (550), messages over
INBOUND_EMAIL_MAX_BYTES at MAIL (SIZE) or DATA (552), and an accepted message is saved
by ``ircore.inbound.inbound_store`` (which enqueues its processing) before the 250, so
a message the sender was told we have is never lost. A database outage answers 451 so
the sending server retries.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings
from django.db import DatabaseError, connections

from ircore import inbound
from ircore.models import InboundMessage, SecurityLogEntry

log = logging.getLogger(__name__)
T = TypeVar("T")


async def _db(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ORM work off the event loop (Django refuses it in async code).

    Each call runs in a fresh copy of the event loop's context, and Django's connections
    are context-local: whatever the call opens no later call will see. So it is closed
    here, whatever CONN_MAX_AGE says; left to the garbage collector, every message left
    an idle PostgreSQL session behind until a cyclic collection happened to run."""

    def run() -> T:
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(run)


def _peer(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")


class InboundHandler:
    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        try:
            known = await _db(inbound.recipient_lookup, address)
        except DatabaseError:
            log.exception("recipient look-up failed")
            return "451 4.3.0 Temporary failure, please try again later"
        if known is None:
            return f"550 5.1.1 <{address}>: recipient unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        try:
            message, _created = await _db(
                inbound.inbound_store, raw=bytes(raw), via=InboundMessage.Via.SMTP,
                recipients=envelope.rcpt_tos, mail_from=envelope.mail_from or "",
                remote_addr=_peer(session),
            )
        except DatabaseError:
            log.exception("could not store an inbound message")
            return "451 4.3.0 Temporary failure, please try again later"
        if message is None:
            return "552 5.3.4 Message too big"
        return f"250 2.0.0 OK: queued as {message.pk}"


class _SMTP(SMTP):
    """aiosmtpd answers 552 itself when SIZE or the data exceed the limit; record it in
    the security log like every other refusal."""

    _mail_arg = ""

    async def smtp_MAIL(self, arg: str | None) -> None:
        # A SIZE refusal comes before the envelope has a sender: keep it for the log.
        self._mail_arg = arg or ""
        await super().smtp_MAIL(arg)

    async def push(self, status: Any) -> None:
        text = status.decode() if isinstance(status, bytes) else str(status)
        if text.startswith("552 Error"):
            envelope = self.envelope
            sender = (envelope.mail_from if envelope else "") or ""
            if not sender:
                found = re.search(r"<([^<>]*)>", self._mail_arg)
                sender = found.group(1) if found else ""
            try:
                await _db(
                    inbound.security_log_add, reason=SecurityLogEntry.Reason.OVERSIZE,
                    detail=f"SMTP: {text[4:]} (limit {self.data_size_limit} bytes)",
                    sender=sender,
                    recipient=", ".join(envelope.rcpt_tos) if envelope else "",
                    remote_addr=_peer(self.session) if self.session else "",
                )
            except DatabaseError:
                log.exception("could not write the security log")
        await super().push(status)


class InboundController(Controller):
    def factory(self) -> SMTP:
        return _SMTP(self.handler, **self.SMTP_kwargs)


def tls_context() -> ssl.SSLContext | None:
    """STARTTLS when a certificate is configured (sending servers encrypt
    opportunistically; without it they deliver in plain text)."""
    if not settings.INBOUND_SMTP_TLS_CERT:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.INBOUND_SMTP_TLS_CERT, settings.INBOUND_SMTP_TLS_KEY or None)
    return context


def controller_build(*, host: str | None = None, port: int | None = None) -> InboundController:
    return InboundController(
        InboundHandler(),
        hostname=host or settings.INBOUND_SMTP_HOST,
        port=port if port is not None else settings.INBOUND_SMTP_PORT,
        server_hostname=settings.INBOUND_EMAIL_DOMAIN,
        data_size_limit=inbound.max_bytes(),
        enable_SMTPUTF8=True,
        tls_context=tls_context(),
        ready_timeout=10,
    )
