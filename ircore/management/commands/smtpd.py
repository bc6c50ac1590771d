"""``manage.py smtpd``: the built-in SMTP listener for inbound email (replies to
notifications, email integrations). See ircore.smtp_server."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from ircore.smtp_server import controller_build


class Command(BaseCommand):
    help = "Receive email for the inbound domain over SMTP (stores it and enqueues its processing)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=None, help="Address to listen on (INBOUND_SMTP_HOST).")
        parser.add_argument("--port", type=int, default=None, help="Port (INBOUND_SMTP_PORT).")

    def handle(self, *args: Any, **options: Any) -> None:
        controller = controller_build(host=options["host"], port=options["port"])
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        controller.start()
        self.stdout.write(
            f"smtpd: listening on {controller.hostname}:{controller.port} for "
            f"*@{settings.INBOUND_EMAIL_DOMAIN} (max {controller.SMTP_kwargs['data_size_limit']} bytes)",
        )
        self.stdout.flush()
        try:
            stop.wait()
        finally:
            controller.stop()
