"""A web process's own PostgreSQL connection for the alert queue's INSERTs, used by the
group commit (``incidents.queue_insert``) one statement at a time.

Its own connection, rather than the request thread's, because a statement is sent by
one thread and its outcome read by another: the leader that has just read a statement's
outcome sends the next one at once, and the request heading it is woken only to wait
for that outcome (see ``GroupCommit``). The statement goes to libpq directly, prepared
once per row count, unless prepared statements are turned off (DATABASE_URL
``?prepare_threshold=none``, for pgbouncer in transaction mode). Waiting for an outcome
holds no interpreter lock. A connection the server ended while it was idle (a restart) is
noticed before the next statement and replaced, so no event is refused for it; one lost
while a statement was on its way fails that statement's requests (503: its outcome is
unknown, and the senders retry).
"""

from __future__ import annotations

import os
import select
from collections.abc import Sequence

import psycopg
import psycopg.sql
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg import pq

from incidents.queue_sql import Row, pg_insert_sql, pg_params, pg_result_check


class _Process:
    """This process's id, kept up to date across forks (``os.getpid`` is a system call,
    and the writer checks it before every statement)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self.pid = os.getpid()


_process = _Process()


def connection_params(alias: str = DEFAULT_DB_ALIAS) -> dict:
    """Django's settings for ``alias`` as ``psycopg.connect`` takes them (its cursor class is
    Django's own concern)."""
    params = connections[alias].get_connection_params()
    params.pop("cursor_factory", None)
    return params


class QueueWriter:
    """At most one statement in flight: ``send`` it, then ``receive`` its outcome (which
    raises the database's error as Django's). A broken connection is dropped and the next
    ``send`` opens a new one."""

    def __init__(self, alias: str = DEFAULT_DB_ALIAS) -> None:
        self.alias = alias
        self._conn: psycopg.Connection | None = None
        self._pid = 0
        self._prepared: dict[int, bytes] = {}
        self._readable = select.poll()  # the connection's socket, once there is one

    def send(self, rows: Sequence[Row]) -> None:
        try:
            pgconn = self._pgconn()
            params = pg_params(rows)
            if self._conn.prepare_threshold is None:
                pgconn.send_query_params(pg_insert_sql(len(rows), len(rows[0])), params)
            else:
                pgconn.send_query_prepared(self._prepared_name(pgconn, len(rows), len(rows[0])), params)
        except psycopg.Error as exc:  # libpq could not send (or connect): the connection is gone
            self.close()
            self._raise_as_django(exc)

    def receive(self) -> None:
        """Wait for the statement's outcome; raise its error, if any."""
        pgconn = self._conn.pgconn
        try:
            pgconn.consume_input()
            while pgconn.is_busy():
                self._readable.poll()
                pgconn.consume_input()
            refused = None
            while (result := pgconn.get_result()) is not None:  # read to the end, then judge
                if refused is None and result.status != pq.ExecStatus.COMMAND_OK:
                    refused = result
            if refused is not None:
                pg_result_check(refused)
        except psycopg.Error as exc:
            if pgconn.status != pq.ConnStatus.OK:  # broken while waiting, not a refused row
                self.close()
            self._raise_as_django(exc)

    def _raise_as_django(self, exc: psycopg.Error) -> None:
        """Raise ``exc`` as Django's exception of the same kind (IntegrityError,
        OperationalError...), as the request's own cursor would have. Only on failure:
        entering Django's wrapper costs a look-up of the thread's connection."""
        with connections[self.alias].wrap_database_errors:
            raise exc

    def write(self, rows: Sequence[Row]) -> None:
        self.send(rows)
        self.receive()

    def close(self) -> None:
        """Close the connection (when nothing is in flight: a test's end, a shutdown)."""
        conn, self._conn, self._prepared = self._conn, None, {}
        if conn is not None and self._pid == _process.pid:
            conn.close()

    def backend_pid(self) -> int | None:
        return self._conn.pgconn.backend_pid if self._conn is not None else None

    def _pgconn(self) -> pq.abc.PGconn:
        if self._conn is not None and (self._pid != _process.pid or self._conn.closed):
            # Inherited across a fork (never shared: psycopg does not end the parent's session
            # when a child drops it), or closed.
            self._conn = None
        if self._conn is not None and self._readable.poll(0):
            # Between statements nothing is left to read, so anything readable is the server
            # ending this idle connection (a restart, pg_terminate_backend, an idle timeout)
            # or, rarely, a notice: either way a new connection now, rather than a 503 for
            # the next statement.
            self.close()
        if self._conn is None:
            conn = psycopg.connect(**connection_params(self.alias), autocommit=True)
            if role := connections[self.alias].settings_dict["OPTIONS"].get("assume_role"):  # as Django's
                try:
                    conn.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role)))
                except BaseException:
                    conn.close()
                    raise
            self._readable = select.poll()
            self._readable.register(conn.pgconn.socket, select.POLLIN)
            self._conn, self._pid, self._prepared = conn, _process.pid, {}
        return self._conn.pgconn

    def _prepared_name(self, pgconn: pq.abc.PGconn, count: int, width: int) -> bytes:
        name = self._prepared.get(count)
        if name is None:
            name = f"ircore_queue_insert_{count}".encode()
            pg_result_check(pgconn.prepare(name, pg_insert_sql(count, width)))
            self._prepared[count] = name
        return name
