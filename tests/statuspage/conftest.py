"""Status page fixtures: a page of team A with a group and components, and a real
webhook receiver on the loopback interface (the SMTP server is the root conftest's)."""

from __future__ import annotations

import pytest


@pytest.fixture
def page(team_a):
    from statuspage.models import StatusPage

    return StatusPage.objects.create(team=team_a, slug="acme", title="Acme Status", time_zone="Europe/Berlin")


@pytest.fixture
def group(page):
    from statuspage.models import ComponentGroup

    return ComponentGroup.objects.create(page=page, name="Payments", position=1, expanded=True)


@pytest.fixture
def api_component(page, group):
    from statuspage.models import Component

    return Component.objects.create(page=page, group=group, name="Payments API", position=1)


@pytest.fixture
def web_component(page):
    from statuspage.models import Component

    return Component.objects.create(page=page, name="Website", position=0)


@pytest.fixture
def private_page(team_a):
    from statuspage.models import StatusPage

    return StatusPage.objects.create(
        team=team_a, slug="internal", title="Internal Status", visibility="login_only"
    )


@pytest.fixture
def run_tasks_inline(monkeypatch):
    """django-q2's own sync switch: async_task runs the task in-process, as a worker would."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters and rendered pages live in the cache; ids repeat across tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def webhook_server():
    """A real local HTTP server that records what it receives."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            # server.failures[path] = n: the next n POSTs to that path get a 500.
            failing = server.failures.get(self.path, 0) > 0
            server.failures[self.path] = server.failures.get(self.path, 0) - failing
            status = 500 if failing else 204
            received.append(
                {"headers": dict(self.headers), "json": json.loads(body), "path": self.path, "status": status}
            )
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received
    server.failures = {}
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield server
    server.shutdown()
    server.server_close()
