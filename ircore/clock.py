"""The clock's registry: apps register periodic jobs in their AppConfig.ready();
``manage.py clock`` runs them. ircore never imports the apps (DESIGN.md §1).

A job is ``func(now) -> int`` (how much work it handed on). Jobs must be safe to run
from several clocks at once: they claim rows with SELECT ... FOR UPDATE SKIP LOCKED
(PostgreSQL) or under SQLite's single-writer lock, and hand the work to tasks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import close_old_connections
from django.utils import timezone

log = logging.getLogger("ircore.clock")


@dataclass
class Job:
    name: str
    func: Callable[[datetime], int]
    every: float = 1.0
    last_run: float = field(default=0.0)


_jobs: dict[str, Job] = {}
# Loops that run for as long as the clock does, each in its own thread (the alert
# queue's applier): ``func(stop)`` returns once ``stop`` is set.
_loops: dict[str, Callable[[threading.Event], None]] = {}


def clock_loop_register(name: str, func: Callable[[threading.Event], None]) -> None:
    _loops[name] = func


def clock_job_register(name: str, func: Callable[[datetime], int], *, every: float = 1.0) -> None:
    """Register (or replace) a job by name; ``every`` is its period in seconds."""
    _jobs[name] = Job(name=name, func=func, every=every)


def clock_jobs() -> list[Job]:
    return list(_jobs.values())


def clock_tick(*, now: datetime | None = None, force: bool = False) -> dict[str, int]:
    """Run every job whose period has passed (all of them with ``force``). A failing
    job is logged and does not stop the others."""
    results: dict[str, int] = {}
    mono = time.monotonic()
    for job in list(_jobs.values()):
        if not force and mono - job.last_run < job.every:
            continue
        job.last_run = mono
        try:
            results[job.name] = job.func(now or timezone.now())
        except Exception:
            log.exception("clock job %s failed", job.name)
            results[job.name] = -1
    return results


def clock_run(*, interval: float = 1.0, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    log.info("clock started with jobs: %s; loops: %s", ", ".join(sorted(_jobs)) or "(none)",
             ", ".join(sorted(_loops)) or "(none)")
    threads = [threading.Thread(target=func, args=(stop,), name=f"clock-{name}", daemon=True)
               for name, func in _loops.items()]
    for thread in threads:
        thread.start()
    while not stop.is_set():
        started = time.monotonic()
        close_old_connections()  # a dropped database connection must not stop the loop
        results = clock_tick()
        busy = {k: v for k, v in results.items() if v}
        if busy:
            log.info("clock: %s", ", ".join(f"{k}={v}" for k, v in sorted(busy.items())))
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
    for thread in threads:
        thread.join(timeout=30)
