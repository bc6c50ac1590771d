"""The queue INSERT's statement and parameters, shared by the two ways rows are written
(``incidents.queue_insert.rows_write`` on the request's connection, and
``incidents.queue_writer.QueueWriter`` on a process's own)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from psycopg import errors as psycopg_errors
from psycopg import pq

from incidents.models import QueuedEvent

# (integration_id, service_id, event JSON, payload JSON, received_at (an aware datetime,
# adapted by whichever way writes it), then endpoint_route.Triaged: triaged_service_id,
# _key, _severity, _priority)
Row = tuple

COLUMNS = ("(integration_id, service_id, event, payload, received_at, triaged_service_id, triaged_key, "
           "triaged_severity, triaged_priority, error)")


def insert_sql(count: int, width: int) -> str:
    """``INSERT ... VALUES`` of ``count`` rows with %s placeholders (Django's cursor)."""
    return _insert(count, width, lambda n: "%s")


def pg_insert_sql(count: int, width: int) -> bytes:
    """The same with libpq's $n placeholders."""
    return _insert(count, width, lambda n: f"${n}").encode()


def _insert(count: int, width: int, placeholder: Callable[[int], str]) -> str:
    values = ", ".join(
        "(" + ", ".join(placeholder(r * width + c + 1) for c in range(width)) + ", '')" for r in range(count)
    )
    return f"INSERT INTO {QueuedEvent._meta.db_table} {COLUMNS} VALUES {values}"


def pg_params(rows: Sequence[Row]) -> list[bytes | None]:
    """Every value of ``rows`` as libpq's text format (one expression, no call per value:
    this runs for every event)."""
    return [
        None if value is None else (value.isoformat() if type(value) is datetime else str(value)).encode()
        for row in rows for value in row
    ]


def pg_result_check(result: pq.abc.PGresult) -> None:
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise psycopg_errors.error_from_result(result, encoding="utf-8")
