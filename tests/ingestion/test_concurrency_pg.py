"""Concurrent ingestion on PostgreSQL: the dedup guarantee and incident numbering hold
with many writers at once (the database constraint and row locks, not Python)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections
from django.test import Client

from incidents.models import Alert, Incident, TimelineEntry

pytestmark = pytest.mark.postgres

ENQUEUE = "/integrations/pagerduty/v2/enqueue"


@pytest.fixture(autouse=True)
def _postgres_only(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")


def _in_threads(count: int, work: Callable[[int], int]) -> list[int]:
    """Run ``work(i)`` in ``count`` threads released together; return status codes."""
    barrier = threading.Barrier(count, timeout=30)
    results: list[int | BaseException] = [0] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    return results  # type: ignore[return-value]


def _trigger(token: str, key: str, n: int) -> int:
    body = {"routing_key": token, "event_action": "trigger", "dedup_key": key,
            "payload": {"summary": f"checkout errors #{n}", "source": f"web{n}", "severity": "error"}}
    response = Client().post(ENQUEUE, json.dumps(body), content_type="application/json")
    return response.status_code


def test_fifty_concurrent_triggers_with_one_key_make_one_incident(service_a, make_integration):
    integration = make_integration(service_a, "pagerduty")
    codes = _in_threads(50, lambda n: _trigger(integration.token, "checkout-errors", n))
    assert codes == [202] * 50
    incident = Incident.objects.get()
    assert incident.alert_count == 50
    assert Alert.objects.filter(incident=incident).count() == 50
    assert sorted(Alert.objects.values_list("outcome", flat=True)) == ["grouped"] * 49 + ["opened"]
    assert TimelineEntry.objects.filter(incident=incident, kind="triggered").count() == 1
    assert TimelineEntry.objects.filter(incident=incident, kind="alert").count() == 49
    assert incident.number == 1  # the losers' number increments were rolled back


def test_concurrent_distinct_keys_get_distinct_sequential_numbers(service_a, make_integration):
    integration = make_integration(service_a, "pagerduty")
    codes = _in_threads(30, lambda n: _trigger(integration.token, f"key-{n}", n))
    assert codes == [202] * 30
    numbers = sorted(Incident.objects.values_list("number", flat=True))
    assert numbers == list(range(1, 31))


def test_concurrent_triggers_and_resolves_leave_at_most_one_open(service_a, make_integration):
    integration = make_integration(service_a, "pagerduty")

    def work(n: int) -> int:
        if n % 2:
            return _trigger(integration.token, "flappy", n)
        body = {"routing_key": integration.token, "event_action": "resolve", "dedup_key": "flappy"}
        return Client().post(ENQUEUE, json.dumps(body), content_type="application/json").status_code

    codes = _in_threads(20, work)
    assert codes == [202] * 20
    assert Incident.objects.exclude(status="resolved").count() <= 1
    assert Alert.objects.count() == 20
    # Every trigger alert belongs to an incident; alert counts add up.
    triggers = Alert.objects.filter(action="trigger")
    assert not triggers.filter(incident=None).exists()
    assert sum(Incident.objects.values_list("alert_count", flat=True)) == Alert.objects.exclude(
        incident=None).count()
