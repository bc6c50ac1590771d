"""Mail carrying NUL characters or unpaired surrogates (both possible in headers and
bodies) is stored with U+FFFD in their place: on PostgreSQL such text made the security
log entry (or the note, or the alert) fail."""

from __future__ import annotations

import pytest
from django.utils import timezone

from ircore.inbound import email_parse, inbound_dispatch
from ircore.models import InboundMessage, SecurityLogEntry
from ircore.text import text_storable

pytestmark = pytest.mark.django_db

RAW = (b"From: Eve \x00 <eve\x00@example.org>\r\nTo: 0000@in.example.net\r\nSubject: hi \x00 there\r\n\r\n"
       b"ack\x00 " + "\ud800".encode("utf-8", "surrogatepass") + b"\r\n")


def test_parsed_mail_holds_no_unstorable_text():
    parsed = email_parse(RAW)
    texts = [parsed.subject, parsed.from_address, parsed.from_name, parsed.text, *parsed.to]
    assert all(text == text_storable(text) for text in texts)
    assert parsed.subject == "hi \ufffd there"
    assert "\x00" not in parsed.text


def test_refused_mail_with_nul_is_logged():
    # An unknown reply token: refused, and the refusal logged with the sender.
    message = InboundMessage.objects.create(
        raw=RAW, recipients=["0000@in.example.net", "reply.zz.zz.zz@in.example.net"], message_key="k",
        received_via="test", received_at=timezone.now())
    result = inbound_dispatch(message)
    assert result.status in ("refused", "ignored")
    entry = SecurityLogEntry.objects.get()
    assert "\x00" not in entry.sender and "\x00" not in entry.detail


@pytest.mark.parametrize(("value", "expected"), [
    ("plain", "plain"), ("a\x00b", "a\ufffdb"), ("x\ud800y", "x\ufffdy"), ("\udc00", "\ufffd"),
    ("pair \ud83d\ude00", "pair \U0001F600"), ("emoji \U0001F600", "emoji \U0001F600"),
])
def test_text_storable(value, expected):
    assert text_storable(value) == expected
