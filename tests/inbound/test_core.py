"""ircore.inbound: store once, parse, dispatch by recipient, refuse and log."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.inbound.conftest import make_email


@pytest.fixture
def to(service_a, make_integration):
    return f"{make_integration(service_a, kind='email').token}@in.example.net"


def test_registry_routes_by_domain_prefix_and_matcher(db):
    from ircore import inbound

    inbound.register_recipient(name="test.echo", prefix="echo.", handler=lambda **kw: "ok")
    try:
        assert inbound.recipient_lookup("echo.abc@in.example.net").name == "test.echo"
        assert inbound.recipient_lookup("Echo.ABC@IN.EXAMPLE.NET").name == "test.echo"
        assert inbound.recipient_lookup("echo.abc@other.example.net") is None
        assert inbound.recipient_lookup("nobody@in.example.net") is None
        assert inbound.recipient_lookup("not-an-address") is None
    finally:
        inbound._registry[:] = [r for r in inbound._registry if r.name != "test.echo"]
    with pytest.raises(ValueError):
        inbound.register_recipient(name="x", handler=lambda **kw: "")


def test_a_failing_handler_keeps_nothing_it_wrote_and_marks_the_message_failed(deliver, team_a):
    from ircore import inbound
    from ircore.models import Team

    def handler(**kw):
        Team.objects.create(name="half-written", slug="half")
        raise RuntimeError("boom")

    inbound.register_recipient(name="test.boom", prefix="boom.", handler=handler)
    try:
        row = deliver(make_email(to="boom.x@in.example.net"), "boom.x@in.example.net")
    finally:
        inbound._registry[:] = [r for r in inbound._registry if r.name != "test.boom"]
    assert row.status == "failed"
    assert row.error == "RuntimeError: boom"
    assert not Team.objects.filter(slug="half").exists()


def test_the_task_runs_a_message_once(deliver, to):
    from incidents.models import Alert
    from ircore.inbound import inbound_process

    row = deliver(make_email(to=to), to)
    assert row.status == "processed"
    assert inbound_process(row.pk) == ""  # a retried or duplicated task does nothing
    assert Alert.objects.count() == 1


def test_without_message_id_the_bytes_identify_the_message(deliver, to):
    from ircore.models import InboundMessage

    msg = make_email(to=to)
    del msg["Message-ID"]
    deliver(msg, to)
    deliver(msg, to)
    other = make_email(to=to, subject="Other")
    del other["Message-ID"]
    deliver(other, to)
    assert InboundMessage.objects.count() == 2


def test_oversize_message_is_not_stored_and_is_logged(deliver, to, settings):
    from ircore.models import InboundMessage, SecurityLogEntry

    settings.INBOUND_EMAIL_MAX_BYTES = 2000
    assert deliver(make_email(to=to, body="x\n" * 2000), to, mail_from="big@example.org") is None
    assert not InboundMessage.objects.exists()
    entry = SecurityLogEntry.objects.get()
    assert (entry.reason, entry.sender, entry.recipient) == ("oversize", "big@example.org", to)


@pytest.mark.parametrize("raw, detail", [
    (b"", "no headers"),
    (b"\x00\x01\x02 not an email at all", "no headers"),
    (b"Subject: no sender\r\n\r\nbody", "no valid From address"),
    (b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nno boundary",
     "broken MIME structure"),
    (b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
     b"no part starts here\r\n", "broken MIME structure"),
])
def test_malformed_mail_is_refused_and_logged(deliver, to, raw, detail):
    from incidents.models import Alert
    from ircore.models import SecurityLogEntry

    row = deliver(raw, to)
    assert row.status == "refused"
    entry = SecurityLogEntry.objects.get()
    assert entry.reason == "malformed"
    assert detail in entry.detail
    assert entry.message == row
    assert Alert.objects.count() == 0


@pytest.mark.parametrize("sender, message_id", [
    ("ircore@example.net", "<x@elsewhere>"),
    ("reply.abc@in.example.net", "<x@elsewhere>"),
    ("someone@example.org", "<notification-12@in.example.net>"),
])
def test_mail_from_ircore_itself_is_refused(deliver, to, sender, message_id):
    from incidents.models import Alert
    from ircore.models import SecurityLogEntry

    msg = make_email(to=to, sender=sender)
    msg.replace_header("Message-ID", message_id)
    assert deliver(msg, to).status == "refused"
    assert SecurityLogEntry.objects.get().reason == "loop"
    assert Alert.objects.count() == 0


def test_mail_from_someone_at_the_inbound_domain_is_not_a_loop(deliver, to):
    from incidents.models import Alert

    assert deliver(make_email(to=to, sender="rita@in.example.net"), to).status == "processed"
    assert Alert.objects.count() == 1


def test_recipients_from_headers_when_the_envelope_has_none(deliver, to):
    from incidents.models import Alert

    msg = make_email(to=f"Ops <ops@example.com>, {to}")
    assert deliver(msg, []).status == "processed"
    assert Alert.objects.count() == 1


def test_legacy_encodings_and_transfer_encodings_decode(db):
    from ircore.inbound import email_parse

    latin = ("From: =?iso-8859-1?q?J=FCrgen_M=FCller?= <juergen@example.de>\r\nTo: x@in.example.net\r\n"
             "Subject: =?iso-8859-1?q?St=F6rung_im_Rechenzentrum?=\r\nMIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
             "Gr\xfc\xdfe, der L\xfcfter ist ausgefallen.\r\n").encode("latin-1")
    parsed = email_parse(latin)
    assert parsed.subject == "Störung im Rechenzentrum"
    assert parsed.from_name == "Jürgen Müller"
    assert "Grüße, der Lüfter ist ausgefallen." in parsed.text
    unknown_charset = latin.replace(b"charset=iso-8859-1", b"charset=x-unknown-charset")
    assert "der L" in email_parse(unknown_charset).text


def test_html_to_text_marks_quotes_and_drops_styles():
    from ircore.inbound import html_to_text

    html = ("<html><head><style>p{color:red}</style></head><body><div>ack</div>"
            "<div>thanks&nbsp;&amp; bye</div><blockquote><p>old line</p>"
            "<blockquote>older</blockquote></blockquote><script>x()</script>")
    assert html_to_text(html) == "ack\nthanks & bye\n> old line\n> > older"


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=1500).map(lambda t: ("From: a@example.org\r\nSubject: s\r\n\r\n" + t).encode("utf-8",
                                                                                                "surrogatepass")),
    st.lists(st.sampled_from([
        b"From: ", b"a@example.org", b"<>", b"\r\n", b"Content-Type: ", b"multipart/mixed; boundary=b",
        b"text/html; charset=", b"utf-7", b"--b\r\n", b"--b--\r\n", b"=?utf-8?b?", b"=?x?q?=ZZ?=",
        b"Content-Transfer-Encoding: base64\r\n", b"quoted-printable", b"\xff\xfe", b"<blockquote>",
        b"Subject: ", b"Auto-Submitted: ", b"MIME-Version: 1.0\r\n", b"\r\n\r\n", b"\x00",
    ]), max_size=40).map(b"".join),
))
def test_fuzz_parse_and_dispatch_never_crash_and_never_act_without_a_known_recipient(db, raw):
    from django.utils import timezone

    from incidents.models import Alert
    from ircore.inbound import InboundRefused, email_parse, inbound_dispatch
    from ircore.models import InboundMessage

    try:
        parsed = email_parse(raw)
        assert isinstance(parsed.body_text, str)
    except InboundRefused as refused:
        assert refused.reason == "malformed"
    message = InboundMessage(raw=raw, recipients=["0000@in.example.net", "reply.zz.zz.zz@in.example.net"],
                             message_key="k", received_via="test", received_at=timezone.now())
    message.save()
    result = inbound_dispatch(message)
    assert result.status in ("refused", "ignored")
    assert Alert.objects.count() == 0
    message.delete()


def test_admin_pages_are_for_superusers_only(client, admin_user, manager, deliver, to):
    from ircore.models import SecurityLogEntry

    deliver(b"garbage", to)
    assert SecurityLogEntry.objects.count() == 1
    client.force_login(manager)
    assert client.get("/admin/ircore/securitylogentry/").status_code == 403
    assert client.get("/admin/ircore/inboundmessage/").status_code == 403
    client.force_login(admin_user)
    page = client.get("/admin/ircore/securitylogentry/")
    assert page.status_code == 200
    assert b"Malformed message" in page.content
    with CaptureQueriesContext(connection) as listing:
        assert client.get("/admin/ircore/inboundmessage/").status_code == 200
    # The raw messages (up to 10 MB each) are not read for the list.
    assert not any('"raw"' in q["sql"] for q in listing.captured_queries)
    entry = SecurityLogEntry.objects.get()
    detail = client.get(f"/admin/ircore/inboundmessage/{entry.message_id}/change/")
    assert detail.status_code == 200
    assert b"garbage" in detail.content
    client.force_login(manager)
    assert client.get(f"/admin/ircore/inboundmessage/{entry.message_id}/change/").status_code == 403


def test_a_message_whose_task_was_lost_is_requeued_by_the_clock(db, to, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from incidents.models import Alert
    from ircore.clock import clock_tick
    from ircore.inbound import inbound_store
    from ircore.models import InboundMessage

    # The broker loses the task: stored, never processed.
    with django_capture_on_commit_callbacks(execute=False):
        message, _ = inbound_store(raw=make_email(to=to).as_bytes(), via="test", recipients=[to])
    now = timezone.now()
    assert clock_tick(now=now + timedelta(seconds=30), force=True)["inbound_requeue"] == 0  # not yet
    assert clock_tick(now=now + timedelta(minutes=3), force=True)["inbound_requeue"] == 1
    message.refresh_from_db()
    assert message.status == "processed"
    assert Alert.objects.count() == 1
    assert clock_tick(now=now + timedelta(minutes=6), force=True)["inbound_requeue"] == 0
    assert InboundMessage.objects.count() == 1


def test_old_messages_are_purged_but_their_security_log_stays(deliver, to, settings):
    from datetime import timedelta

    from django.utils import timezone

    from ircore.inbound import inbound_purge
    from ircore.models import InboundMessage, SecurityLogEntry

    deliver(b"garbage", to)
    deliver(make_email(to=to), to)
    now = timezone.now()
    assert inbound_purge(now + timedelta(days=29)) == 0
    settings.INBOUND_EMAIL_RETENTION_DAYS = 0
    assert inbound_purge(now + timedelta(days=31)) == 0
    settings.INBOUND_EMAIL_RETENTION_DAYS = 30
    assert inbound_purge(now + timedelta(days=31)) == 2
    assert not InboundMessage.objects.exists()
    entry = SecurityLogEntry.objects.get()
    assert entry.message is None and entry.reason == "malformed"
