"""A complete static copy of a public page (HTML, feeds, v2 JSON), to be served by any
web server or CDN at /status/<slug>/, so visitors see the status while ircore is down.

Each file is written to a temporary name and renamed, so a web server never serves a
half-written file while an export runs.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from django.core.serializers.json import DjangoJSONEncoder

from statuspage.feeds import feed_build
from statuspage.json_views import ENDPOINTS, build
from statuspage.models import StatusPage
from statuspage.selectors import published_incidents, published_maintenances
from statuspage.views import render_history_html, render_incident_html, render_page_html


class ExportRefused(Exception):
    pass


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def page_export(*, page: StatusPage, directory: str | os.PathLike) -> list[Path]:
    """Write the page under ``directory`` (its /status/<slug>/ URL space); returns the files."""
    if not page.is_public:
        raise ExportRefused(f"{page.slug!r} is a login-only page: a static copy would make it public.")
    root = Path(directory)
    files: dict[str, str | bytes] = {
        "index.html": render_page_html(page),
        "history/index.html": render_history_html(page),
        "feed.atom": feed_build(page, "atom"),
        "feed.rss": feed_build(page, "rss"),
    }
    for incident in published_incidents(page):
        files[f"incidents/{incident.pk}/index.html"] = render_incident_html(page, incident)
    for maintenance in published_maintenances(page):
        files[f"maintenance/{maintenance.pk}/index.html"] = render_incident_html(page, maintenance)
    for endpoint in ENDPOINTS:
        files[f"api/v2/{endpoint}.json"] = json.dumps(build(page, endpoint), cls=DjangoJSONEncoder)
    written = []
    for relative, content in files.items():
        path = root / relative
        _write(path, content)
        written.append(path)
    return written
