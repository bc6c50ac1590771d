"""The queue INSERT's PostgreSQL path (incidents.queue_insert._pg_rows_write: libpq
directly, outside a transaction): prepared once per connection and row count, or not at
all with prepared statements turned off; database errors reach callers as Django's; a
connection the server dropped fails one request with 503 and the next one reconnects."""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from incidents.models import QueuedEvent
from incidents.queue_insert import rows_write

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _row(integration, text: str | None) -> tuple:
    service = integration.service_id
    return (integration.pk, service, text, "{}", timezone.now(), service, "k", "SEV3", "P3")


def _prepared_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'ircore_queue_insert_%%'")
        return {name for (name,) in cursor.fetchall()}


def test_rows_are_committed_with_their_values_and_statements_prepared_per_row_count(
    service_a, make_integration
):
    integration = make_integration(service_a, "generic")
    at = timezone.now()
    rows_write([(integration.pk, integration.service_id, '{"n": 1, "text": "café \\" \'"}', '{"p": 2}', at,
                 integration.service_id, "clé \\ \"'", "SEV1", "P2")])
    rows_write([_row(integration, f"row {i}") for i in range(3)])
    rows_write([_row(integration, "again")])
    assert connection.get_autocommit() and not connection.in_atomic_block
    assert _prepared_names() == {"ircore_queue_insert_1", "ircore_queue_insert_3"}
    first = QueuedEvent.objects.order_by("id").first()
    assert first.event == '{"n": 1, "text": "café \\" \'"}' and first.payload == '{"p": 2}'
    assert (first.triaged_service_id, first.triaged_key, first.triaged_severity, first.triaged_priority) == (
        integration.service_id, "clé \\ \"'", "SEV1", "P2")
    assert first.received_at == at and first.error == ""
    assert QueuedEvent.objects.count() == 5

    # Another session (a reconnect) prepares again rather than using a name it lacks.
    connection.close()
    rows_write([_row(integration, "after reconnect")])
    assert _prepared_names() == {"ircore_queue_insert_1"}
    assert QueuedEvent.objects.filter(event="after reconnect").count() == 1


def test_without_prepared_statements_nothing_is_prepared(service_a, make_integration):
    integration = make_integration(service_a, "generic")
    connection.ensure_connection()
    connection.connection.prepare_threshold = None  # DATABASE_URL ?prepare_threshold=none
    try:
        rows_write([_row(integration, "unprepared"), _row(integration, "too")])
        assert _prepared_names() == set()
        assert QueuedEvent.objects.filter(event__in=["unprepared", "too"]).count() == 2
    finally:
        connection.close()


def test_a_refused_row_raises_djangos_error_and_the_connection_stays_usable(
    service_a, make_integration
):
    integration = make_integration(service_a, "generic")
    with pytest.raises(IntegrityError, match="null value"):
        rows_write([_row(integration, "kept out"), _row(integration, None)])  # event is NOT NULL
    assert not QueuedEvent.objects.exists()  # the statement is all or nothing
    rows_write([_row(integration, "next")])
    assert list(QueuedEvent.objects.values_list("event", flat=True)) == ["next"]


def test_a_connection_the_server_dropped_fails_one_request_with_503_then_reconnects(
    client, service_a, make_integration
):
    integration = make_integration(service_a, "generic")
    url = f"/integrations/generic/{integration.token}/"
    assert client.post(url, {"summary": "warm"}, content_type="application/json").status_code == 202
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    params = {k: v for k, v in connection.get_connection_params().items() if k != "cursor_factory"}
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])

    response = client.post(url, {"summary": "lost"}, content_type="application/json")
    assert response.status_code == 503, response.content
    assert "not stored" in response.json()["message"]
    # At the end of a request Django discards a connection that had errors and no longer
    # answers (the test client leaves that step out, so it is done here as a server does).
    close_old_connections()
    assert connection.connection is None
    assert client.post(url, {"summary": "retried"}, content_type="application/json").status_code == 202
    summaries = list(QueuedEvent.objects.values_list("event", flat=True))
    assert any('"retried"' in e for e in summaries) and not any('"lost"' in e for e in summaries)


def test_a_rollback_elsewhere_on_the_connection_does_not_break_ingestion(
    client, service_a, make_integration, team_a
):
    """psycopg answers any ROLLBACK (a savepoint's too) on a connection where it prepared
    statements of its own with DEALLOCATE ALL, which drops our prepared INSERT as well.
    Other requests on the same thread share the connection (the console, the API), so the
    next event must be stored, not answered 503 until the connection is recycled."""
    integration = make_integration(service_a, "generic")
    url = f"/integrations/generic/{integration.token}/"
    assert client.post(url, {"summary": "before"}, content_type="application/json").status_code == 202
    assert _prepared_names() == {"ircore_queue_insert_1"}
    for _ in range(connection.connection.prepare_threshold + 1):  # psycopg prepares one of its own
        assert QueuedEvent.objects.filter(pk__gt=0).count() == 1
    with pytest.raises(RuntimeError), transaction.atomic():
        QueuedEvent.objects.update(error="")
        raise RuntimeError("a request that fails and rolls back")
    assert _prepared_names() == set()  # what psycopg did

    response = client.post(url, {"summary": "after"}, content_type="application/json")
    assert response.status_code == 202, response.content
    assert _prepared_names() == {"ircore_queue_insert_1"}
    events = list(QueuedEvent.objects.order_by("id").values_list("event", flat=True))
    assert len(events) == 2 and '"after"' in events[1]
