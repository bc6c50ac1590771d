"""Resend inbound through django-anymail's /anymail/resend/inbound/: the `email.received`
post Resend sends, signed the way Resend signs it (svix: svix-id, svix-timestamp,
svix-signature = base64 HMAC-SHA256 of "id.timestamp.body" under the whsec_ secret).
That post carries only metadata, so anymail fetches the message from Resend's
Received-emails API; a local HTTP server plays that API (the one thing outside ircore)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.inbound.conftest import make_email
from tests.inbound.test_replies import trigger_page

SECRET = "whsec_" + base64.b64encode(b"resend-inbound-signing-key-32by").decode()
API_KEY = "re_test_123456789"
AUTH = "Basic " + base64.b64encode(b"hook:s3cret-hook").decode()


class ResendApi:
    """GET /emails/receiving/<id> (Bearer API key) and the signed raw-MIME download it points at."""

    def __init__(self) -> None:
        self.emails: dict[str, bytes] = {}
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                api.requests.append(self.path)
                if self.path.startswith("/emails/receiving/"):
                    if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                        return self._send(401, b'{"name": "missing_api_key"}', "application/json")
                    email_id = self.path.rsplit("/", 1)[1]
                    if email_id not in api.emails:
                        return self._send(404, b'{"name": "not_found"}', "application/json")
                    body = {"object": "email", "id": email_id, "created_at": "2026-03-02T10:05:00.000Z",
                            "raw": {"download_url": f"{api.url}raw/{email_id}?signature=sig-123",
                                    "expires_at": "2026-03-02T11:05:00.000Z"}}
                    return self._send(200, json.dumps(body).encode(), "application/json")
                email_id = self.path.split("?", 1)[0].rsplit("/", 1)[1]
                if self.path.startswith("/raw/") and email_id in api.emails:
                    return self._send(200, api.emails[email_id], "message/rfc822")
                return self._send(404, b"", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, raw: bytes) -> str:
        email_id = str(uuid.uuid4())
        self.emails[email_id] = raw
        return email_id


@pytest.fixture
def resend_api():
    api = ResendApi()
    yield api
    api.server.shutdown()
    api.server.server_close()


@pytest.fixture
def esp(settings, resend_api):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret-hook", "RESEND_INBOUND_SECRET": SECRET,
                        "RESEND_API_KEY": API_KEY, "RESEND_API_URL": resend_api.url}

    def use(name: str) -> None:
        settings.INBOUND_EMAIL_ESP = name

    return use


@pytest.fixture
def to(service_a, make_integration):
    integration = make_integration(service_a, kind="email")
    return f"{integration.token}@in.example.net"


def email_received(*, email_id: str, to: str, subject: str = "Disk full on db1",
                   sender: str = "Nagios <nagios@monitoring.example.com>") -> str:
    """Resend's `email.received` event: metadata only, no body (fetched by email_id)."""
    return json.dumps({
        "type": "email.received",
        "created_at": "2026-03-02T10:05:00.126Z",
        "data": {"email_id": email_id, "created_at": "2026-03-02T10:05:00.094719+00:00", "from": sender,
                 "to": [to], "bcc": [], "cc": [], "message_id": "<20260302100500.1@monitoring.example.com>",
                 "subject": subject, "attachments": []},
    })


def svix_headers(body: str, *, secret: str = SECRET, msg_id: str = "msg_2tJXqsvA8Vv0YkXZ3q8d0Jp1Wn5",
                 timestamp: int | None = None) -> dict[str, str]:
    """Signed by hand as Resend (svix) does, so the test does not trust the verifier's own signer."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return {"HTTP_SVIX_ID": msg_id, "HTTP_SVIX_TIMESTAMP": str(timestamp),
            "HTTP_SVIX_SIGNATURE": "v1," + base64.b64encode(digest).decode()}


def post_resend(client, django_capture_on_commit_callbacks, body: str, headers: dict[str, str]):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post("/anymail/resend/inbound/", data=body, content_type="application/json",
                           HTTP_AUTHORIZATION=AUTH, **headers)


def test_resend_email_to_an_integration_opens_an_incident(
    client, esp, to, resend_api, django_capture_on_commit_callbacks
):
    from incidents.models import Incident
    from ircore.models import InboundMessage

    esp("resend")
    raw = make_email(subject="Disk full on db1", body="/var is 98% full", to=to).as_bytes()
    email_id = resend_api.receive(raw)
    body = email_received(email_id=email_id, to=to)
    response = post_resend(client, django_capture_on_commit_callbacks, body, svix_headers(body))
    assert response.status_code == 200, response.content
    assert resend_api.requests[0] == f"/emails/receiving/{email_id}"
    row = InboundMessage.objects.get()
    assert (row.received_via, row.esp, row.recipients, row.status) == ("webhook", "resend", [to], "processed")
    incident = Incident.objects.get()
    assert incident.title == "Disk full on db1"
    assert "/var is 98% full" in incident.alerts.get().details


def test_resend_retry_of_the_same_event_acts_once(client, esp, to, resend_api,
                                                  django_capture_on_commit_callbacks):
    from incidents.models import Alert
    from ircore.models import InboundMessage

    esp("resend")
    body = email_received(email_id=resend_api.receive(make_email(to=to).as_bytes()), to=to)
    for attempt in range(3):
        # Resend retries with the same svix-id and body, and a fresh timestamp and signature.
        headers = svix_headers(body, timestamp=int(time.time()) + attempt)
        assert post_resend(client, django_capture_on_commit_callbacks, body, headers).status_code == 200
    assert InboundMessage.objects.count() == 1
    assert Alert.objects.count() == 1


def test_resend_reply_to_a_page_acknowledges(
    client, esp, resend_api, team_a, responder, secondary, service_a, django_capture_on_commit_callbacks
):
    from oncall.models import EscalationChain, EscalationStep

    chain = EscalationChain.objects.create(team=team_a, name="Default", is_default=True)
    EscalationStep.objects.create(chain=chain, position=0, delay_minutes=5).users.set([responder])
    page = trigger_page(django_capture_on_commit_callbacks)
    esp("resend")
    reply = page.text_reply("ack\n\nOn Mon, 2 Mar 2026 at 10:00, ircore wrote:\n> Database down")
    body = email_received(email_id=resend_api.receive(reply.as_bytes()), to=page.reply_to,
                          sender="Rita <rita@example.com>", subject=reply["Subject"])
    response = post_resend(client, django_capture_on_commit_callbacks, body, svix_headers(body))
    assert response.status_code == 200, response.content
    page.incident.refresh_from_db()
    assert page.incident.status == "acknowledged"
    entry = page.incident.timeline.get(kind="acknowledged", via="email")
    assert entry.actor == responder
    assert "via email reply" in entry.message


@pytest.mark.parametrize("why", ["other secret", "tampered body", "stale timestamp", "no signature"])
def test_resend_bad_signature_is_refused_and_nothing_is_fetched_or_stored(
    client, esp, to, resend_api, django_capture_on_commit_callbacks, why
):
    from ircore.models import InboundMessage

    esp("resend")
    body = email_received(email_id=resend_api.receive(make_email(to=to).as_bytes()), to=to)
    headers = svix_headers(body)
    if why == "other secret":
        headers = svix_headers(body, secret="whsec_" + base64.b64encode(b"someone-else-key").decode())
    elif why == "tampered body":
        body = body.replace("Disk full on db1", "Everything is fine")
    elif why == "stale timestamp":  # svix refuses signatures older than five minutes (replays)
        headers = svix_headers(body, timestamp=int(time.time()) - 3600)
    else:
        headers = {}
    response = post_resend(client, django_capture_on_commit_callbacks, body, headers)
    assert response.status_code == 400
    assert resend_api.requests == []
    assert not InboundMessage.objects.exists()


def test_resend_post_when_another_esp_is_configured_is_logged_and_ignored(
    client, esp, to, resend_api, django_capture_on_commit_callbacks
):
    from incidents.models import Incident
    from ircore.models import InboundMessage, SecurityLogEntry

    esp("postmark")
    body = email_received(email_id=resend_api.receive(make_email(to=to).as_bytes()), to=to)
    response = post_resend(client, django_capture_on_commit_callbacks, body, svix_headers(body))
    assert response.status_code == 200
    assert not InboundMessage.objects.exists()
    assert not Incident.objects.exists()
    entry = SecurityLogEntry.objects.get()
    assert entry.reason == "not_allowed"
    assert "'Resend'" in entry.detail and "'postmark'" in entry.detail
