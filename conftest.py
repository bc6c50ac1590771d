"""Shared fixtures: personas (DESIGN.md §5) and the objects most tests need.

Personas: ``responder`` and ``secondary`` (responders in team A), ``manager``
(manager of team A), ``outsider`` (manager of team B), ``admin_user`` (superuser).
"""

from __future__ import annotations

import logging
import shutil
import socket
from pathlib import Path

import pytest
from django.db import connections

from ircore.testing import SmtpCollector, free_loopback_port, redis_server_start


@pytest.fixture(autouse=True)
def _postgres_tests_need_postgresql(request):
    """Tests marked ``postgres`` skip, before their database fixtures, unless the test
    database is PostgreSQL (in CI's PostgreSQL run a skip of them is a failure)."""
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if request.node.get_closest_marker("postgres") and "postgresql" not in engine:
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")


@pytest.fixture(autouse=True)
def _queue_writer_closed():
    """The ingestion group commit keeps its own PostgreSQL connection per process: close it
    after each test, so no session outlives the test database (which is dropped at the
    end) and no test inherits another's."""
    yield
    from incidents.queue_insert import group_commit

    group_commit.close()


def _user(django_user_model, username: str, **extra):
    return django_user_model.objects.create_user(
        username=username, email=f"{username}@example.com", password="pw-" + username,
        first_name=username.capitalize(), is_staff=True, **extra,
    )


@pytest.fixture
def team_a(db):
    from ircore.models import Team

    return Team.objects.create(name="Payments", slug="payments")


@pytest.fixture
def team_b(db):
    from ircore.models import Team

    return Team.objects.create(name="Search", slug="search")


@pytest.fixture
def responder(django_user_model, team_a):
    user = _user(django_user_model, "rita")
    team_a.memberships.create(user=user, role="responder")
    return user


@pytest.fixture
def secondary(django_user_model, team_a):
    user = _user(django_user_model, "sam")
    team_a.memberships.create(user=user, role="responder")
    return user


@pytest.fixture
def manager(django_user_model, team_a):
    user = _user(django_user_model, "maya")
    team_a.memberships.create(user=user, role="manager")
    return user


@pytest.fixture
def outsider(django_user_model, team_b):
    user = _user(django_user_model, "otto")
    team_b.memberships.create(user=user, role="manager")
    return user


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser(
        username="root", email="root@example.com", password="pw-root"
    )


@pytest.fixture
def service_a(team_a):
    from incidents.models import Service

    return Service.objects.create(team=team_a, name="payments-api")


@pytest.fixture
def service_b(team_b):
    from incidents.models import Service

    return Service.objects.create(team=team_b, name="search-api")


@pytest.fixture
def make_integration():
    def make(service, kind: str = "generic", **extra):
        from incidents.models import Integration

        return Integration.objects.create(service=service, kind=kind, name=f"{kind} in", **extra)

    return make


class RedisServer:
    """A throwaway redis-server (Debian package redis-server) on a free loopback port,
    which a test can stop and start again on the same port (an outage and its end)."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_loopback_port()
        self.proc, self.url = redis_server_start(binary, port=self.port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def start(self) -> None:
        self.proc, _ = redis_server_start(self.binary, port=self.port)


@pytest.fixture
def redis_server():
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server (Debian package redis-server)")
    server = RedisServer(binary)
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """The URL of a throwaway redis-server (``redis_server``)."""
    return redis_server.url


@pytest.fixture
def use_broker(monkeypatch):
    """Point django-q2 at a Redis broker, as settings.Q_CLUSTER does with REDIS_URL:
    Conf reads Q_CLUSTER once at import ("redis": url, no "orm"), and get_broker() reads
    Conf on every async_task, so setting Conf is what a REDIS_URL process runs with.
    The process's broker-outage state (ircore.tasks) starts and ends fresh, and the
    broker is tried on every call (tests turn it off and on at once; the circuit
    breaker's own test sets its period)."""
    from django_q.conf import Conf

    from ircore import tasks

    monkeypatch.setattr(tasks.outage, "retry_seconds", 0.0)

    def use(url: str) -> None:
        monkeypatch.setattr(Conf, "ORM", None)
        monkeypatch.setattr(Conf, "REDIS", url)
        monkeypatch.setattr(Conf, "SYNC", False)

    tasks.outage.down = False
    yield use
    tasks.outage.down = False


@pytest.fixture
def redis_cache_fresh(caplog):
    """ircore.cache's outage state (per process and Redis location: a breaker and its
    local fallback cache) starts and ends empty, so no test sees another's outage; its
    log is captured from INFO."""
    from ircore import cache as resilient

    def reset() -> None:
        for breaker in resilient._breakers.values():
            breaker.fallback.clear()
        resilient._breakers.clear()

    caplog.set_level(logging.INFO, logger="ircore.cache")
    reset()
    yield
    reset()


@pytest.fixture
def redis_blackhole():
    """A loopback port that accepts TCP connections (the kernel's backlog) and never
    answers, like a Redis behind a dropped route or hung: each attempt costs the client
    its socket timeout. Yields its redis:// URL and a function counting the connection
    attempts since the last call."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(100)
    listener.setblocking(False)

    def attempts() -> int:
        count = 0
        while True:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0", attempts
    listener.close()


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser(monkeypatch):
    """Debian's headless chromium driven by Playwright, for the tests marked ``external``."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the [test] extra)")
    # Playwright's sync API runs an event loop in this thread, which trips Django's
    # async-safety check on the test's own (synchronous, safe) ORM calls. Only for the
    # life of the browser.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )
        try:
            yield chromium
        finally:
            chromium.close()
            # Inside Playwright's sync API the test runs in another context, where Django's
            # connection handler (context-local) opened connections of its own; closed
            # here, or they outlive the test and PostgreSQL refuses to drop the test
            # database at the end of the run ("being accessed by other users").
            connections.close_all()


@pytest.fixture
def smtp_server(settings):
    """A real (aiosmtpd) SMTP server; Django sends to it. ``.messages``: (from, rcpts, raw)."""
    from aiosmtpd.controller import Controller

    collector = SmtpCollector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_loopback_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield collector
    controller.stop()
