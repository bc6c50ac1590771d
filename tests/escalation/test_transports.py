"""Transports against the real thing: an aiosmtpd SMTP server over a real SMTP session,
and a real local HTTP server for webhooks (signature checked, failures retried)."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
from email.utils import parseaddr

import pytest
from django.core import mail

from incidents.services import incident_acknowledge
from ircore.testing import free_loopback_port
from oncall.models import (
    ContactMethod,
    EscalationChain,
    EscalationStep,
    Notification,
    NotificationRule,
    OutgoingWebhook,
)
from oncall.notify import contact_method_send_test, contact_method_send_verification, contact_method_verify
from oncall.reply_tokens import reply_token_verify
from oncall.transports import TransportError
from oncall.transports.webhook import check_address

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp_server(clock, smtp_server, settings):
    """The root conftest's real SMTP server, with the inbound domain reply addresses use."""
    settings.INBOUND_EMAIL_DOMAIN = "in.example.org"
    return smtp_server


def _part(message, content_type: str) -> str:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part.get_payload(decode=True).decode()
    raise AssertionError(f"no {content_type} part")


def test_page_email_over_real_smtp_threads_and_carries_a_signed_reply_to(
    smtp_server, clock, chain, trigger, secondary
):
    incident = trigger(summary="Database down")
    clock.run(incident_acknowledge, incident=incident, user=secondary, via="web")
    assert len(smtp_server.messages) == 2  # the page, then the "acknowledged" update
    (_, rcpts, raw), (_, _, raw_update) = smtp_server.messages
    assert rcpts == ["rita@example.com"]
    page = email.message_from_bytes(raw)
    assert page["Subject"] == f"[{incident.ref}] [SEV1] Database down on payments-api"
    assert page["Auto-Submitted"] == "auto-generated"
    root = f"<incident-{incident.number}.{incident.pk}@in.example.org>"
    assert page["In-Reply-To"] == root and page["References"] == root
    note = Notification.objects.get(incident=incident, kind="page")
    assert page["Message-ID"] == note.message_id == f"<notification-{note.pk}@in.example.org>"
    reply_to = parseaddr(page["Reply-To"])[1]
    local, domain = reply_to.split("@")
    assert domain == "in.example.org" and local.startswith("reply.") and len(local) <= 64
    assert reply_token_verify(reply_to).notification_id == note.pk
    text, html = _part(page, "text/plain"), _part(page, "text/html")
    assert f"/admin/incidents/incident/{incident.pk}/change/" in text and "ack " in text
    assert f"/admin/incidents/incident/{incident.pk}/change/" in html
    update = email.message_from_bytes(raw_update)
    assert update["Subject"].startswith(f"Re: [{incident.ref}]")
    assert update["References"] == root and update["Reply-To"] is None
    assert "acknowledged by Sam" in _part(update, "text/plain")


def test_subject_names_the_service_once_when_the_title_already_does(smtp_server, clock, chain, trigger):
    incident = trigger(summary="5xx rate above 5% on Payments-API")
    ((_, _, raw),) = smtp_server.messages
    subject = email.message_from_bytes(raw)["Subject"]
    assert subject == f"[{incident.ref}] [SEV1] 5xx rate above 5% on Payments-API"


def test_html_body_escapes_the_alert_title(smtp_server, clock, chain, trigger):
    trigger(summary="<script>alert(1)</script>")
    page = email.message_from_bytes(smtp_server.messages[0][2])
    html = _part(page, "text/html")
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_first_page_names_a_matching_known_error_and_its_workaround(
    smtp_server, clock, chain, trigger, team_a, service_a
):
    from incidents.models import Problem
    from incidents.problems import problem_create

    problem = problem_create(
        team=team_a, title="Pool exhaustion", status=Problem.Status.KNOWN_ERROR, match_service=service_a,
        match_keywords="pool exhausted", workaround="Restart <pgbouncer> on the db host.",
    )
    trigger(summary="Connection pool exhausted on db-1")
    page = email.message_from_bytes(smtp_server.messages[0][2])
    text, html = _part(page, "text/plain"), _part(page, "text/html")
    assert f"This looks like known error {problem.ref}: Pool exhaustion" in text
    assert "Restart <pgbouncer> on the db host." in text
    assert f"known error {problem.ref}" in html and "Restart &lt;pgbouncer&gt;" in html
    trigger(summary="Disk full", key="disk")
    assert "known error" not in _part(email.message_from_bytes(smtp_server.messages[1][2]), "text/plain")


def test_smtp_server_down_is_retried_then_recorded(clock, settings, chain, trigger):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_loopback_port(), 2
    incident = trigger()
    note = Notification.objects.get(incident=incident)
    assert (note.status, note.attempts) == ("pending", 1)
    assert "Connection refused" in note.error or "ConnectionRefused" in note.error
    assert incident.timeline.filter(kind="warning", message__contains="retrying in 15 s").exists()


def test_webhook_step_signed_and_received(clock, team_a, trigger, webhook_server):
    hook = OutgoingWebhook.objects.create(team=team_a, name="chat", url=webhook_server.url)
    chain = EscalationChain.objects.create(team=team_a, name="Hook", is_default=True)
    EscalationStep.objects.create(chain=chain).webhooks.set([hook])
    incident = trigger()
    (request,) = webhook_server.received
    expected = "sha256=" + hmac.new(hook.secret.encode(), request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request["headers"]["X-Ircore-Signature"], expected)
    assert request["json"]["incident"]["ref"] == incident.ref
    assert request["json"]["event"] == "page" and request["json"]["step"] == 1
    assert request["headers"]["X-Ircore-Delivery"] == str(Notification.objects.get(incident=incident).pk)
    assert Notification.objects.get(incident=incident).status == "sent"


def test_failing_webhook_is_retried_with_backoff_and_the_error_recorded(
    clock, responder, chain, trigger, webhook_server
):
    method = ContactMethod.objects.create(user=responder, kind="webhook", address=webhook_server.url,
                                          verified_at=clock.now)
    NotificationRule.objects.create(user=responder, contact_method=method)
    webhook_server.state["fail"] = 2
    incident = trigger()
    note = Notification.objects.get(incident=incident)
    assert (note.status, note.attempts) == ("pending", 1) and "HTTP 500" in note.error
    clock.advance(seconds=14)
    note.refresh_from_db()
    assert note.attempts == 1  # backoff not over yet
    clock.advance(seconds=1)
    note.refresh_from_db()
    assert (note.status, note.attempts) == ("pending", 2)
    clock.advance(minutes=1)
    note.refresh_from_db()
    assert (note.status, note.attempts, note.error) == ("sent", 3, "")
    assert len(webhook_server.received) == 1
    body = json.loads(webhook_server.received[0]["body"])
    assert body["user"] == "rita" and body["incident"]["severity"] == "SEV1"


def test_webhook_4xx_fails_for_good_and_a_closed_port_is_retried(clock, responder, chain, trigger,
                                                                   webhook_server):
    gone = ContactMethod.objects.create(user=responder, kind="webhook", address=webhook_server.url + "/gone",
                                        verified_at=clock.now)
    closed = ContactMethod.objects.create(user=responder, kind="webhook", verified_at=clock.now,
                                          address=f"http://127.0.0.1:{free_loopback_port()}/hook")
    NotificationRule.objects.create(user=responder, contact_method=gone)
    NotificationRule.objects.create(user=responder, contact_method=closed)
    incident = trigger()
    gone_note = Notification.objects.get(incident=incident, contact_method=gone)
    assert (gone_note.status, gone_note.attempts) == ("failed", 1) and "HTTP 410" in gone_note.error
    closed_note = Notification.objects.get(incident=incident, contact_method=closed)
    assert closed_note.status == "pending" and "not delivered" in closed_note.error
    assert incident.timeline.filter(kind="warning", message__contains="gave up").exists()


def test_private_and_loopback_addresses_are_refused_unless_allowed(settings):
    settings.ONCALL_WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:8000/x", "http://10.1.2.3/x", "http://169.254.169.254/latest",
                "http://[::1]/x", "http://localhost/x"):
        with pytest.raises(TransportError) as info:
            check_address(url)
        assert not info.value.retry and "private/loopback" in str(info.value)
    with pytest.raises(TransportError):
        check_address("ftp://example.com/x")
    settings.ONCALL_WEBHOOK_ALLOW_PRIVATE = True
    check_address("http://127.0.0.1:8000/x")


def test_private_webhook_fails_for_good_without_retry(clock, settings, team_a, trigger, webhook_server):
    settings.ONCALL_WEBHOOK_ALLOW_PRIVATE = False
    hook = OutgoingWebhook.objects.create(team=team_a, name="internal", url=webhook_server.url)
    chain = EscalationChain.objects.create(team=team_a, name="Hook", is_default=True)
    EscalationStep.objects.create(chain=chain).webhooks.set([hook])
    incident = trigger()
    note = Notification.objects.get(incident=incident)
    assert note.status == "failed" and "private/loopback" in note.error
    assert webhook_server.received == []


def test_contact_method_verification_and_test_message(clock, responder):
    method = ContactMethod.objects.create(user=responder, kind="email", address="rita.phone@example.com")
    note = contact_method_send_verification(contact_method=method)
    assert note.status == "sent" and mail.outbox[0].to == ["rita.phone@example.com"]
    method.refresh_from_db()
    code = method.verification_code
    assert len(code) == 6 and code in mail.outbox[0].subject
    assert not contact_method_verify(contact_method=method, code="000000" if code != "000000" else "1")
    assert not contact_method_verify(contact_method=method, code="")
    assert method.verified_at is None
    assert contact_method_verify(contact_method=method, code=code)
    assert method.verified and method.verification_code == ""
    assert not contact_method_verify(contact_method=method, code=code)  # used once
    test = contact_method_send_test(contact_method=method)
    assert test.status == "sent" and mail.outbox[-1].subject == "ircore test notification"
