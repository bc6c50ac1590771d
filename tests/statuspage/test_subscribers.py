"""Subscribers: double opt-in, one-click unsubscribe, notifications by email and webhook."""

import json
import re
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from statuspage import services, subscribers, tasks
from statuspage.models import Subscriber

WEBHOOK_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "webhook.json").read_text())


def link_in(message, kind):
    return re.search(rf"http://\S+/status/acme/{kind}/\S+/", message.body).group(0)


def confirmed(page, email, components=()):
    sub = Subscriber.objects.create(page=page, email=email, confirmed_at=timezone.now())
    sub.components.set(components)
    return sub


def test_subscribe_sends_confirmation_and_link_confirms(
    client, page, api_component, run_tasks_inline, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/status/acme/subscribe/", {"email": " Ann@Example.com ", "components": [api_component.pk]}
        )
    assert response.status_code == 200 and "Check your inbox" in response.content.decode()
    sub = Subscriber.objects.get()
    assert sub.email == "ann@example.com" and not sub.is_confirmed
    assert list(sub.components.all()) == [api_component]
    (message,) = mail.outbox
    assert message.to == ["ann@example.com"]
    assert message.subject == "Confirm your subscription to Acme Status status updates"
    assert message.alternatives and "Confirm subscription" in message.alternatives[0][0]
    url = link_in(message, "subscribe/confirm")
    response = client.get(url.replace("http://localhost:8000", ""))
    assert response.status_code == 200 and "Subscription confirmed" in response.content.decode()
    sub.refresh_from_db()
    assert sub.is_confirmed


def test_subscribe_form_is_csrf_protected(page):
    csrf_client = Client(enforce_csrf_checks=True)
    form = csrf_client.get("/status/acme/subscribe/")
    assert 'name="csrfmiddlewaretoken"' in form.content.decode()
    assert csrf_client.post("/status/acme/subscribe/", {"email": "a@example.com"}).status_code == 403
    assert Subscriber.objects.count() == 0


@pytest.mark.parametrize("email", ["", "not-an-email", "a@b", "<script>@x.com"])
def test_bad_address_gets_a_clear_message_and_nothing_is_stored(client, page, email):
    response = client.post("/status/acme/subscribe/", {"email": email})
    assert response.status_code == 400
    assert "Please enter a valid email address" in response.content.decode()
    assert Subscriber.objects.count() == 0 and not mail.outbox


def test_components_of_another_page_are_refused(client, page, team_b):
    from statuspage.models import Component, StatusPage

    other = Component.objects.create(
        page=StatusPage.objects.create(team=team_b, slug="o", title="O"), name="X"
    )
    response = client.post("/status/acme/subscribe/", {"email": "a@example.com", "components": [other.pk]})
    assert response.status_code == 400 and "not on this page" in response.content.decode()
    assert Subscriber.objects.count() == 0


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", ""])
def test_component_value_that_is_not_an_id_is_refused(client, page, api_component, value):
    response = client.post(
        "/status/acme/subscribe/", {"email": "a@example.com", "components": [api_component.pk, value]}
    )
    assert response.status_code == 400 and "not on this page" in response.content.decode()
    assert Subscriber.objects.count() == 0 and not mail.outbox


def test_subscribe_is_rate_limited(client, page):
    codes = [
        client.post("/status/acme/subscribe/", {"email": f"u{i}@example.com"}).status_code for i in range(7)
    ]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
    assert Subscriber.objects.count() == 5


def test_confirm_link_forged_or_expired(client, page, run_tasks_inline, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/status/acme/subscribe/", {"email": "ann@example.com"})
    url = link_in(mail.outbox[0], "subscribe/confirm").replace("http://localhost:8000", "")
    forged = url[:-3] + ("A" if url[-3] != "A" else "B") + url[-2:]
    assert client.get(forged).status_code == 400
    with time_machine.travel(timezone.now() + timedelta(days=4)):
        response = client.get(url)
    assert response.status_code == 400 and "expired" in response.content.decode()
    assert not Subscriber.objects.get().is_confirmed


def test_already_confirmed_address_gets_no_new_mail(
    client, page, run_tasks_inline, django_capture_on_commit_callbacks
):
    confirmed(page, "ann@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/status/acme/subscribe/", {"email": "ann@example.com"})
    assert not mail.outbox and Subscriber.objects.count() == 1


def test_updates_reach_confirmed_subscribers_with_unsubscribe_headers(
    client, page, api_component, web_component, run_tasks_inline, django_capture_on_commit_callbacks
):
    everything = confirmed(page, "all@example.com")
    confirmed(page, "web-only@example.com", [web_component])
    Subscriber.objects.create(page=page, email="unconfirmed@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        services.public_incident_create(
            page=page,
            name="API down",
            body="We **know**.",
            component_statuses={api_component.pk: "major_outage"},
        )
    assert [m.to for m in mail.outbox] == [["all@example.com"]]
    message = mail.outbox[0]
    assert message.subject == "[Acme Status] Investigating: API down"
    assert "We **know**." in message.body and "<strong>know</strong>" in message.alternatives[0][0]
    header = message.extra_headers["List-Unsubscribe"]
    assert header.startswith("<http://localhost:8000/status/acme/unsubscribe/") and header.endswith("/>")
    unsubscribe = header[1:-1]
    assert unsubscribe in message.body  # the same link for people, in the footer
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # RFC 8058 one-click: a POST without CSRF token from the mail client.
    path = unsubscribe.replace("http://localhost:8000", "")
    csrf_client = Client(enforce_csrf_checks=True)
    assert "Unsubscribe" in csrf_client.get(path).content.decode()
    assert Subscriber.objects.filter(pk=everything.pk).exists()  # GET only asks
    response = csrf_client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and not Subscriber.objects.filter(pk=everything.pk).exists()
    assert "already removed" in csrf_client.post(path).content.decode()
    assert csrf_client.post(path[:-4] + "xyz/").status_code == 400


def test_maintenance_notifies_and_drafts_do_not(page, run_tasks_inline, django_capture_on_commit_callbacks):
    confirmed(page, "ann@example.com")
    start = timezone.now() + timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=True):
        services.public_incident_create(page=page, name="Draft", body="x", published=False)
        services.maintenance_create(
            page=page,
            name="Upgrade",
            body="Planned.",
            scheduled_for=start,
            scheduled_until=start + timedelta(hours=1),
        )
    assert [m.subject for m in mail.outbox] == ["[Acme Status] Maintenance Scheduled: Upgrade"]


def test_webhook_subscriber_gets_statuspage_json(
    page, api_component, webhook_server, run_tasks_inline, django_capture_on_commit_callbacks, settings
):
    settings.STATUSPAGE_WEBHOOK_ALLOW_PRIVATE = True  # the test server listens on loopback
    subscribers.subscriber_add_webhook(page=page, url=webhook_server.url)
    with django_capture_on_commit_callbacks(execute=True):
        services.public_incident_create(
            page=page,
            name="API down",
            body="x",
            impact="critical",
            component_statuses={api_component.pk: "major_outage"},
        )
    bodies = [r["json"] for r in webhook_server.received]
    for body in bodies:
        jsonschema.validate(body, WEBHOOK_SCHEMA)
    kinds = sorted("incident" if "incident" in b else "component_update" for b in bodies)
    assert kinds == ["component_update", "incident"]
    incident_body = next(b for b in bodies if "incident" in b)
    assert incident_body["page"] == {
        "id": "acme",
        "status_indicator": "critical",
        "status_description": "Major System Outage",
    }
    assert incident_body["incident"]["name"] == "API down"
    assert incident_body["meta"]["unsubscribe"].startswith("http://localhost:8000/status/acme/unsubscribe/")
    change = next(b for b in bodies if "component_update" in b)
    assert change["component_update"]["new_status"] == "major_outage"
    assert change["component"]["id"] == str(api_component.pk)


def test_bad_webhook_url_is_refused(page):
    from django.core.exceptions import ValidationError

    for url in ["", "ftp://x.example.com/", "not a url"]:
        with pytest.raises(ValidationError, match="valid http"):
            subscribers.subscriber_add_webhook(page=page, url=url)
    subscribers.subscriber_add_webhook(page=page, url="https://hooks.example.com/x")
    with pytest.raises(ValidationError, match="already subscribed"):
        subscribers.subscriber_add_webhook(page=page, url="https://hooks.example.com/x")


def test_failing_webhook_raises_so_the_task_retries(page, db, settings):
    settings.STATUSPAGE_WEBHOOK_ALLOW_PRIVATE = True
    sub = subscribers.subscriber_add_webhook(page=page, url="http://127.0.0.1:9/nothing-listens")
    incident = services.public_incident_create(page=page, name="x", body="y")
    with pytest.raises(OSError):
        tasks.deliver_update(incident.updates.get().pk, sub.pk)


def test_webhook_to_private_address_is_refused_not_retried(page, webhook_server, settings, caplog):
    sub = subscribers.subscriber_add_webhook(page=page, url=webhook_server.url)
    incident = services.public_incident_create(page=page, name="x", body="y")
    assert tasks.deliver_update(incident.updates.get().pk, sub.pk) == "refused"
    assert webhook_server.received == []
    assert "private/loopback" in caplog.text
    for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::1]/"):
        with pytest.raises(subscribers.WebhookRefused):
            subscribers.webhook_check_address(url)


def test_rate_limit_counts_the_real_client_behind_the_proxy(client, page, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    for i in range(5):
        client.post(
            "/status/acme/subscribe/", {"email": f"a{i}@example.com"}, HTTP_X_FORWARDED_FOR="203.0.113.7"
        )
    blocked = client.post(
        "/status/acme/subscribe/", {"email": "a9@example.com"}, HTTP_X_FORWARDED_FOR="spoofed, 203.0.113.7"
    )
    assert blocked.status_code == 429
    other = client.post(
        "/status/acme/subscribe/", {"email": "b@example.com"}, HTTP_X_FORWARDED_FOR="198.51.100.2"
    )
    assert other.status_code == 200
