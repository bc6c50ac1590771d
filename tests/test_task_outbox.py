"""ircore.tasks: django-q2's Redis broker (REDIS_URL) against a real redis-server, a
closed port, and a Redis stopped and started again. While the broker is unreachable,
task_enqueue keeps tasks in the database (OutboxTask) and the clock job outbox_flush
hands them over, in order, once it answers."""

from __future__ import annotations

import logging
import time

import pytest
import redis.exceptions
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from ircore import tasks
from ircore.clock import clock_jobs
from ircore.models import OutboxTask
from ircore.tasks import outbox_flush, task_enqueue
from ircore.testing import unreachable_redis_url
from tests.test_settings import run


@pytest.fixture(autouse=True)
def _log_info(caplog):
    caplog.set_level(logging.INFO, logger="ircore.tasks")


def queued() -> list[dict]:
    """The task packages in the broker's Redis list, oldest first."""
    broker = get_broker()
    return [SignedPackage.loads(raw) for raw in broker.connection.lrange(broker.list_key, 0, -1)]


def warnings_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "ircore.tasks" and r.levelno == logging.WARNING]


def stored() -> list[tuple]:
    return list(OutboxTask.objects.order_by("pk").values_list("func", "args", "options"))


@pytest.mark.external
@pytest.mark.django_db
def test_broker_up_the_task_goes_to_redis_and_nothing_is_stored(redis_url, use_broker, caplog):
    use_broker(redis_url)
    task_id = task_enqueue("oncall.tasks.escalation_step", 7, 3, group="oncall")
    [task] = queued()
    assert task["id"] == task_id
    assert (task["func"], task["args"], task["group"]) == ("oncall.tasks.escalation_step", (7, 3), "oncall")
    assert OutboxTask.objects.count() == 0 and warnings_logged(caplog) == []


@pytest.mark.django_db
def test_broker_down_the_call_succeeds_the_task_is_stored_and_one_warning_is_logged(use_broker, caplog):
    use_broker(unreachable_redis_url())
    assert task_enqueue("statuspage.tasks.notify_update", 5, task_name="statuspage-notify-5") is None
    for subscriber_id in range(1, 6):
        assert task_enqueue("statuspage.tasks.deliver_update", 5, subscriber_id) is None
    task_enqueue("ircore.inbound.inbound_process", 9, group="inbound-email")
    assert stored() == [
        ("statuspage.tasks.notify_update", [5], {"task_name": "statuspage-notify-5"}),
        *[("statuspage.tasks.deliver_update", [5, i], {}) for i in range(1, 6)],
        ("ircore.inbound.inbound_process", [9], {"group": "inbound-email"}),
    ]
    row = OutboxTask.objects.first()
    assert row.attempts == 0 and "Connection" in row.last_error
    [warning] = warnings_logged(caplog)
    assert "unreachable" in warning


@pytest.mark.django_db
def test_the_same_task_queued_again_while_it_waits_is_kept_once(use_broker):
    """The clock re-dispatches a due escalation after each claim lease: one row, not one per lease."""
    use_broker(unreachable_redis_url())
    for _ in range(3):
        task_enqueue("oncall.tasks.escalation_step", 7, 3, group="oncall")
    task_enqueue("oncall.tasks.escalation_step", 7, 4, group="oncall")  # a new fence is a new task
    assert stored() == [("oncall.tasks.escalation_step", [7, 3], {"group": "oncall"}),
                        ("oncall.tasks.escalation_step", [7, 4], {"group": "oncall"})]


@pytest.mark.external
@pytest.mark.django_db
def test_broker_back_the_clock_hands_stored_tasks_over_in_order_and_deletes_them(
    use_broker, redis_server, caplog
):
    use_broker(redis_server.url)
    task_enqueue("oncall.tasks.notification_send", 1, group="oncall")  # broker up: straight to Redis
    redis_server.stop()
    for pk in (2, 3, 4):
        task_enqueue("oncall.tasks.notification_send", pk, group="oncall")
    task_enqueue("statuspage.tasks.notify_update", 8, task_name="statuspage-notify-8")
    assert OutboxTask.objects.count() == 4 and len(warnings_logged(caplog)) == 1

    redis_server.start()
    assert queued() == []  # a fresh server: the task sent before the outage went with the old one
    assert outbox_flush(None) == 4
    assert OutboxTask.objects.count() == 0
    assert [(t["func"], t["args"], t.get("group")) for t in queued()] == [
        ("oncall.tasks.notification_send", (2,), "oncall"),
        ("oncall.tasks.notification_send", (3,), "oncall"),
        ("oncall.tasks.notification_send", (4,), "oncall"),
        ("statuspage.tasks.notify_update", (8,), None),
    ]
    assert queued()[3]["name"] == "statuspage-notify-8"
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    assert outbox_flush(None) == 0  # nothing twice
    assert len(queued()) == 4


@pytest.mark.django_db
def test_broker_still_down_the_clock_keeps_the_tasks_and_stops_at_the_first_failure(use_broker, caplog):
    use_broker(unreachable_redis_url())
    for pk in (1, 2, 3):
        task_enqueue("oncall.tasks.notification_send", pk, group="oncall")
    assert outbox_flush(None) == 0
    assert outbox_flush(None) == 0
    rows = list(OutboxTask.objects.order_by("pk").values_list("args", "attempts"))
    assert rows == [([1], 2), ([2], 0), ([3], 0)]  # only the first was tried, each tick
    assert len(warnings_logged(caplog)) == 1  # still the same outage


@pytest.mark.external
@pytest.mark.django_db
def test_errors_that_are_not_about_reaching_the_broker_still_raise(redis_url, use_broker, caplog):
    use_broker(redis_url)
    broker = get_broker()
    # A real Redis error that is not a connection error: the queue's key holds a string.
    broker.connection.set(broker.list_key, "not a list")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        task_enqueue("oncall.tasks.notification_send", 1, group="oncall")
    assert OutboxTask.objects.count() == 0
    with pytest.raises(TypeError):  # arguments the outbox could not keep fail with Redis up, too
        task_enqueue("oncall.tasks.notification_send", object())
    with pytest.raises(TypeError):
        task_enqueue(print, 1)

    # The clock: the row stays, with the error, and the error reaches the clock's log.
    broker.connection.delete(broker.list_key)
    use_broker(unreachable_redis_url())
    task_enqueue("oncall.tasks.notification_send", 2, group="oncall")
    use_broker(redis_url)
    broker.connection.set(broker.list_key, "not a list")
    with pytest.raises(redis.exceptions.ResponseError):
        outbox_flush(None)
    row = OutboxTask.objects.get()
    assert row.attempts == 1 and "WRONGTYPE" in row.last_error
    broker.connection.delete(broker.list_key)
    assert outbox_flush(None) == 1 and OutboxTask.objects.count() == 0


def test_the_clock_runs_the_flush_every_few_seconds():
    [job] = [job for job in clock_jobs() if job.func is outbox_flush]
    assert job.every <= 5


@pytest.mark.django_db
def test_the_console_shows_waiting_tasks_to_superusers_only(client, use_broker, admin_user, manager):
    use_broker(unreachable_redis_url())
    task_enqueue("statuspage.tasks.send_confirmation", 42)
    client.force_login(admin_user)
    response = client.get("/admin/ircore/outboxtask/")
    assert response.status_code == 200 and "statuspage.tasks.send_confirmation" in response.content.decode()
    client.force_login(manager)
    assert client.get("/admin/ircore/outboxtask/").status_code == 403


@pytest.mark.django_db
def test_a_broker_that_never_answers_costs_one_timeout_per_retry_period(
    use_broker, redis_blackhole, monkeypatch, caplog
):
    url, attempts = redis_blackhole
    url += "?socket_connect_timeout=0.3&socket_timeout=0.3"
    use_broker(url)
    monkeypatch.setattr(tasks.outage, "retry_seconds", 0.5)
    started = time.monotonic()
    for pk in range(5):
        assert task_enqueue("oncall.tasks.notification_send", pk) is None
    assert time.monotonic() - started < 0.5  # one socket timeout, not five
    assert attempts() == 1 and OutboxTask.objects.count() == 5
    assert "Timeout" in OutboxTask.objects.order_by("pk").first().last_error
    time.sleep(0.5)
    task_enqueue("oncall.tasks.notification_send", 5)  # the retry
    assert attempts() == 1 and OutboxTask.objects.count() == 6
    assert len(warnings_logged(caplog)) == 1


def test_settings_bound_the_broker_waits_with_redis_url(tmp_path):
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.Q_CLUSTER['redis'], settings.Q_CLUSTER.get('orm'))")
    result = run(code, tmp_path, SECRET_KEY="k" * 60, REDIS_URL="redis://127.0.0.1:6399/2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "redis://127.0.0.1:6399/2?socket_connect_timeout=2&socket_timeout=5", "None"]
    result = run(code, tmp_path, SECRET_KEY="k" * 60, REDIS_URL="redis://r:6379/0?socket_timeout=9")
    assert result.stdout.split() == ["redis://r:6379/0?socket_timeout=9&socket_connect_timeout=2", "None"]
