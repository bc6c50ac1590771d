"""Escalation tests: a frozen, movable clock; django-q2 tasks run in-process; on-commit
callbacks (signals, task enqueues) run as they would after a real commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

# A Monday, 10:00 UTC (business hours).
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self, traveller, capture):
        self._traveller = traveller
        self._capture = capture
        self.now = START

    def run(self, func, *args, **kwargs):
        """Call ``func`` as a request would: its on-commit work runs afterwards."""
        with self._capture(execute=True):
            return func(*args, **kwargs)

    def advance(self, minutes: float = 0, seconds: float = 0) -> dict[str, int]:
        """Move time forward and let the clock hand out and run what is due."""
        self.now += timedelta(minutes=minutes, seconds=seconds)
        self._traveller.move_to(self.now)
        return self.tick()

    def tick(self) -> dict[str, int]:
        from ircore.clock import clock_tick

        with self._capture(execute=True):
            return clock_tick(force=True)


@pytest.fixture
def clock(db, django_capture_on_commit_callbacks, monkeypatch, settings):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ONCALL_WEBHOOK_ALLOW_PRIVATE = True
    with time_machine.travel(START, tick=False) as traveller:
        yield Clock(traveller, django_capture_on_commit_callbacks)


@pytest.fixture
def chain(team_a, responder, secondary):
    """Default chain of team A: rita at once, sam after 5 min."""
    from oncall.models import EscalationChain, EscalationStep

    chain = EscalationChain.objects.create(team=team_a, name="Default", is_default=True)
    step1 = EscalationStep.objects.create(chain=chain, position=0, delay_minutes=5)
    step1.users.set([responder])
    step2 = EscalationStep.objects.create(chain=chain, position=1, delay_minutes=5)
    step2.users.set([secondary])
    return chain


@pytest.fixture
def trigger(clock, service_a, make_integration):
    """Send an alert through the real pipeline; returns the incident."""
    from incidents.events import AlertEvent
    from incidents.services import alert_ingest

    integration = make_integration(service_a)

    def send(summary: str = "Database down", severity: str = "SEV1", key: str = ""):
        result = clock.run(
            alert_ingest, integration=integration,
            event=AlertEvent(summary=summary, severity=severity, dedup_key=key or summary),
        )
        result.incident.refresh_from_db()
        return result.incident

    return send


@pytest.fixture
def webhook_server():
    """A real local HTTP server that records what it receives; ``fail`` answers 500."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict] = []
    state = {"fail": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's hook name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path.endswith("/gone"):
                self.send_response(410)
                self.end_headers()
                return
            if state["fail"]:
                state["fail"] -= 1
                self.send_response(500)
                self.end_headers()
                return
            received.append({"headers": dict(self.headers), "body": body, "json": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received
    server.state = state
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield server
    server.shutdown()
    server.server_close()
