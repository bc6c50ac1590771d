"""The status page with REDIS_URL set and the task broker unreachable (ircore.tasks):
requests whose change was committed answer as usual, and the subscriber work they
queue after commit waits in the outbox instead of being lost (nothing sweeps it from
the database later)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils.module_loading import import_string
from rest_framework.test import APIClient

from ircore.models import OutboxTask
from ircore.tasks import outbox_flush
from ircore.testing import unreachable_redis_url
from statuspage.models import PublicUpdate, Subscriber
from tests.statuspage.test_admin import post_component_change
from tests.statuspage.test_api import base
from tests.test_task_outbox import queued


@pytest.fixture
def broker_down(use_broker):
    use_broker(unreachable_redis_url())


def stored() -> list[tuple]:
    return list(OutboxTask.objects.order_by("pk").values_list("func", "args", "options"))


def test_public_subscribe_answers_and_the_confirmation_waits(client, page, broker_down,
                                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/status/acme/subscribe/", {"email": "ann@example.com"})
    assert response.status_code == 200 and "Check your inbox" in response.content.decode()
    sub = Subscriber.objects.get()
    assert stored() == [("statuspage.tasks.send_confirmation", [sub.pk], {})]


def test_api_update_answers_201_and_the_subscriber_notification_waits(
    page, responder, api_component, broker_down, django_capture_on_commit_callbacks
):
    client = APIClient()
    client.force_authenticate(responder)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{base(page)}/incidents/", {"name": "Checkout", "body": "Investigating."},
                               format="json")
    assert response.status_code == 201, response.json()
    update = PublicUpdate.objects.get()
    assert stored() == [("statuspage.tasks.notify_update", [update.pk],
                         {"task_name": f"statuspage-notify-{update.pk}"})]


def test_admin_component_change_answers_and_the_webhook_notification_waits(
    client, manager, page, api_component, broker_down, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_component_change(client, api_component, status="major_outage")
    assert response.status_code == 302, response.content.decode()[:2000]
    change = api_component.status_changes.get()
    assert stored() == [("statuspage.tasks.notify_component_change", [change.pk], {})]


@pytest.mark.external
def test_after_the_outage_the_confirmation_is_sent(client, page, redis_url, use_broker,
                                                   django_capture_on_commit_callbacks, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    use_broker(unreachable_redis_url())
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/status/acme/subscribe/", {"email": "ann@example.com"}).status_code == 200
    use_broker(redis_url)  # the broker is back
    assert outbox_flush(None) == 1 and OutboxTask.objects.count() == 0
    [task] = queued()
    import_string(task["func"])(*task["args"], **task["kwargs"])  # what a worker does with it
    assert [m.to for m in mail.outbox] == [["ann@example.com"]]
    assert "/status/acme/subscribe/confirm/" in mail.outbox[0].body
