"""Delivery records of subscriber notifications: a repeated fan-out or delivery task
tells nobody twice, a failing webhook is retried alone, a send a crashed worker left
half-way is handed on by the clock, and the console shows who was told.

Email goes to a real SMTP server and webhooks to a real HTTP server on loopback; tasks
go through django-q2's (ORM) broker and are run from it as a worker would."""

from datetime import timedelta
from importlib import import_module

import pytest
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from ircore.clock import clock_jobs
from statuspage import deliveries, services, subscribers, tasks
from statuspage.models import StatusPage, Subscriber, SubscriberDelivery

Status = SubscriberDelivery.Status


def queued() -> list[tuple[str, list]]:
    """Take every task out of the broker, oldest first: (dotted path, args)."""
    broker = get_broker()
    taken = []
    while broker.queue_size():
        for ack_id, raw in broker.dequeue() or []:
            package = SignedPackage.loads(raw)
            taken.append((package["func"], list(package["args"])))
            broker.acknowledge(ack_id)
    return taken


def work(*, times: int = 1) -> list[tuple[str, list, object]]:
    """Run the queued tasks (and those they queue) as a worker would, each ``times``
    times (a task handed over again); (func, args, result or the exception raised)."""
    done = []
    while batch := queued():
        for func, args in batch:
            module, name = func.rsplit(".", 1)
            for _ in range(times):
                try:
                    result = getattr(import_module(module), name)(*args)
                except Exception as exc:  # a worker records it; django-q2 retries the task
                    result = exc
                done.append((func, args, result))
    return done


def confirmed(page, email):
    return Subscriber.objects.create(page=page, email=email, confirmed_at=timezone.now())


def emails_to(smtp_server) -> list[str]:
    return sorted(rcpt for _, rcpts, _ in smtp_server.messages for rcpt in rcpts)


def posts(webhook_server, path: str = "/hook") -> list[int]:
    return [r["status"] for r in webhook_server.received if r["path"] == path]


@pytest.fixture
def webhooks_allowed(settings):
    settings.STATUSPAGE_WEBHOOK_ALLOW_PRIVATE = True  # the test server listens on loopback


@pytest.fixture
def incident_posted(page, django_capture_on_commit_callbacks):
    """Post a public incident; its notify task waits in the broker."""

    def post(name: str = "API down"):
        with django_capture_on_commit_callbacks(execute=True):
            incident = services.public_incident_create(page=page, name=name, body="We know.")
        return incident.updates.get()

    return post


def test_fan_out_twice_and_every_task_twice_tells_each_subscriber_once(
    page, smtp_server, webhook_server, webhooks_allowed, incident_posted
):
    confirmed(page, "ann@example.com")
    confirmed(page, "bob@example.com")
    Subscriber.objects.create(page=page, email="unconfirmed@example.com")
    hook = subscribers.subscriber_add_webhook(page=page, url=webhook_server.url)
    update = incident_posted()
    assert [f for f, _ in queued()] == ["statuspage.tasks.notify_update"]
    # The fan-out runs twice before any delivery ran: every delivery task is queued twice.
    assert tasks.notify_update(update.pk) == 3
    assert tasks.notify_update(update.pk) == 3
    results = work(times=2)
    assert len(results) == 12
    assert sorted(str(r) for _, _, r in results) == sorted(
        ["already sent"] * 9 + ["email", "email", "webhook"]
    )
    assert emails_to(smtp_server) == ["ann@example.com", "bob@example.com"]
    assert posts(webhook_server) == [204]
    rows = SubscriberDelivery.objects.filter(update=update)
    assert sorted(rows.values_list("address", "channel", "status", "attempts")) == [
        ("ann@example.com", "email", "sent", 1),
        ("bob@example.com", "email", "sent", 1),
        (webhook_server.url, "webhook", "sent", 1),
    ]
    assert all(r.sent_at and r.claimed_until is None for r in rows)
    # A third fan-out after everything went out queues nothing.
    assert tasks.notify_update(update.pk) == 0 and queued() == []
    assert SubscriberDelivery.objects.filter(subscriber=hook).count() == 1


def test_webhook_answering_500_once_is_retried_alone(
    page, smtp_server, webhook_server, webhooks_allowed, incident_posted
):
    confirmed(page, "ann@example.com")
    subscribers.subscriber_add_webhook(page=page, url=webhook_server.url)
    flaky = subscribers.subscriber_add_webhook(page=page, url=webhook_server.url.replace("/hook", "/flaky"))
    webhook_server.failures["/flaky"] = 1
    incident_posted()
    results = work()
    (failed,) = [(f, args, r) for f, args, r in results if isinstance(r, Exception)]
    func, args, error = failed
    assert func == "statuspage.tasks.deliver_update" and args[1] == flaky.pk and "500" in str(error)
    row = SubscriberDelivery.objects.get(subscriber=flaky)
    assert (row.status, row.attempts, row.sent_at) == ("failed", 1, None) and "500" in row.error
    # django-q2 runs the failed task again.
    assert tasks.deliver_update(*args) == "webhook"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.error) == ("sent", 2, "") and row.sent_at
    assert posts(webhook_server, "/flaky") == [500, 204]
    assert posts(webhook_server, "/hook") == [204]
    assert emails_to(smtp_server) == ["ann@example.com"]


def test_row_claimed_by_a_live_worker_is_not_sent_again_and_the_clock_resends_an_expired_one(
    page, smtp_server, incident_posted
):
    confirmed(page, "ann@example.com")
    update = incident_posted()
    assert work() == [("statuspage.tasks.notify_update", [update.pk], 1)] + [
        ("statuspage.tasks.deliver_update", [update.pk, Subscriber.objects.get().pk], "email")
    ]
    row = SubscriberDelivery.objects.get()
    # A first worker claims a new row and dies (or is still sending) before it records anything.
    update2 = incident_posted("Second")
    queued()  # the fan-out task: run by hand below, so nothing else is queued
    tasks.notify_update(update2.pk)
    row2 = SubscriberDelivery.objects.get(update=update2)
    now = timezone.now()
    assert deliveries._claim(row2.pk, now)
    (deliver,) = queued()
    assert tasks.deliver_update(*deliver[1]) == "not sent: sending"
    assert emails_to(smtp_server) == ["ann@example.com"]
    job = next(j for j in clock_jobs() if j.name == "statuspage_deliveries")
    assert job.func(now + timedelta(seconds=60)) == 0  # the lease still runs
    assert queued() == []
    assert job.func(now + timedelta(seconds=deliveries.LEASE_SECONDS + 1)) == 1
    assert job.func(now + timedelta(seconds=deliveries.LEASE_SECONDS + 1)) == 0  # handed on once
    assert [r for _, _, r in work(times=2)] == ["email", "already sent"]
    assert emails_to(smtp_server) == ["ann@example.com", "ann@example.com"]
    row2.refresh_from_db()
    assert (row2.status, row2.attempts, row2.claimed_until) == ("sent", 1, None)
    row.refresh_from_db()
    assert row.status == "sent"


def test_rows_whose_tasks_were_lost_are_handed_to_tasks_a_lease_later_and_sent_once(
    page, smtp_server, incident_posted
):
    confirmed(page, "ann@example.com")
    confirmed(page, "bob@example.com")
    update = incident_posted()
    queued()  # a worker takes the fan-out task...
    assert tasks.notify_update(update.pk) == 2  # ...makes the rows and queues their tasks...
    assert len(queued()) == 2  # ...which a broker loses (taken, never run)
    assert set(SubscriberDelivery.objects.values_list("status", flat=True)) == {"pending"}
    job = next(j for j in clock_jobs() if j.name == "statuspage_deliveries")
    now = timezone.now()
    assert job.func(now) == 0  # just made: their tasks may be on their way
    assert queued() == []
    later = now + timedelta(seconds=deliveries.LEASE_SECONDS + 1)
    assert job.func(later) == 2
    assert job.func(later) == 0  # each task gets a lease's time to take its row
    # Still not taken a lease later (a worker down): handed on again, sent once all the same.
    assert job.func(later + timedelta(seconds=deliveries.LEASE_SECONDS + 1)) == 2
    assert sorted(r for _, _, r in work()) == ["already sent", "already sent", "email", "email"]
    assert emails_to(smtp_server) == ["ann@example.com", "bob@example.com"]
    assert set(SubscriberDelivery.objects.values_list("status", "claimed_until")) == {("sent", None)}
    assert job.func(later + timedelta(days=1)) == 0


def test_refused_private_webhook_is_recorded_failed_with_its_reason_and_not_retried(
    page, webhook_server, incident_posted
):
    hook = subscribers.subscriber_add_webhook(page=page, url=webhook_server.url)
    incident_posted()
    assert [r for _, _, r in work()] == [1, "refused"]
    row = SubscriberDelivery.objects.get(subscriber=hook)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.error.startswith("refused:") and "private/loopback" in row.error
    assert webhook_server.received == []


def test_task_queued_before_the_upgrade_still_delivers_once(
    page, api_component, smtp_server, webhook_server, webhooks_allowed
):
    sub = confirmed(page, "ann@example.com")
    hook = subscribers.subscriber_add_webhook(page=page, url=webhook_server.url)
    incident = services.public_incident_create(page=page, name="x", body="y")  # on-commit never runs
    services.component_set_status(component=api_component, status="major_outage")
    change = api_component.status_changes.get()
    assert not SubscriberDelivery.objects.exists()
    update = incident.updates.get()
    assert [tasks.deliver_update(update.pk, sub.pk) for _ in range(2)] == ["email", "already sent"]
    assert [tasks.deliver_component_change(change.pk, hook.pk) for _ in range(2)] == [
        "webhook", "already sent"
    ]
    assert emails_to(smtp_server) == ["ann@example.com"]
    assert len(webhook_server.received) == 1 and "component_update" in webhook_server.received[0]["json"]
    assert sorted(SubscriberDelivery.objects.values_list("channel", "status", "update", "change")) == [
        ("email", "sent", update.pk, None),
        ("webhook", "sent", None, change.pk),
    ]


def test_component_change_fan_out_twice_posts_once(page, api_component, webhook_server, webhooks_allowed):
    subscribers.subscriber_add_webhook(page=page, url=webhook_server.url)
    services.component_set_status(component=api_component, status="major_outage")
    queued()
    change = api_component.status_changes.get()
    assert tasks.notify_component_change(change.pk) == 1
    assert tasks.notify_component_change(change.pk) == 1
    assert sorted(str(r) for _, _, r in work()) == ["already sent", "webhook"]
    assert len(webhook_server.received) == 1
    assert tasks.notify_component_change(change.pk) == 0 and queued() == []  # nobody left to tell


def test_console_shows_who_was_told_team_scoped(client, manager, outsider, page, team_b):
    mine = confirmed(page, "ann@example.com")
    failing = confirmed(page, "bob@example.com")
    other_page = StatusPage.objects.create(team=team_b, slug="other", title="Other")
    theirs = confirmed(other_page, "secret@example.com")
    incident = services.public_incident_create(page=page, name="API down", body="x")
    other_incident = services.public_incident_create(page=other_page, name="Theirs", body="x")
    update = incident.updates.get()
    deliveries.deliveries_create(subscribers=[mine, failing], update=update)
    deliveries.deliveries_create(subscribers=[theirs], update=other_incident.updates.get())
    SubscriberDelivery.objects.filter(subscriber=mine).update(status=Status.SENT, sent_at=timezone.now())
    SubscriberDelivery.objects.filter(subscriber=failing).update(status=Status.FAILED, error="HTTP 500")
    other_row = SubscriberDelivery.objects.get(subscriber=theirs)

    client.force_login(manager)
    html = client.get(f"/admin/statuspage/publicincident/{incident.pk}/change/").content.decode()
    assert f"?update__id__exact={update.pk}\">1 told, 0 pending, 1 failed</a>" in html
    html = client.get("/admin/statuspage/subscriberdelivery/").content.decode()
    assert "ann@example.com" in html and "bob@example.com" in html and "secret@example.com" not in html
    html = client.get("/admin/statuspage/subscriberdelivery/?status__exact=failed").content.decode()
    assert "bob@example.com" in html and "ann@example.com" not in html
    html = client.get("/admin/statuspage/subscriberdelivery/?q=secret").content.decode()
    assert "secret@example.com" not in html
    response = client.get(f"/admin/statuspage/subscriberdelivery/{other_row.pk}/change/")
    assert response.status_code in (302, 404)
    assert "secret" not in response.content.decode()
    assert client.get("/admin/statuspage/subscriberdelivery/add/").status_code == 403
    mine_row = SubscriberDelivery.objects.get(subscriber=mine)
    view = client.get(f"/admin/statuspage/subscriberdelivery/{mine_row.pk}/change/").content.decode()
    assert "ann@example.com" in view and 'name="_save"' not in view  # read-only
    assert client.post(
        f"/admin/statuspage/subscriberdelivery/{mine_row.pk}/change/", {"status": "pending"}
    ).status_code == 403
    assert SubscriberDelivery.objects.get(pk=mine_row.pk).status == "sent"

    client.force_login(outsider)
    html = client.get("/admin/statuspage/subscriberdelivery/").content.decode()
    assert "secret@example.com" in html and "ann@example.com" not in html
