"""``manage.py clock``: every second, run the registered clock jobs (due escalation
steps, notification retries, ack timeouts, auto-resolve, heartbeats), and keep the
registered loops running (the alert queue's applier, which turns accepted events into
alerts). Safe to run several on PostgreSQL."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from ircore.clock import clock_run, clock_tick


class Command(BaseCommand):
    help = ("Run the clock: applies queued alert events and hands due work (escalations, timeouts, "
            "heartbeats) to the task queue.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="Run every job once and exit.")
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between ticks (default 1).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            for name, count in sorted(clock_tick(force=True).items()):
                self.stdout.write(f"{name}: {count}")
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        clock_run(interval=options["interval"], stop=stop)
