"""django-anymail inbound webhooks with the payload shapes the ESPs really send:
Postmark JSON (with StrippedTextReply), Mailgun's signed form, Amazon SES through SNS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from tests.inbound.conftest import CORPUS, make_email

AUTH = "Basic " + base64.b64encode(b"hook:s3cret-hook").decode()


@pytest.fixture
def esp(settings, django_capture_on_commit_callbacks):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret-hook", "MAILGUN_WEBHOOK_SIGNING_KEY": "mg-key-123"}

    def use(name: str) -> None:
        settings.INBOUND_EMAIL_ESP = name

    return use


@pytest.fixture
def to(service_a, make_integration):
    integration = make_integration(service_a, kind="email")
    return f"{integration.token}@in.example.net"


def postmark_payload(*, to: str, subject: str = "Disk full on db1", text: str = "/var is 98% full",
                     stripped: str = "", message_id: str = "<CAKs1@mail.gmail.com>") -> str:
    data = json.loads((CORPUS / "postmark-inbound.json").read_text())
    data["To"] = data["OriginalRecipient"] = to
    data["ToFull"][0]["Email"] = to
    data["From"] = data["FromFull"]["Email"] = "rita@example.com"
    data["Headers"][0]["Value"] = "<rita@example.com>"
    data["Subject"], data["TextBody"], data["StrippedTextReply"] = subject, text, stripped
    for header in data["Headers"]:
        if header["Name"] == "Message-ID":
            header["Value"] = message_id
    return json.dumps(data)


def post_postmark(client, django_capture_on_commit_callbacks, body: str, auth: str | None = AUTH):
    extra = {"HTTP_AUTHORIZATION": auth} if auth else {}
    with django_capture_on_commit_callbacks(execute=True):
        return client.post("/anymail/postmark/inbound/", data=body, content_type="application/json", **extra)


def test_postmark_inbound_json_opens_an_incident_and_keeps_the_stripped_text(
    client, esp, to, django_capture_on_commit_callbacks
):
    from incidents.models import Incident
    from ircore.models import InboundMessage

    esp("postmark")
    response = post_postmark(client, django_capture_on_commit_callbacks,
                             postmark_payload(to=to, stripped="just the reply"))
    assert response.status_code == 200
    row = InboundMessage.objects.get()
    assert (row.received_via, row.esp, row.mail_from, row.recipients) == (
        "webhook", "postmark", "rita@example.com", [to])
    assert row.extra["stripped_text"] == "just the reply"
    assert row.status == "processed", row.result
    assert Incident.objects.get().title == "Disk full on db1"


def test_postmark_retry_of_the_same_message_acts_once(client, esp, to, django_capture_on_commit_callbacks):
    from incidents.models import Alert
    from ircore.models import InboundMessage

    esp("postmark")
    body = postmark_payload(to=to)
    for _ in range(3):
        assert post_postmark(client, django_capture_on_commit_callbacks, body).status_code == 200
    assert InboundMessage.objects.count() == 1
    assert Alert.objects.count() == 1


def test_webhook_without_the_secret_is_refused_and_stores_nothing(
    client, esp, to, django_capture_on_commit_callbacks
):
    from ircore.models import InboundMessage

    esp("postmark")
    assert post_postmark(client, django_capture_on_commit_callbacks, postmark_payload(to=to),
                         auth=None).status_code == 400
    wrong = "Basic " + base64.b64encode(b"hook:guess").decode()
    assert post_postmark(client, django_capture_on_commit_callbacks, postmark_payload(to=to),
                         auth=wrong).status_code == 400
    assert not InboundMessage.objects.exists()


def test_an_esp_other_than_the_configured_one_is_logged_and_ignored(
    client, esp, to, django_capture_on_commit_callbacks
):
    from ircore.models import InboundMessage, SecurityLogEntry

    esp("mailgun")
    response = post_postmark(client, django_capture_on_commit_callbacks, postmark_payload(to=to))
    assert response.status_code == 200
    assert not InboundMessage.objects.exists()
    entry = SecurityLogEntry.objects.get()
    assert entry.reason == "not_allowed"
    assert "'Postmark'" in entry.detail


def mailgun_form(*, raw: bytes, to: str, key: str = "mg-key-123") -> dict[str, str]:
    timestamp, token = str(int(time.time())), "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"recipient": to, "sender": "nagios@monitoring.example.com", "from": "Nagios <nagios@x>",
            "subject": "Disk full on db1", "body-mime": raw.decode(), "stripped-text": "/var is 98% full",
            "timestamp": timestamp, "token": token, "signature": signature}


def test_mailgun_signed_mime_form(client, esp, to, django_capture_on_commit_callbacks):
    from incidents.models import Incident
    from ircore.models import InboundMessage

    esp("mailgun")
    form = mailgun_form(raw=make_email(subject="Disk full on db1", to=to).as_bytes(), to=to)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/anymail/mailgun/inbound_mime/", data=form, HTTP_AUTHORIZATION=AUTH)
    assert response.status_code == 200
    row = InboundMessage.objects.get()
    assert (row.esp, row.mail_from, row.status) == ("mailgun", "nagios@monitoring.example.com", "processed")
    assert Incident.objects.get().title == "Disk full on db1"


def test_mailgun_bad_signature_is_refused(client, esp, to, django_capture_on_commit_callbacks):
    from ircore.models import InboundMessage

    esp("mailgun")
    form = mailgun_form(raw=make_email(to=to).as_bytes(), to=to, key="not-the-key")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/anymail/mailgun/inbound_mime/", data=form, HTTP_AUTHORIZATION=AUTH)
    assert response.status_code == 400
    assert not InboundMessage.objects.exists()


def sns_notification(*, raw: bytes, to: str) -> tuple[str, str]:
    ses_event = {
        "notificationType": "Received",
        "mail": {"timestamp": "2026-03-02T10:05:00.000Z", "source": "nagios@monitoring.example.com",
                 "messageId": "jqa3ij1hkvqm6o0hqkm2bh4ke7g0eopa9a3ktq81", "destination": [to],
                 "headersTruncated": False},
        "receipt": {"timestamp": "2026-03-02T10:05:00.000Z", "processingTimeMillis": 357,
                    "recipients": [to], "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": "PASS"},
                    "spfVerdict": {"status": "PASS"}, "dkimVerdict": {"status": "PASS"},
                    "dmarcVerdict": {"status": "PASS"},
                    "action": {"type": "SNS", "topicArn": "arn:aws:sns:us-east-1:123456789012:ircore-inbound",
                               "encoding": "BASE64"}},
        "content": base64.b64encode(raw).decode(),
    }
    message_id = "8f8d3a3e-bb9a-5b56-a7b5-d1cc8d7b4b3c"
    body = {
        "Type": "Notification", "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ircore-inbound",
        "Subject": "Amazon SES Email Receipt Notification", "Message": json.dumps(ses_event),
        "Timestamp": "2026-03-02T10:05:00.512Z", "SignatureVersion": "1", "Signature": "EXAMPLEw6JRN...",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
    }
    return json.dumps(body), message_id


def test_amazon_ses_through_sns(client, esp, to, django_capture_on_commit_callbacks):
    from incidents.models import Incident
    from ircore.models import InboundMessage

    esp("amazon_ses")
    body, sns_id = sns_notification(raw=make_email(subject="Disk full on db1", to=to).as_bytes(), to=to)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/anymail/amazon_ses/inbound/", data=body, content_type="text/plain",
                               HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification", HTTP_X_AMZ_SNS_MESSAGE_ID=sns_id,
                               HTTP_AUTHORIZATION=AUTH)
    assert response.status_code == 200
    row = InboundMessage.objects.get()
    assert (row.esp, row.mail_from, row.recipients, row.status) == (
        "amazon_ses", "nagios@monitoring.example.com", [to], "processed")
    assert Incident.objects.get().title == "Disk full on db1"
