"""End to end over real SMTP: an alert pages Rita by email (sent through Django's SMTP
backend to a local capturing SMTP server), a reply built from that email goes with
smtplib to ircore's SMTP listener, and the incident changes; the confirmation comes
back through SMTP in the same thread."""

from __future__ import annotations

import email
import email.policy
import smtplib
import time
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from aiosmtpd.controller import Controller

from ircore.testing import free_loopback_port


class Capture:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 OK"

    def wait_for(self, predicate, timeout: float = 10.0) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages:
                if predicate(message):
                    return message
            time.sleep(0.02)
        raise AssertionError(f"no such message among {[m['Subject'] for m in self.messages]}")


@pytest.fixture
def outbound(settings):
    """The SMTP server ircore sends to (like the company's mail relay)."""
    capture = Capture()
    controller = Controller(capture, hostname="127.0.0.1", port=free_loopback_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    yield capture
    controller.stop()


@pytest.fixture
def chain(transactional_db, team_a, responder, secondary, service_a):
    from oncall.models import EscalationChain, EscalationStep

    chain = EscalationChain.objects.create(team=team_a, name="Default", is_default=True)
    first = EscalationStep.objects.create(chain=chain, position=0, delay_minutes=5)
    first.users.set([responder])
    second = EscalationStep.objects.create(chain=chain, position=1, delay_minutes=5)
    second.users.set([secondary])
    return chain


def reply_to(page: EmailMessage, body: str) -> EmailMessage:
    """What a mail client makes of "Reply": To the Reply-To, Re: subject, threading headers."""
    reply = EmailMessage()
    reply["From"] = "Rita <rita@example.com>"
    reply["To"] = page["Reply-To"]
    reply["Subject"] = "Re: " + page["Subject"]
    reply["Message-ID"] = make_msgid(domain="example.com")
    reply["In-Reply-To"] = page["Message-ID"]
    reply["References"] = f"{page['References']} {page['Message-ID']}"
    quoted = "\n".join("> " + line for line in page.get_body(("plain",)).get_content().splitlines())
    reply.set_content(f"{body}\n\nOn Mon, 2 Mar 2026 at 10:00, ircore wrote:\n{quoted}\n")
    return reply


@pytest.mark.parametrize("body, status, kind, confirmation", [
    ("ack", "acknowledged", "acknowledged", "acknowledged by Rita via email"),
    ("resolve", "resolved", "resolved", "resolved by Rita via email"),
    ("escalate", "triggered", "escalation", "escalated to the next step by Rita via email"),
    ("db1 is failing over, 10 more minutes", "triggered", "note", "Note added to"),
])
def test_page_by_email_then_reply_over_smtp(chain, outbound, smtp_server, service_a, make_integration,
                                            body, status, kind, confirmation):
    from incidents.events import AlertEvent
    from incidents.models import Incident
    from incidents.services import alert_ingest

    integration = make_integration(service_a)
    event = AlertEvent(summary="Database down", severity="SEV1", dedup_key="db")
    incident = alert_ingest(integration=integration, event=event).incident
    page = outbound.wait_for(lambda m: m["To"] == "rita@example.com")
    assert page["Reply-To"].startswith("reply.")
    assert page["Reply-To"].endswith("@in.example.net")

    with smtplib.SMTP(smtp_server.hostname, smtp_server.port, timeout=10) as client:
        refused = client.send_message(reply_to(page, body))
    assert refused == {}

    incident = Incident.objects.get(pk=incident.pk)
    assert incident.status == status
    entry = incident.timeline.filter(kind=kind, via="email").get()
    assert entry.actor.username == "rita"
    answer = outbound.wait_for(lambda m: m["Auto-Submitted"] == "auto-replied")
    assert confirmation in answer.get_body(("plain",)).get_content()
    assert answer["In-Reply-To"] is not None and answer["Subject"] == "Re: " + page["Subject"]
    if kind == "escalation":
        outbound.wait_for(lambda m: m["To"] == "sam@example.com")
