"""Group commit for the alert queue's INSERTs.

An ingestion request's only database work is one INSERT and its commit, and the commit
waits for the disk (an fsync, ~2 ms on ordinary storage). When several requests of one
web process (gunicorn threads) store events at the same time, one of them, the leader,
writes the rows of all of them in one multi-row INSERT and one commit, while the others
wait for the outcome of their rows; whoever arrives during that commit is in the next
one. Each request still answers only after its own rows are committed, so "stored
before the 2xx" holds, at a fraction of the round trips, statements and disk flushes.

On PostgreSQL the statements go over the process's own connection
(``incidents.queue_writer``), and the leader that reads one statement's outcome sends the
next one at once, before it wakes anyone: the database is not left idle while the next
leader's thread waits for a CPU and the interpreter lock (0.5-0.6 ms under load,
bench/PERFORMANCE.md), only to send what was already waiting. Still one statement in
flight per process: PostgreSQL flushes one commit at a time.

With one request at a time (sync workers, a quiet system) the leader writes just its
own rows: no extra work. Inside a transaction (a test, a caller's atomic block) rows are
written directly, as part of it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections

from incidents.queue_sql import Row, insert_sql
from incidents.queue_writer import QueueWriter


def rows_write(rows: Sequence[Row]) -> None:
    """One INSERT of ``rows`` on this thread's connection (its own commit in autocommit)."""
    db = connections[DEFAULT_DB_ALIAS]
    adapt = db.ops.adapt_datetimefield_value  # received_at, as the database's backend takes it
    with db.cursor() as cursor:
        cursor.execute(insert_sql(len(rows), len(rows[0])),
                       [adapt(value) if type(value) is datetime else value for row in rows for value in row])


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
    switch and a wait for the interpreter lock.

    On PostgreSQL the leader also sends that next statement before handing over, so the
    new leader only waits for its outcome. Only the leader of the moment uses the writer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[_Slot] = deque()
        self._leading = False
        # Rows per statement: bounded, so one statement stays far below PostgreSQL's and
        # SQLite's parameter limits.
        self.max_rows = 200
        self._writer = QueueWriter()
        self._in_flight: list[_Slot] | None = None  # sent, outcome not read yet

    def insert(self, rows: Sequence[Row]) -> None:
        """Return once ``rows`` are committed; raise what storing them raised."""
        db = connections[DEFAULT_DB_ALIAS]
        if db.in_atomic_block:
            rows_write(rows)
            return
        lead: Callable[[_Slot], None] = self._lead_sent if db.vendor == "postgresql" else self._lead
        slot = _Slot(rows)
        with self._lock:
            self._pending.append(slot)
            leader = not self._leading
            self._leading = True
        if not leader:
            slot.wait()
        if not slot.done:
            lead(slot)
        if slot.error is not None:
            raise slot.error

    def close(self) -> None:
        """Close the process's writer connection (a later statement opens a new one)."""
        with self._lock:
            self._writer.close()

    def _lead(self, own: _Slot) -> None:
        # ``own`` heads the queue: a new leader found it empty, a successor was its head.
        with self._lock:
            batch = self._take()
        errors = _outcomes(batch, lambda: rows_write([row for s in batch for row in s.rows]), rows_write)
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

    def _lead_sent(self, own: _Slot) -> None:
        # ``own`` heads the statement in flight (a successor) or the queue (a new leader,
        # who found nothing in flight and nobody waiting).
        finished: list[_Slot] = []
        with self._lock:
            if self._in_flight is None:
                finished += self._send_next()
            batch = self._in_flight
        if batch is not None:
            errors = _outcomes(batch, self._writer.receive, self._writer.write)
            for s in batch:
                s.done, s.error = True, errors.get(id(s))
            finished += batch
        with self._lock:
            self._in_flight = None
            while self._pending and self._in_flight is None:
                finished += self._send_next()
            successor = self._in_flight[0] if self._in_flight else None
            if successor is None:
                self._leading = False
        if successor is not None:
            successor.wake()  # first: it waits for a statement already on its way
        for s in finished:
            if s is not own:
                s.wake()

    def _send_next(self) -> list[_Slot]:
        """Under the lock: send the next statement; the requests it could not be sent for."""
        batch = self._take()
        try:
            self._writer.send([row for s in batch for row in s.rows])
        except BaseException as exc:  # the database is unreachable (or a bug): these learn it
            for s in batch:
                s.done, s.error = True, exc
            return batch
        self._in_flight = batch
        return []

    def _take(self) -> list[_Slot]:
        batch, count = [], 0
        while self._pending and (not batch or count + len(self._pending[0].rows) <= self.max_rows):
            slot = self._pending.popleft()
            batch.append(slot)
            count += len(slot.rows)
        return batch


def _outcomes(batch: list[_Slot], statement: Callable[[], None],
              write_alone: Callable[[Sequence[Row]], None]) -> dict[int, BaseException]:
    """Run ``statement`` (the batch's write, or the wait for its outcome); what each request
    of the batch learns from it, by ``id`` of its slot (none: stored)."""
    try:
        statement()
        return {}
    except (OperationalError, InterfaceError) as exc:
        return {id(s): exc for s in batch}  # the database is unreachable: everyone's 503
    except DatabaseError as exc:
        if len(batch) == 1:
            return {id(batch[0]): exc}
    except BaseException as exc:  # a bug or an interrupt: every row of the batch learns it
        return {id(s): exc for s in batch}
    # The database refused one request's rows: write each request's rows alone, so only
    # the request that sent them is refused.
    errors: dict[int, BaseException] = {}
    for s in batch:
        try:
            write_alone(s.rows)
        except DatabaseError as exc:
            errors[id(s)] = exc
    return errors

group_commit = GroupCommit()
