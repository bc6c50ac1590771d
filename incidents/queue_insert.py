"""Group commit for the alert queue's INSERTs.

An ingestion request's only database work is one INSERT and its commit, and the commit
waits for the disk (an fsync, ~2 ms on ordinary storage). When several requests of one
web process (gunicorn threads) store events at the same time, one of them, the leader,
writes the rows of all of them in one multi-row INSERT and one commit, while the others
wait for the outcome of their rows; whoever arrives during that commit is in the next
one. Each request still answers only after its own rows are committed, so "stored
before the 2xx" holds, at a fraction of the round trips, statements and disk flushes.

With one request at a time (sync workers, a quiet system) the leader writes just its
own rows: no extra work. Inside a transaction (a test, a caller's atomic block) rows are
written directly, as part of it.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Sequence
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import errors as psycopg_errors
from psycopg import pq

from incidents.models import QueuedEvent

# (integration_id, service_id, event JSON, payload JSON, received_at adapted for the
# database, then endpoint_route.Triaged: triaged_service_id, _key, _severity, _priority)
Row = tuple

_COLUMNS = ("(integration_id, service_id, event, payload, received_at, triaged_service_id, triaged_key, "
            "triaged_severity, triaged_priority, error)")
_ONE = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, '')"


def rows_write(rows: Sequence[Row]) -> None:
    """One INSERT of ``rows`` on this thread's connection (its own commit in autocommit)."""
    # The connection itself rather than django.db.connection, whose every attribute is a
    # thread-local look-up (a few µs each, eight of them per request on this path).
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql" and not db.in_atomic_block:
        _pg_rows_write(db, rows)
        return
    sql = f"INSERT INTO {QueuedEvent._meta.db_table} {_COLUMNS} VALUES " + ", ".join([_ONE] * len(rows))
    with db.cursor() as cursor:
        cursor.execute(sql, [value for row in rows for value in row])


# PostgreSQL, outside a transaction: the statement goes to libpq directly. It is the whole
# database work of an ingestion request, and Django's cursor plus psycopg's execute cost
# three times libpq's own call (measured in-process: 191 µs of CPU against 56 for the
# same INSERT and commit; under full load the difference was within the benchmark's
# noise, bench/PERFORMANCE.md). The statement is prepared once per
# connection and row count, unless the connection has prepared statements turned off
# (DATABASE_URL ?prepare_threshold=none, for pgbouncer in transaction mode).
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # pgconn -> {rows: name}


def _pg_param(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().encode()
    return str(value).encode()


def _pg_insert_sql(count: int, width: int) -> bytes:
    values = ", ".join(
        "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ", '')" for r in range(count)
    )
    return f"INSERT INTO {QueuedEvent._meta.db_table} {_COLUMNS} VALUES {values}".encode()


def _pg_rows_write(db: BaseDatabaseWrapper, rows: Sequence[Row]) -> None:
    with db.wrap_database_errors:  # psycopg's errors as Django's; a broken connection is marked
        db.ensure_connection()
        pgconn = db.connection.pgconn
        params = [_pg_param(value) for row in rows for value in row]
        if db.connection.prepare_threshold is None:
            _check(pgconn.exec_params(_pg_insert_sql(len(rows), len(rows[0])), params))
            return
        result = pgconn.exec_prepared(_prepared_name(pgconn, len(rows), len(rows[0])), params)
        if result.error_field(pq.DiagnosticField.SQLSTATE) == _NO_SUCH_STATEMENT:
            # Our statement was deallocated behind our back: psycopg sends DEALLOCATE ALL
            # after any ROLLBACK (a savepoint's too) on a connection where it prepared
            # statements of its own, and other requests of this thread use the same
            # connection. Prepare it again; nothing was written.
            _prepared.pop(pgconn, None)
            result = pgconn.exec_prepared(_prepared_name(pgconn, len(rows), len(rows[0])), params)
        _check(result)


_NO_SUCH_STATEMENT = b"26000"  # invalid_sql_statement_name


def _prepared_name(pgconn: pq.abc.PGconn, count: int, width: int) -> bytes:
    """The name of this connection's prepared INSERT of ``count`` rows, preparing it if needed."""
    names = _prepared.setdefault(pgconn, {})
    name = names.get(count)
    if name is None:
        name = f"ircore_queue_insert_{count}".encode()
        _check(pgconn.prepare(name, _pg_insert_sql(count, width)))
        names[count] = name
    return name


def _check(result: pq.abc.PGresult) -> None:
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise psycopg_errors.error_from_result(result, encoding="utf-8")


class _Slot:
    """One request's rows, and how its thread is woken: exactly once, either because its
    rows were written (``done``) or because it is to lead the next statement."""

    __slots__ = ("done", "error", "rows", "_wake")

    def __init__(self, rows: Sequence[Row]) -> None:
        self.rows = rows
        self.done = False
        self.error: BaseException | None = None
        self._wake = threading.Lock()
        self._wake.acquire()

    def wait(self) -> None:
        self._wake.acquire()

    def wake(self) -> None:
        self._wake.release()


class GroupCommit:
    """At most one thread (the leader) writes at a time; requests that arrive meanwhile
    queue up in order. When its statement is committed the leader wakes exactly the
    requests it carried, and hands the lead to the oldest request still waiting (whose
    rows then head the next statement), or lets it lapse when none is. No thread is
    woken only to find it has nothing to do: under load every wake-up is a context
    switch and a wait for the interpreter lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[_Slot] = deque()
        self._leading = False
        # Rows per statement: bounded, so one statement stays far below PostgreSQL's and
        # SQLite's parameter limits.
        self.max_rows = 200

    def insert(self, rows: Sequence[Row]) -> None:
        """Return once ``rows`` are committed; raise what storing them raised."""
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            rows_write(rows)
            return
        slot = _Slot(rows)
        with self._lock:
            self._pending.append(slot)
            lead = not self._leading
            self._leading = True
        if not lead:
            slot.wait()
        if not slot.done:
            self._lead(slot)
        if slot.error is not None:
            raise slot.error

    def _lead(self, own: _Slot) -> None:
        # ``own`` heads the queue: a new leader found it empty, a successor was its head.
        with self._lock:
            batch = self._take()
        try:
            errors = self._write(batch)
        except BaseException as exc:  # a bug or an interrupt: every row of the batch learns it
            errors = {id(s): exc for s in batch}
        for s in batch:
            s.done, s.error = True, errors.get(id(s))
        with self._lock:
            successor = self._pending[0] if self._pending else None
            if successor is None:
                self._leading = False
        if successor is not None:
            successor.wake()  # first: the next commit starts while these requests answer
        for s in batch:
            if s is not own:
                s.wake()

    def _take(self) -> list[_Slot]:
        batch, count = [], 0
        while self._pending and (not batch or count + len(self._pending[0].rows) <= self.max_rows):
            slot = self._pending.popleft()
            batch.append(slot)
            count += len(slot.rows)
        return batch

    @staticmethod
    def _write(batch: list[_Slot]) -> dict[int, BaseException]:
        try:
            rows_write([row for s in batch for row in s.rows])
            return {}
        except (OperationalError, InterfaceError) as exc:
            return {id(s): exc for s in batch}  # the database is unreachable: everyone's 503
        except DatabaseError:
            if len(batch) == 1:
                raise
        # The database refused one request's rows: write each request's rows alone, so
        # only the request that sent them is refused.
        errors: dict[int, BaseException] = {}
        for s in batch:
            try:
                rows_write(s.rows)
            except DatabaseError as exc:
                errors[id(s)] = exc
        return errors


group_commit = GroupCommit()
