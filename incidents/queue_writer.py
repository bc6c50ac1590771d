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

from incidents.queue_sql import Row, pg_insert_sql, pg_param, pg_result_check


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

    def send(self, rows: Sequence[Row]) -> None:
        with connections[self.alias].wrap_database_errors:
            try:
                pgconn = self._pgconn()
                params = [pg_param(value) for row in rows for value in row]
                if self._conn.prepare_threshold is None:
                    pgconn.send_query_params(pg_insert_sql(len(rows), len(rows[0])), params)
                else:
                    pgconn.send_query_prepared(self._prepared_name(pgconn, len(rows), len(rows[0])), params)
            except psycopg.Error:  # libpq could not send (or connect): the connection is gone
                self.close()
                raise

    def receive(self) -> None:
        """Wait for the statement's outcome; raise its error, if any."""
        with connections[self.alias].wrap_database_errors:
            try:
                pgconn = self._conn.pgconn
                waiting = select.poll()
                waiting.register(pgconn.socket, select.POLLIN)
                pgconn.consume_input()
                while pgconn.is_busy():
                    waiting.poll()
                    pgconn.consume_input()
                refused = None
                while (result := pgconn.get_result()) is not None:  # read to the end, then judge
                    if refused is None and result.status != pq.ExecStatus.COMMAND_OK:
                        refused = result
            except psycopg.Error:  # the connection broke while waiting
                self.close()
                raise
            if refused is not None:
                if pgconn.status != pq.ConnStatus.OK:
                    self.close()
                pg_result_check(refused)

    def write(self, rows: Sequence[Row]) -> None:
        self.send(rows)
        self.receive()

    def close(self) -> None:
        """Close the connection (when nothing is in flight: a test's end, a shutdown)."""
        conn, self._conn, self._prepared = self._conn, None, {}
        if conn is not None and self._pid == os.getpid():
            conn.close()

    def backend_pid(self) -> int | None:
        return self._conn.pgconn.backend_pid if self._conn is not None else None

    def _pgconn(self) -> pq.abc.PGconn:
        if self._conn is not None and (self._pid != os.getpid() or self._conn.closed):
            # Inherited across a fork (never shared: psycopg does not end the parent's session
            # when a child drops it), or closed.
            self._conn = None
        if self._conn is not None and self._ended_by_server():
            self.close()  # a new connection now, rather than a 503 for the next statement
        if self._conn is None:
            self._conn = psycopg.connect(**connection_params(self.alias), autocommit=True)
            self._pid, self._prepared = os.getpid(), {}
            if role := connections[self.alias].settings_dict["OPTIONS"].get("assume_role"):  # as Django's
                self._conn.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role)))
        return self._conn.pgconn

    def _ended_by_server(self) -> bool:
        """Whether the server ended this idle connection (a restart, pg_terminate_backend, an
        idle timeout): between statements nothing is left to read, so anything readable is
        its goodbye (or, rarely, a notice: a new connection costs no more than that). One poll."""
        try:
            readable = select.poll()
            readable.register(self._conn.pgconn.socket, select.POLLIN)
            return bool(readable.poll(0))
        except psycopg.Error:  # libpq already knows it is gone
            return True

    def _prepared_name(self, pgconn: pq.abc.PGconn, count: int, width: int) -> bytes:
        name = self._prepared.get(count)
        if name is None:
            name = f"ircore_queue_insert_{count}".encode()
            pg_result_check(pgconn.prepare(name, pg_insert_sql(count, width)))
            self._prepared[count] = name
        return name
