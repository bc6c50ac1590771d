"""Inbound email tests: django-q2 runs tasks in-process (its own sync switch) and the
on-commit work (task enqueues, confirmation emails) runs as after a real commit."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest

from ircore.testing import free_loopback_port

CORPUS = Path(__file__).parent / "corpus"


@pytest.fixture(autouse=True)
def _inbound_settings(settings, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.INBOUND_EMAIL_DOMAIN = "in.example.net"
    settings.DEFAULT_FROM_EMAIL = "ircore <ircore@example.net>"
    settings.SERVER_EMAIL = "ircore@example.net"


@pytest.fixture
def deliver(db, django_capture_on_commit_callbacks):
    """Store a message as the SMTP listener would and run its task; returns the row."""
    from ircore.inbound import inbound_store
    from ircore.models import InboundMessage

    def send(raw: bytes | str | EmailMessage, to: list[str] | str, mail_from: str = "",
             via: str = InboundMessage.Via.TEST, **extra):
        if isinstance(raw, EmailMessage):
            raw = raw.as_bytes()
        if isinstance(raw, str):
            raw = raw.encode()
        recipients = [to] if isinstance(to, str) else to
        with django_capture_on_commit_callbacks(execute=True):
            message, _ = inbound_store(raw=raw, via=via, recipients=recipients, mail_from=mail_from, **extra)
        if message is not None:
            message.refresh_from_db()
        return message

    return send


def make_email(*, subject: str = "Disk full on db1", body: str = "/var is 98% full",
               sender: str = "nagios@monitoring.example.com", to: str = "", html: str | None = None,
               headers: dict[str, str] | None = None, attachments: tuple[tuple[str, bytes, str], ...] = ()):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    message["Message-ID"] = make_msgid(domain="monitoring.example.com")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, data, ctype in attachments:
        maintype, subtype = ctype.split("/", 1)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


@pytest.fixture
def smtp_server(transactional_db, settings):
    """ircore's SMTP listener (the aiosmtpd server of `manage.py smtpd`) on a free port."""
    from ircore.smtp_server import controller_build

    settings.INBOUND_EMAIL_MAX_BYTES = 64 * 1024
    controller = controller_build(host="127.0.0.1", port=free_loopback_port())
    controller.start()
    yield controller
    controller.stop()
