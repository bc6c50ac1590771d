"""``manage.py alerts_apply``: apply every queued alert event now and exit. The clock
does this continuously; this is for scripts, a one-off catch-up, or checking that the
queue is empty."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from incidents.alert_queue import queue_drain
from incidents.models import QueuedEvent


class Command(BaseCommand):
    help = "Apply all queued alert events (what the clock's applier does continuously) and exit."

    def handle(self, *args: Any, **options: Any) -> None:
        applied = queue_drain()
        stuck = QueuedEvent.objects.exclude(error="").count()
        self.stdout.write(f"applied {applied} queued event(s); {QueuedEvent.objects.count()} left")
        if stuck:
            self.stderr.write(f"{stuck} queued event(s) could not be applied nor kept as failed alerts; "
                              "see Console -> Queued events (superusers), or incidents_queuedevent.error")
