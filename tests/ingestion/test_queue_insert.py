"""Group commit of the queue's INSERTs (incidents.queue_insert): concurrent requests of
one process share statements and commits, each returns only once its own rows are
committed, and a refusal or an outage reaches exactly the requests it concerns. On
PostgreSQL (the same tests, CI's second run) statements go over the process's own
connection and the next one is sent by the leader that read the previous outcome."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from incidents import queue_insert
from incidents.models import QueuedEvent
from incidents.queue_insert import GroupCommit
from incidents.queue_writer import QueueWriter
from tests.ingestion.conftest import in_threads


def row(integration, text: str) -> tuple:
    at = connection.ops.adapt_datetimefield_value(timezone.now())
    return (integration.pk, integration.service_id, text, "{}", at, integration.service_id, "k", "SEV3", "P3")


@pytest.fixture
def group():
    group = GroupCommit()
    yield group
    group.close()


@pytest.fixture
def slow_writes(monkeypatch):
    """The real write, a little slower, so that requests really arrive during a commit
    (as they do when the disk takes milliseconds to flush); records each statement.
    Either way of writing: on this thread's connection, or sent over the writer's."""
    statements: list[int] = []
    real, real_send = queue_insert.rows_write, QueueWriter.send

    def write(rows):
        statements.append(len(rows))
        time.sleep(0.02)
        real(rows)

    def send(self, rows):
        statements.append(len(rows))
        time.sleep(0.02)
        real_send(self, rows)

    monkeypatch.setattr(queue_insert, "rows_write", write)
    monkeypatch.setattr(QueueWriter, "send", send)
    return statements


def test_concurrent_requests_share_statements_and_all_rows_are_committed(
    transactional_db, service_a, make_integration, slow_writes, group
):
    integration = make_integration(service_a, "generic")
    outcomes = in_threads(16, lambda i: group.insert([row(integration, f'{{"n": {i}}}')]))
    assert outcomes == [None] * 16
    assert sorted(QueuedEvent.objects.values_list("event", flat=True)) == sorted(
        f'{{"n": {i}}}' for i in range(16))
    assert sum(slow_writes) == 16
    assert len(slow_writes) < 16, slow_writes  # some commits carried several requests' rows


def test_each_request_returns_only_once_its_own_rows_are_committed(
    transactional_db, service_a, make_integration, slow_writes, group
):
    """Whoever wrote them (the request itself or the leader of its statement), a request's
    rows are visible to its own connection, which sees only committed rows, as it returns."""
    integration = make_integration(service_a, "generic")

    def work(i: int) -> bool:
        group.insert([row(integration, f"seen {i}")])
        return QueuedEvent.objects.filter(event=f"seen {i}").exists()

    assert in_threads(12, work) == [True] * 12
    assert len(slow_writes) < 12, slow_writes  # some requests' rows were written by another
    assert not group._pending and not group._leading  # the lead lapsed with nothing left
    assert group._in_flight is None


def test_a_refused_request_does_not_fail_the_others(
    transactional_db, service_a, make_integration, slow_writes, group
):
    integration = make_integration(service_a, "generic")

    def work(i: int) -> None:
        # Request 3 sends a row the database refuses (NOT NULL), the others good ones.
        group.insert([row(integration, None if i == 3 else f"ok {i}")])

    outcomes = in_threads(8, work)
    assert outcomes[3] is not None and "null" in str(outcomes[3]).lower()
    assert [o for i, o in enumerate(outcomes) if i != 3] == [None] * 7
    assert QueuedEvent.objects.count() == 7
    assert not QueuedEvent.objects.filter(event="").exists()


def test_an_outage_fails_every_waiting_request_and_the_next_ones_get_through(
    transactional_db, service_a, make_integration, monkeypatch, group
):
    integration = make_integration(service_a, "generic")
    real, real_send = queue_insert.rows_write, QueueWriter.send
    down = threading.Event()
    down.set()

    def write(rows):
        time.sleep(0.02)
        if down.is_set():
            raise OperationalError("connection refused")
        real(rows)

    def send(self, rows):
        time.sleep(0.02)
        if down.is_set():
            raise OperationalError("connection refused")
        real_send(self, rows)

    monkeypatch.setattr(queue_insert, "rows_write", write)
    monkeypatch.setattr(QueueWriter, "send", send)
    outcomes = in_threads(6, lambda i: group.insert([row(integration, f"lost {i}")]))
    assert all(isinstance(o, OperationalError) for o in outcomes), outcomes
    assert not QueuedEvent.objects.exists()
    down.clear()
    assert in_threads(3, lambda i: group.insert([row(integration, f"kept {i}")])) == [None] * 3
    assert QueuedEvent.objects.count() == 3


def test_inside_a_transaction_rows_belong_to_it(db, service_a, make_integration):
    integration = make_integration(service_a, "generic")
    with transaction.atomic():
        GroupCommit().insert([row(integration, "rolled back")])
        assert QueuedEvent.objects.count() == 1
        transaction.set_rollback(True)
    assert not QueuedEvent.objects.exists()


def test_a_batch_is_bounded(transactional_db, service_a, make_integration, slow_writes, group):
    integration = make_integration(service_a, "generic")
    group.max_rows = 5
    outcomes = in_threads(12, lambda i: group.insert([row(integration, f"a {i}"),
                                                       row(integration, f"b {i}")]))
    assert outcomes == [None] * 12
    assert QueuedEvent.objects.count() == 24
    assert max(slow_writes) <= 5  # requests are never split across statements
