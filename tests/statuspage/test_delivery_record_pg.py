"""Several workers run the same delivery tasks at the same moment on PostgreSQL (the
deployment with several workers): the row made by whichever comes first, the claim by
compare-and-set, so every subscriber gets the update exactly once."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.utils import timezone

from statuspage import services, tasks
from statuspage.models import Subscriber, SubscriberDelivery

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
SUBSCRIBERS = 12
WORKERS = 4


def test_workers_running_the_same_tasks_at_once_tell_each_subscriber_once(page, smtp_server):
    subs = [
        Subscriber.objects.create(page=page, email=f"s{i}@example.com", confirmed_at=timezone.now())
        for i in range(SUBSCRIBERS)
    ]
    incident = services.public_incident_create(page=page, name="API down", body="x")
    update = incident.updates.get()
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(WORKERS, timeout=30)

    def worker() -> None:
        # No row exists yet (tasks queued before the fan-out made them, or before the
        # upgrade): the workers race to make each row, then to claim it.
        try:
            start.wait()
            for sub in subs:
                results.append(tasks.deliver_update(update.pk, sub.pk))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert results.count("email") == SUBSCRIBERS
    assert set(results) <= {"email", "already sent", "not sent: sending"}
    told = sorted(rcpt for _, rcpts, _ in smtp_server.messages for rcpt in rcpts)
    assert told == sorted(s.email for s in subs)
    rows = SubscriberDelivery.objects.filter(update=update)
    assert rows.count() == SUBSCRIBERS and set(rows.values_list("status", "attempts")) == {("sent", 1)}
