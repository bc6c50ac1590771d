"""The queue INSERT's PostgreSQL path: a process's own connection
(incidents.queue_writer.QueueWriter, libpq directly) with statements prepared once per row
count, or not at all with prepared statements turned off; database errors reach callers
as Django's; a connection the server dropped fails one statement's requests with 503 and
the next statement reconnects; and the group commit sends each statement before it
hands the lead over, never two at once."""

from __future__ import annotations

import os
import threading
import time

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from incidents.models import QueuedEvent
from incidents.queue_insert import GroupCommit, group_commit
from incidents.queue_writer import QueueWriter, connection_params
from tests.ingestion.conftest import database_unavailable, in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _row(integration, text: str | None) -> tuple:
    service = integration.service_id
    return (integration.pk, service, text, "{}", timezone.now(), service, "k", "SEV3", "P3")


def _prepared_names(writer: QueueWriter) -> set[str]:
    rows = writer._conn.execute(
        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'ircore_queue_insert_%%'").fetchall()
    return {name for (name,) in rows}


@pytest.fixture
def writer():
    writer = QueueWriter()
    yield writer
    writer.close()


def test_rows_are_committed_with_their_values_and_statements_prepared_per_row_count(
    service_a, make_integration, writer
):
    integration = make_integration(service_a, "generic")
    at = timezone.now()
    writer.write([(integration.pk, integration.service_id, '{"n": 1, "text": "café \\" \'"}', '{"p": 2}', at,
                   integration.service_id, "clé \\ \"'", "SEV1", "P2")])
    writer.write([_row(integration, f"row {i}") for i in range(3)])
    writer.write([_row(integration, "again")])
    assert _prepared_names(writer) == {"ircore_queue_insert_1", "ircore_queue_insert_3"}
    first = QueuedEvent.objects.order_by("id").first()  # another session: committed
    assert first.event == '{"n": 1, "text": "café \\" \'"}' and first.payload == '{"p": 2}'
    assert (first.triaged_service_id, first.triaged_key, first.triaged_severity, first.triaged_priority) == (
        integration.service_id, "clé \\ \"'", "SEV1", "P2")
    assert first.received_at == at and first.error == ""
    assert QueuedEvent.objects.count() == 5

    # A new session (a reconnect) prepares again rather than using a name it lacks.
    writer.close()
    writer.write([_row(integration, "after reconnect")])
    assert _prepared_names(writer) == {"ircore_queue_insert_1"}
    assert QueuedEvent.objects.filter(event="after reconnect").count() == 1


def test_without_prepared_statements_nothing_is_prepared(service_a, make_integration, writer):
    integration = make_integration(service_a, "generic")
    writer._pgconn()
    writer._conn.prepare_threshold = None  # DATABASE_URL ?prepare_threshold=none
    writer.write([_row(integration, "unprepared"), _row(integration, "too")])
    assert _prepared_names(writer) == set()
    assert QueuedEvent.objects.filter(event__in=["unprepared", "too"]).count() == 2


def test_a_refused_row_raises_djangos_error_and_the_connection_stays_usable(
    service_a, make_integration, writer
):
    integration = make_integration(service_a, "generic")
    with pytest.raises(IntegrityError, match="null value"):
        writer.write([_row(integration, "kept out"), _row(integration, None)])  # event is NOT NULL
    assert not QueuedEvent.objects.exists()  # the statement is all or nothing
    backend = writer.backend_pid()
    writer.write([_row(integration, "next")])
    assert writer.backend_pid() == backend
    assert list(QueuedEvent.objects.values_list("event", flat=True)) == ["next"]


def _terminate(pid: int) -> None:
    with psycopg.connect(**connection_params(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(100):  # until the server has really ended it
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                return
            time.sleep(0.05)


def test_an_idle_connection_the_server_ended_is_replaced_before_the_next_statement(
    client, service_a, make_integration
):
    """A database restart (or pg_terminate_backend, or an idle timeout) between two events:
    the next event is stored over a new connection, not answered 503."""
    integration = make_integration(service_a, "generic")
    url = f"/integrations/generic/{integration.token}/"
    assert client.post(url, {"summary": "warm"}, content_type="application/json").status_code == 202
    pid = group_commit._writer.backend_pid()
    assert pid is not None and pid != connection.cursor().connection.info.backend_pid
    _terminate(pid)

    response = client.post(url, {"summary": "after the restart"}, content_type="application/json")
    assert response.status_code == 202, response.content
    assert group_commit._writer.backend_pid() not in (None, pid)
    assert QueuedEvent.objects.filter(event__contains="after the restart").count() == 1


def test_a_connection_lost_during_a_statement_fails_its_requests_with_503_then_reconnects(
    client, service_a, make_integration, monkeypatch
):
    """Lost after the statement was sent, its outcome is unknown: the request is answered
    503 (the sender retries), never 2xx, and the next statement connects again."""
    integration = make_integration(service_a, "generic")
    url = f"/integrations/generic/{integration.token}/"
    assert client.post(url, {"summary": "warm"}, content_type="application/json").status_code == 202
    pid = group_commit._writer.backend_pid()
    real_send = QueueWriter.send

    def send_then_lose(self, rows):
        # The INSERT waits behind another session's lock on the queue, and its connection
        # is ended meanwhile.
        with psycopg.connect(**connection_params()) as locker:
            locker.execute(f'LOCK TABLE "{QueuedEvent._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
            real_send(self, rows)
            monkeypatch.setattr(QueueWriter, "send", real_send)
            _terminate(pid)
            locker.rollback()

    monkeypatch.setattr(QueueWriter, "send", send_then_lose)
    response = client.post(url, {"summary": "lost"}, content_type="application/json")
    assert response.status_code == 503, response.content
    assert "not stored" in response.json()["message"]
    assert client.post(url, {"summary": "retried"}, content_type="application/json").status_code == 202
    assert group_commit._writer.backend_pid() not in (None, pid)
    events = list(QueuedEvent.objects.values_list("event", flat=True))
    assert any("retried" in e for e in events) and not any('"lost"' in e for e in events)


def test_a_database_that_refuses_connections_is_503_and_the_writer_connects_once_it_is_back(
    client, service_a, make_integration
):
    integration = make_integration(service_a, "generic")
    url = f"/integrations/generic/{integration.token}/"
    group_commit.close()
    with database_unavailable():
        response = client.post(url, {"summary": "refused"}, content_type="application/json")
    assert response.status_code == 503, response.content
    assert group_commit._writer.backend_pid() is None
    assert client.post(url, {"summary": "back"}, content_type="application/json").status_code == 202
    events = list(QueuedEvent.objects.values_list("event", flat=True))
    assert len(events) == 1 and '"back"' in events[0]


def test_a_rollback_elsewhere_on_the_request_connection_does_not_break_ingestion(
    client, service_a, make_integration
):
    """psycopg answers any ROLLBACK (a savepoint's too) on a connection where it prepared
    statements of its own with DEALLOCATE ALL. The queue's statements are prepared on the
    writer's own connection, so the console's and the API's rollbacks on a thread's
    connection leave them alone."""
    integration = make_integration(service_a, "generic")
    url = f"/integrations/generic/{integration.token}/"
    assert client.post(url, {"summary": "before"}, content_type="application/json").status_code == 202
    for _ in range(connection.connection.prepare_threshold + 1):  # psycopg prepares one of its own
        assert QueuedEvent.objects.filter(pk__gt=0).count() == 1
    with pytest.raises(RuntimeError), transaction.atomic():
        QueuedEvent.objects.update(error="")
        raise RuntimeError("a request that fails and rolls back")

    response = client.post(url, {"summary": "after"}, content_type="application/json")
    assert response.status_code == 202, response.content
    assert _prepared_names(group_commit._writer) == {"ircore_queue_insert_1"}
    events = list(QueuedEvent.objects.order_by("id").values_list("event", flat=True))
    assert len(events) == 2 and '"after"' in events[1]


def test_the_next_statement_is_sent_before_the_lead_is_handed_over_and_never_two_at_once(
    service_a, make_integration, monkeypatch
):
    """Whoever reads a statement's outcome sends the next one: under a slow disk (each
    outcome 20 ms away) statements are sent by one thread and read by another, and at
    most one is ever in flight on the process's connection."""
    integration = make_integration(service_a, "generic")
    group = GroupCommit()
    lock, in_flight, most, handed_over = threading.Lock(), [0], [0], []
    real_send, real_receive = QueueWriter.send, QueueWriter.receive

    def send(self, rows):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        self.sender = threading.get_ident()
        real_send(self, rows)

    def receive(self):
        time.sleep(0.02)
        handed_over.append(self.sender != threading.get_ident())
        with lock:
            in_flight[0] -= 1
        real_receive(self)

    monkeypatch.setattr(QueueWriter, "send", send)
    monkeypatch.setattr(QueueWriter, "receive", receive)
    try:
        outcomes = in_threads(12, lambda i: group.insert([_row(integration, f"n {i}")]))
    finally:
        group.close()
    assert outcomes == [None] * 12
    assert QueuedEvent.objects.count() == 12
    assert most[0] == 1
    assert 1 < len(handed_over) < 12, handed_over  # statements were shared
    assert any(handed_over), handed_over  # and sent by the leader before the one reading them
    assert group._in_flight is None and not group._pending and not group._leading


def test_the_writer_takes_the_role_djangos_sessions_assume(service_a, make_integration, writer):
    """DATABASES OPTIONS ``assume_role``: Django sets it on its sessions; the queue's own
    connection writes as that role too, not as the login user."""
    integration = make_integration(service_a, "generic")
    role = f"ircore_queue_role_{QueuedEvent._meta.db_table}_{time.time_ns() % 10**9}"
    table = QueuedEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}"')
        cursor.execute(f'GRANT "{role}" TO CURRENT_USER')
        cursor.execute(f'GRANT INSERT ON "{table}" TO "{role}"')
        cursor.execute(f'GRANT USAGE ON SEQUENCE "{table}_id_seq" TO "{role}"')
    options = connection.settings_dict["OPTIONS"]
    options["assume_role"] = role
    try:
        writer.write([_row(integration, "as the role")])
        assert writer._conn.execute("SELECT current_user").fetchone()[0] == role
    finally:
        del options["assume_role"]
        writer.close()
        with connection.cursor() as cursor:
            cursor.execute(f'REVOKE ALL ON "{table}" FROM "{role}"')
            cursor.execute(f'REVOKE ALL ON SEQUENCE "{table}_id_seq" FROM "{role}"')
            cursor.execute(f'DROP ROLE "{role}"')
    assert QueuedEvent.objects.filter(event="as the role").count() == 1


def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone(
    service_a, make_integration, writer
):
    integration = make_integration(service_a, "generic")
    writer.write([_row(integration, "parent before")])
    backend = writer.backend_pid()
    child = os.fork()
    if child == 0:  # the child: write through the inherited writer, then leave at once
        try:
            writer.write([_row(integration, "child")])
            ok = writer.backend_pid() not in (None, backend)
            writer.close()
        except BaseException:  # noqa: BLE001 - reported by the exit status
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    writer.write([_row(integration, "parent after")])  # its session was not ended by the child
    assert writer.backend_pid() == backend
    assert sorted(QueuedEvent.objects.values_list("event", flat=True)) == ["child", "parent after",
                                                                          "parent before"]
