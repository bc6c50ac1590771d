"""Two clocks hand the outbox over at once on PostgreSQL (ircore.tasks.outbox_flush):
row locks with SKIP LOCKED let them share the backlog, and no task reaches the broker
twice or is left behind."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from ircore.models import OutboxTask
from ircore.tasks import outbox_flush, task_enqueue
from ircore.testing import unreachable_redis_url
from tests.test_task_outbox import queued

pytestmark = [pytest.mark.postgres, pytest.mark.external, pytest.mark.django_db(transaction=True)]
TASKS = 300


def test_two_clocks_hand_each_stored_task_over_once(redis_url, use_broker):
    use_broker(unreachable_redis_url())
    for pk in range(TASKS):
        task_enqueue("oncall.tasks.notification_send", pk, group="oncall")
    assert OutboxTask.objects.count() == TASKS
    use_broker(redis_url)

    handed: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def clock() -> None:
        try:
            start.wait()
            while count := outbox_flush(None):
                handed.append(count)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=clock) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    args = [task["args"][0] for task in queued()]
    assert sorted(args) == list(range(TASKS))  # each once: none twice, none left out
    assert sum(handed) == TASKS and OutboxTask.objects.count() == 0
