"""Replies to page emails: a real page (alert -> escalation -> email with a signed
Reply-To) answered with real-world reply formats from tests/inbound/corpus/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.inbound.conftest import CORPUS, make_email


@dataclass
class Page:
    incident: object
    email: object
    reply_to: str
    notification: object

    def reply(self, name: str, *, sender: str = "rita@example.com", to: str | None = None) -> bytes:
        raw = (CORPUS / name).read_bytes()
        for key, value in {"TO": to or self.reply_to, "FROM": sender, "SUBJECT": self.email.subject,
                           "IN_REPLY_TO": self.email.extra_headers["Message-ID"]}.items():
            raw = raw.replace(b"{{" + key.encode() + b"}}", value.encode())
        return raw

    def text_reply(self, body: str, *, sender: str = "rita@example.com", headers: dict | None = None,
                   subject: str | None = None, to: str | None = None):
        msg = make_email(subject=subject or f"Re: {self.email.subject}", body=body, sender=sender,
                         to=to or self.reply_to, headers=headers)
        msg["In-Reply-To"] = self.email.extra_headers["Message-ID"]
        return msg


def trigger_page(capture) -> Page:
    from incidents.events import AlertEvent
    from incidents.models import Integration, Service
    from incidents.services import alert_ingest
    from oncall.models import Notification

    service = Service.objects.get(name="payments-api")
    integration = Integration.objects.create(service=service, kind="generic", name="mon")
    with capture(execute=True):
        result = alert_ingest(integration=integration,
                              event=AlertEvent(summary="Database down", severity="SEV1", dedup_key="db"))
    incident = result.incident
    email = next(m for m in mail.outbox if m.to == ["rita@example.com"])
    notification = Notification.objects.get(incident=incident, kind="page", address="rita@example.com")
    assert email.reply_to and email.reply_to[0].startswith("reply.")
    return Page(incident=incident, email=email, reply_to=email.reply_to[0], notification=notification)


@pytest.fixture
def chain(team_a, responder, secondary, service_a):
    from oncall.models import EscalationChain, EscalationStep

    chain = EscalationChain.objects.create(team=team_a, name="Default", is_default=True)
    first = EscalationStep.objects.create(chain=chain, position=0, delay_minutes=5)
    first.users.set([responder])
    second = EscalationStep.objects.create(chain=chain, position=1, delay_minutes=5)
    second.users.set([secondary])
    return chain


@pytest.fixture
def page(chain, django_capture_on_commit_callbacks) -> Page:
    return trigger_page(django_capture_on_commit_callbacks)


def sent_since(count: int) -> list:
    return mail.outbox[count:]


def confirmations(count: int) -> list:
    return [m for m in sent_since(count) if m.extra_headers.get("Auto-Submitted") == "auto-replied"]


@pytest.mark.parametrize("name, status, kind", [
    ("gmail.eml", "acknowledged", "acknowledged"),
    ("outlook.eml", "resolved", "resolved"),
    ("apple-mail.eml", "triggered", "escalation"),
    ("html-only.eml", "acknowledged", "acknowledged"),
    ("with-attachment.eml", "resolved", "resolved"),
])
def test_corpus_commands(deliver, page, responder, name, status, kind):
    before = len(mail.outbox)
    row = deliver(page.reply(name), page.reply_to)
    assert row.status == "processed", row.result
    page.incident.refresh_from_db()
    assert page.incident.status == status
    entry = page.incident.timeline.filter(kind=kind, via="email").last()
    assert entry.actor == responder
    assert entry.via == "email"
    assert "via email reply" in entry.message
    sent = confirmations(before)
    assert len(sent) == 1
    assert sent[0].to == ["rita@example.com"]
    assert sent[0].subject == f"Re: {page.email.subject}"


@pytest.mark.parametrize("name, note", [
    ("mutt.eml", "looking into it, db1 failover in progress\nETA 15 minutes"),
    ("iso-8859-1.eml", "Lüfter in Rack 4 getauscht, beobachte weiter."),
])
def test_corpus_notes_keep_only_what_was_written(deliver, page, responder, name, note):
    row = deliver(page.reply(name, sender="rita@example.com"), page.reply_to)
    assert row.status == "processed", row.result
    entry = page.incident.timeline.get(kind="note")
    assert entry.message == note
    assert (entry.actor, entry.via) == (responder, "email")
    page.incident.refresh_from_db()
    assert page.incident.status == "triggered"


def test_ack_is_confirmed_in_the_incident_thread(deliver, page):
    before = len(mail.outbox)
    msg = page.text_reply("ACK\n\n> quoted page")
    deliver(msg, page.reply_to)
    page.incident.refresh_from_db()
    assert page.incident.status == "acknowledged"
    confirmation = confirmations(before)[0]
    assert confirmation.body.startswith(f"{page.incident.ref} acknowledged by Rita via email")
    assert confirmation.extra_headers["In-Reply-To"] == msg["Message-ID"]
    assert f"<incident-{page.incident.number}." in confirmation.extra_headers["References"]
    assert confirmation.reply_to == []  # nothing to answer: no loop


@pytest.mark.parametrize("first_line, status", [
    ("acknowledge", "acknowledged"), ("#ack", "acknowledged"), ("Ack.", "acknowledged"),
    ("resolved", "resolved"), ("#RES", "resolved"), ("Resolve!", "resolved"),
])
def test_command_words(deliver, page, first_line, status):
    deliver(page.text_reply(f"\n\n{first_line}\nsome more words"), page.reply_to)
    page.incident.refresh_from_db()
    assert page.incident.status == status


def test_escalate_pages_the_next_step(deliver, page):
    deliver(page.text_reply("escalate"), page.reply_to)
    assert any(m.to == ["sam@example.com"] for m in mail.outbox)
    assert page.incident.timeline.filter(kind="escalation", via="email").exists()


def test_unack_after_ack(deliver, page):
    deliver(page.text_reply("ack"), page.reply_to)
    deliver(page.text_reply("unack"), page.reply_to)
    page.incident.refresh_from_db()
    assert page.incident.status == "triggered"
    assert page.incident.timeline.filter(kind="unacknowledged", via="email").exists()


def test_already_resolved_answers_a_short_note_and_changes_nothing(deliver, page, responder):
    from incidents.services import incident_resolve

    incident_resolve(incident=page.incident, user=responder, via="web")
    before, entries = len(mail.outbox), page.incident.timeline.count()
    row = deliver(page.text_reply("some late note"), page.reply_to)
    assert row.status == "processed"
    assert page.incident.timeline.count() == entries
    sent = sent_since(before)
    assert len(sent) == 1
    assert sent[0].body.startswith(f"{page.incident.ref} is already resolved")


def test_postmark_stripped_text_wins_over_the_full_body(client, settings, page,
                                                        django_capture_on_commit_callbacks):
    import base64

    from tests.inbound.test_webhooks import postmark_payload

    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:pw"}
    settings.INBOUND_EMAIL_ESP = "postmark"
    body = postmark_payload(to=page.reply_to, subject=f"Re: {page.email.subject}",
                            text="resolve\n\nOn Mon ... wrote:\n> ack", stripped="resolve")
    body = body.replace("Disk full", "x")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/anymail/postmark/inbound/", data=body, content_type="application/json",
                               HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"hook:pw").decode())
    assert response.status_code == 200
    page.incident.refresh_from_db()
    assert page.incident.status == "resolved"


# --------------------------------------------------------------------------- refusals


def assert_refused(row, page, reason: str, before: int) -> None:
    from ircore.models import SecurityLogEntry

    assert row.status == "refused", row.result
    page.incident.refresh_from_db()
    assert page.incident.status == "triggered"
    assert not page.incident.timeline.filter(via="email").exists()
    assert len(mail.outbox) == before, [m.subject for m in mail.outbox[before:]]
    entry = SecurityLogEntry.objects.get()
    assert entry.reason == reason
    assert entry.message == row


def test_tampered_token_is_refused(deliver, page):
    local, domain = page.reply_to.split("@")
    head, signature = local.rsplit(".", 1)
    forged = f"{head}.{'a' if signature[0] != 'a' else 'b'}{signature[1:]}@{domain}"
    before = len(mail.outbox)
    assert_refused(deliver(page.text_reply("ack", to=forged), forged), page, "bad_token", before)


def test_token_for_another_notification_id_is_refused(deliver, page):
    local, domain = page.reply_to.split("@")
    ident, day, signature = local.removeprefix("reply.").split(".")
    forged = f"reply.{ident}1.{day}.{signature}@{domain}"
    before = len(mail.outbox)
    assert_refused(deliver(page.text_reply("ack", to=forged), forged), page, "bad_token", before)


def test_valid_token_naming_no_page_is_refused(deliver, page):
    from oncall.reply_tokens import reply_address

    other = reply_address(notification_id=page.notification.pk + 1000)
    other = other.split("@")[0] + "@in.example.net"
    before = len(mail.outbox)
    assert_refused(deliver(page.text_reply("ack", to=other), other), page, "bad_token", before)


def test_expired_token_is_refused(deliver, page):
    before = len(mail.outbox)
    with time_machine.travel(timezone.now() + timedelta(days=9)):
        row = deliver(page.text_reply("ack"), page.reply_to)
    assert_refused(row, page, "expired_token", before)


def test_reply_from_another_address_is_refused(deliver, page):
    before = len(mail.outbox)
    row = deliver(page.reply("gmail.eml", sender="mallory@example.org"), page.reply_to)
    assert_refused(row, page, "sender_mismatch", before)


@pytest.mark.parametrize("headers, subject", [
    ({"Auto-Submitted": "auto-replied"}, None),
    ({"Auto-Submitted": "auto-generated"}, None),
    ({"X-Autoreply": "yes"}, None),
    ({"Precedence": "bulk"}, None),
    ({"Precedence": "auto_reply"}, None),
    ({}, "Out of Office: [INC-1] Database down"),
    ({}, "Automatic reply: [INC-1] Database down"),
    ({"List-Id": "<ops.lists.example.com>"}, None),
])
def test_automatic_replies_are_refused(deliver, page, headers, subject):
    before = len(mail.outbox)
    row = deliver(page.text_reply("ack", headers=headers, subject=subject), page.reply_to)
    assert_refused(row, page, "auto_reply", before)


def test_reply_of_a_deactivated_person_is_refused(deliver, page, responder):
    responder.is_active = False
    responder.save()
    before = len(mail.outbox)
    assert_refused(deliver(page.text_reply("ack"), page.reply_to), page, "not_allowed", before)


def test_mail_from_ircore_itself_is_refused(deliver, page):
    before = len(mail.outbox)
    row = deliver(page.text_reply("ack", sender="ircore@example.net"), page.reply_to)
    assert_refused(row, page, "loop", before)


def test_oversize_reply_is_refused(deliver, page, settings):
    from ircore.models import SecurityLogEntry

    settings.INBOUND_EMAIL_MAX_BYTES = 3000
    before = len(mail.outbox)
    assert deliver(page.text_reply("ack\n" + "x\n" * 3000), page.reply_to) is None
    page.incident.refresh_from_db()
    assert page.incident.status == "triggered"
    assert len(mail.outbox) == before
    assert SecurityLogEntry.objects.get().reason == "oversize"


def test_malformed_reply_is_refused(deliver, page):
    raw = (f"From: rita@example.com\r\nTo: {page.reply_to}\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/alternative\r\n\r\nack\r\n").encode()
    before = len(mail.outbox)
    assert_refused(deliver(raw, page.reply_to), page, "malformed", before)


def test_an_empty_reply_does_nothing_and_answers_nothing(deliver, page):
    before = len(mail.outbox)
    row = deliver(page.text_reply("> only the quoted page\n> nothing else\n"), page.reply_to)
    assert row.status == "processed"
    assert "empty reply" in row.result
    assert len(mail.outbox) == before
    assert not page.incident.timeline.filter(via="email").exists()


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(local=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-_", min_size=0, max_size=60),
       body=st.text(max_size=300))
def test_fuzz_never_acts_without_a_valid_token(deliver, page, local, body):
    from ircore.models import InboundMessage, SecurityLogEntry

    to = f"reply.{local}@in.example.net"
    if to == page.reply_to:
        return
    msg = make_email(subject="Re: x", body=body or "ack", sender="rita@example.com", to="x@in.example.net")
    row = deliver(msg, to)
    assert row.status in ("refused", "ignored")
    page.incident.refresh_from_db()
    assert page.incident.status == "triggered"
    assert not page.incident.timeline.filter(via="email").exists()
    InboundMessage.objects.all().delete()
    SecurityLogEntry.objects.all().delete()


def test_reply_text_and_command_parsing_units():
    from oncall.email_replies import command_parse

    assert command_parse("  \n\nACK\n").action == "ack"
    assert command_parse("ack, on it").action == "ack"
    assert command_parse("Acknowledged - looking").action == "ack"
    assert command_parse("back in 5, ack").action == "note"
    assert command_parse("unack").action == "unack"
    assert command_parse("#res").action == "resolve"
    assert command_parse("").action == "note"


def post_json(client, capture, url: str, payload: dict):
    import base64
    import json

    with capture(execute=True):
        return client.post(url, data=json.dumps(payload), content_type="application/json",
                           HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"hook:pw").decode())


def test_brevo_inbound_uses_its_extracted_reply(client, settings, page, django_capture_on_commit_callbacks):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:pw", "BREVO_API_KEY": "xkeysib-test"}
    settings.INBOUND_EMAIL_ESP = "brevo"
    item = {
        "Uuid": ["b5a4f0a6-5d3e-4f6b-9c8a-1a2b3c4d5e6f"],
        "MessageId": "<CAB1x@mail.example.com>",
        "InReplyTo": page.email.extra_headers["Message-ID"],
        "From": {"Name": "Rita", "Address": "rita@example.com"},
        "To": [{"Name": None, "Address": page.reply_to}],
        "Subject": f"Re: {page.email.subject}",
        "Headers": {"Message-ID": "<CAB1x@mail.example.com>", "From": "Rita <rita@example.com>",
                    "To": page.reply_to, "Subject": f"Re: {page.email.subject}",
                    "Date": "Mon, 2 Mar 2026 10:05:00 +0000", "Delivered-To": page.reply_to,
                    "Return-Path": "<rita@example.com>"},
        "SpamScore": 0.1,
        "ExtractedMarkdownMessage": "resolve",
        "ExtractedMarkdownSignature": None,
        "RawTextBody": "ack\n\nOn Mon wrote:\n> page",
        "RawHtmlBody": "",
        "Attachments": [],
    }
    response = post_json(client, django_capture_on_commit_callbacks, "/anymail/brevo/inbound/",
                         {"items": [item]})
    assert response.status_code == 200
    page.incident.refresh_from_db()
    assert page.incident.status == "resolved"  # the extracted reply, not the raw "ack"


def test_mailjet_parse_api(client, settings, page, django_capture_on_commit_callbacks):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:pw"}
    settings.INBOUND_EMAIL_ESP = "mailjet"
    payload = {
        "Sender": "rita@example.com", "Recipient": page.reply_to, "Date": "20260302T100500",
        "From": "Rita <rita@example.com>", "Subject": f"Re: {page.email.subject}",
        "Headers": {"Return-Path": ["<rita@example.com>"], "Message-ID": "<mj-1@mail.example.com>",
                    "Date": "Mon, 2 Mar 2026 10:05:00 +0000", "From": "Rita <rita@example.com>",
                    "To": page.reply_to, "Subject": f"Re: {page.email.subject}", "MIME-Version": "1.0",
                    "Content-Type": ["multipart/alternative; boundary=\"=_abc\""]},
        "Parts": [{"ContentRef": "Text-part", "Headers": {"Content-Type": "text/plain; charset=UTF-8"}},
                  {"ContentRef": "Html-part", "Headers": {"Content-Type": "text/html; charset=UTF-8"}}],
        "SpamAssassinScore": "0.602",
        "Text-part": "Ack\n\nOn Mon, 2 Mar 2026 ircore wrote:\n> page",
        "Html-part": "<div>Ack</div><blockquote>page</blockquote>",
    }
    response = post_json(client, django_capture_on_commit_callbacks, "/anymail/mailjet/inbound/", payload)
    assert response.status_code == 200
    page.incident.refresh_from_db()
    assert page.incident.status == "acknowledged"
