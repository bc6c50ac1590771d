"""The subscribe flow end to end, with the confirmation mail sent over SMTP to a real
(aiosmtpd) server on the loopback interface."""

import email
import re
import socket

import pytest
from aiosmtpd.controller import Controller

from statuspage.models import Subscriber


class Collector:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield collector
    controller.stop()


def _text_part(raw: bytes) -> str:
    message = email.message_from_bytes(raw)
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no text part")


def test_subscribe_confirm_over_real_smtp(
    client, page, smtp_server, run_tasks_inline, django_capture_on_commit_callbacks
):
    form = client.get("/status/acme/subscribe/")
    assert form.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/status/acme/subscribe/", {"email": "visitor@example.org"})
    assert response.status_code == 200
    (mail_from, rcpts, raw) = smtp_server.messages[0]
    assert rcpts == ["visitor@example.org"]
    parsed = email.message_from_bytes(raw)
    assert parsed["Subject"] == "Confirm your subscription to Acme Status status updates"
    assert parsed.is_multipart()  # text + HTML alternative
    link = re.search(r"http://localhost:8000(/status/acme/subscribe/confirm/\S+/)", _text_part(raw)).group(1)
    assert not Subscriber.objects.get().is_confirmed
    response = client.get(link)
    assert response.status_code == 200 and "Subscription confirmed" in response.content.decode()
    assert Subscriber.objects.get().is_confirmed
