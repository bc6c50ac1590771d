from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from statuspage.export import ExportRefused, page_export
from statuspage.models import StatusPage


class Command(BaseCommand):
    help = (
        "Write a complete static copy of a status page (HTML, Atom/RSS feeds, Statuspage v2 JSON) into a "
        "directory; serve it at /status/<slug>/ from any web server or CDN."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The page's slug (as in /status/<slug>/).")
        parser.add_argument("directory", help="Where to write; created if missing.")

    def handle(self, *args: Any, slug: str, directory: str, **options: Any) -> None:
        page = StatusPage.objects.filter(slug=slug).first()
        if page is None:
            known = ", ".join(StatusPage.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"No status page with slug {slug!r} (known: {known}).")
        try:
            files = page_export(page=page, directory=directory)
        except ExportRefused as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"Cannot write to {directory}: {exc}") from None
        self.stdout.write(f"Wrote {len(files)} files for {page.slug!r} to {directory}")
