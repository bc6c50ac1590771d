"""The subscribe flow end to end, with the confirmation mail sent over SMTP to a real
(aiosmtpd) server on the loopback interface."""

import email
import re

from statuspage.models import Subscriber


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
