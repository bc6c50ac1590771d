"""Concurrent ingestion on PostgreSQL: many senders at once through a live (threaded)
server, while the clock's applier and a second applier (another clock) apply the queue.
The dedup guarantee and incident numbering hold (the queue's batch lock, the database
constraint and row locks, not Python)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connections
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler, _StaticFilesHandler

from incidents.alert_queue import queue_applier_run
from incidents.models import Alert, Incident, QueuedEvent, TimelineEntry
from ircore.clock import clock_run
from tests.ingestion.conftest import in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ENQUEUE = "/integrations/pagerduty/v2/enqueue"


class _Server(ThreadedWSGIServer):
    request_queue_size = 128  # 50 senders connect at once; Django's default backlog is 10


class _ServerThread(LiveServerThread):
    def _create_server(self, connections_override=None):
        return _Server((self.host, self.port), QuietWSGIRequestHandler, allow_reuse_address=False,
                       connections_override=connections_override)


@pytest.fixture
def threaded_server(transactional_db) -> Iterator[str]:
    """A threaded live server (a thread and a database connection per request); its URL."""
    thread = _ServerThread("127.0.0.1", _StaticFilesHandler)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield f"http://127.0.0.1:{thread.port}"
    thread.terminate()


def _closing(func: Callable[..., None]) -> Callable[..., None]:
    """Run ``func`` and close this thread's database connections afterwards (the test
    database cannot be dropped while a session is left open)."""
    def run(*args, **kwargs) -> None:
        try:
            func(*args, **kwargs)
        finally:
            connections.close_all()
    return run


@pytest.fixture
def appliers() -> Iterator[Callable[[int], None]]:
    """The clock (with its applier thread) and a second applier, as two clock processes
    would run; ``wait(alerts)`` returns once that many alerts exist and the queue is empty."""
    stop = threading.Event()
    threads = [
        threading.Thread(target=_closing(clock_run), kwargs={"interval": 0.2, "stop": stop}, daemon=True),
        threading.Thread(target=_closing(queue_applier_run), args=(stop,), daemon=True),
    ]
    for thread in threads:
        thread.start()

    def wait(alerts: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if Alert.objects.count() >= alerts and not QueuedEvent.objects.exists():
                return
            time.sleep(0.1)
        pytest.fail(f"not applied within 60 s: {Alert.objects.count()} alerts, "
                    f"{QueuedEvent.objects.count()} still queued")

    try:
        yield wait
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "an applier did not stop"


def _send(url: str, body: dict) -> int:
    response = requests.post(url, json=body, timeout=60)
    assert response.json()["dedup_key"] == body["dedup_key"], response.text
    return response.status_code


def _trigger(url: str, token: str, key: str, n: int) -> int:
    return _send(url, {"routing_key": token, "event_action": "trigger", "dedup_key": key,
                       "payload": {"summary": f"checkout errors #{n}", "source": f"web{n}",
                                   "severity": "error"}})


def test_fifty_concurrent_triggers_with_one_key_make_one_incident(threaded_server, appliers, service_a,
                                                                  make_integration):
    integration = make_integration(service_a, "pagerduty")
    url = threaded_server + ENQUEUE
    codes = in_threads(50, lambda n: _trigger(url, integration.token, "checkout-errors", n))
    assert codes == [202] * 50
    appliers(50)
    incident = Incident.objects.get()
    assert incident.alert_count == 50
    assert Alert.objects.filter(incident=incident).count() == 50 == Alert.objects.count()
    assert sorted(Alert.objects.values_list("outcome", flat=True)) == ["grouped"] * 49 + ["opened"]
    assert TimelineEntry.objects.filter(incident=incident, kind="triggered").count() == 1
    assert TimelineEntry.objects.filter(incident=incident, kind="alert").count() == 49
    assert incident.number == 1
    assert sorted(Alert.objects.values_list("summary", flat=True)) == sorted(
        f"checkout errors #{n}" for n in range(50))


def test_concurrent_distinct_keys_get_distinct_sequential_numbers(threaded_server, appliers, service_a,
                                                                  make_integration):
    integration = make_integration(service_a, "pagerduty")
    url = threaded_server + ENQUEUE
    codes = in_threads(30, lambda n: _trigger(url, integration.token, f"key-{n}", n))
    assert codes == [202] * 30
    appliers(30)
    numbers = sorted(Incident.objects.values_list("number", flat=True))
    assert numbers == list(range(1, 31))
    assert set(Alert.objects.values_list("outcome", flat=True)) == {"opened"}


def test_concurrent_triggers_and_resolves_leave_at_most_one_open(threaded_server, appliers, service_a,
                                                                 make_integration):
    integration = make_integration(service_a, "pagerduty")
    url = threaded_server + ENQUEUE

    def work(n: int) -> int:
        if n % 2:
            return _trigger(url, integration.token, "flappy", n)
        return _send(url, {"routing_key": integration.token, "event_action": "resolve",
                           "dedup_key": "flappy"})

    codes = in_threads(20, work)
    assert codes == [202] * 20
    appliers(20)
    assert Incident.objects.exclude(status="resolved").count() <= 1
    assert Alert.objects.count() == 20
    # Every trigger alert belongs to an incident; alert counts add up.
    triggers = Alert.objects.filter(action="trigger")
    assert triggers.count() == 10 and not triggers.filter(incident=None).exists()
    assert sum(Incident.objects.values_list("alert_count", flat=True)) == Alert.objects.exclude(
        incident=None).count()
    assert set(Alert.objects.filter(action="resolve").values_list("outcome", flat=True)) <= {
        "resolved", "no_open_incident"}
