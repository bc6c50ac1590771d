"""Everything `make run` does before starting the processes, in one Python process
(each separate manage.py call would pay Django's start-up again): migrate, collect
static files, create the admin user and the demo data, print the welcome banner."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Prepare a local install: migrate, collectstatic, demo data (idempotent), welcome banner."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-demo", action="store_true",
                            help="Only the local admin user, no demo teams, services or integrations.")

    def handle(self, *args: Any, no_demo: bool = False, **options: Any) -> None:
        common = {"stdout": self.stdout, "stderr": self.stderr}
        call_command("migrate", interactive=False, verbosity=1, **common)
        call_command("collectstatic", interactive=False, verbosity=0, **common)
        call_command("ircore_demo", admin_only=no_demo, **common)
        call_command("ircore_welcome", **common)
