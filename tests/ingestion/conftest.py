"""Fixtures for the ingestion tests: integrations of each kind, a database that is
really unavailable, and a live server (optionally over TLS) for real clients."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.servers.basehttp import WSGIServer
from django.db import connection, connections
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler, _StaticFilesHandler

from incidents.alert_queue import queue_drain
from incidents.ingestion.rate_limit import ingest_limiter
from incidents.models import Alert
from ircore.testing import free_loopback_port


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Rate-limit windows live in the (process-local) cache and in this process's
    # counts; integration ids repeat across tests on a fresh database, so start every
    # test with empty windows.
    cache.clear()
    ingest_limiter.clear()
    yield
    cache.clear()
    ingest_limiter.clear()


@pytest.fixture
def pd_integration(service_a, make_integration):
    return make_integration(service_a, "pagerduty")


@pytest.fixture
def am_integration(service_a, make_integration):
    return make_integration(service_a, "alertmanager")


@pytest.fixture
def grafana_integration(service_a, make_integration):
    return make_integration(service_a, "grafana")


@pytest.fixture
def repeats_added(monkeypatch) -> list[int]:
    """The ids of the queued events that the applier's set-based statement added
    (``incidents.batch_repeats``, PostgreSQL), over the test."""
    from incidents import alert_queue

    ids: list[int] = []
    real = alert_queue.batch_repeats_add

    def spy(limit: int) -> tuple[list[int], list[int]]:
        added, others = real(limit)
        ids.extend(added)
        return added, others

    monkeypatch.setattr(alert_queue, "batch_repeats_add", spy)
    return ids


def post_json(client, url: str, body: Any, *, apply: bool = True, **extra):
    """POST ``body`` as JSON; then, unless ``apply=False``, apply the queue as the
    clock's applier would, so the test can look at alerts and incidents."""
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    response = client.post(url, data, content_type="application/json", **extra)
    if apply:
        queue_drain()
    return response


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together (each with its own database
    connection); return what each returned, or the exception it raised."""
    barrier = threading.Barrier(count, timeout=30)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


@contextlib.contextmanager
def alert_inserts_refused(dedup_key: str, *, message: str, failed_too: bool) -> Iterator[Callable[[], None]]:
    """A real database error for one event: a trigger that aborts inserting an alert with
    ``dedup_key`` (also as a failed alert if ``failed_too``). Yields a function that
    removes the trigger early (the cause fixed)."""
    table, name = Alert._meta.db_table, f"refuse_{dedup_key}"
    condition = f"NEW.dedup_key = '{dedup_key}'" + ("" if failed_too else " AND NEW.outcome <> 'failed'")
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"CREATE TRIGGER {name} BEFORE INSERT ON {table} WHEN {condition} "
                           f"BEGIN SELECT RAISE(ABORT, '{message}'); END")
        else:
            cursor.execute(f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN IF {condition} THEN "
                           f"RAISE EXCEPTION '{message}'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
            cursor.execute(f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW "
                           f"EXECUTE FUNCTION {name}()")
    armed = [True]

    def remove() -> None:
        if not armed[0]:
            return
        armed[0] = False
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute(f"DROP TRIGGER {name}")
            else:
                cursor.execute(f"DROP TRIGGER {name} ON {table}")
                cursor.execute(f"DROP FUNCTION {name}()")

    try:
        yield remove
    finally:
        remove()


# --------------------------------------------------------------------------- outage


@contextlib.contextmanager
def database_unavailable(alias: str = "default") -> Iterator[None]:
    """Swap the connection for one to a database that cannot be reached (a SQLite
    file in a missing directory, or a PostgreSQL port nobody listens on). The test's
    own connection, and its transaction, are kept aside and restored afterwards."""
    original = connections[alias]
    settings_dict = dict(original.settings_dict)
    if original.vendor == "sqlite":
        settings_dict["NAME"] = "/nonexistent-ircore-dir/unreachable.sqlite3"
    else:
        settings_dict["HOST"] = "127.0.0.1"
        settings_dict["PORT"] = str(free_loopback_port())
        settings_dict["OPTIONS"] = {**settings_dict.get("OPTIONS", {}), "connect_timeout": 2}
    broken = original.__class__(settings_dict, alias)
    connections[alias] = broken
    try:
        yield
    finally:
        connections[alias] = original
        with contextlib.suppress(Exception):
            broken.close()


# --------------------------------------------------------------------------- live server


def make_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made with ``cryptography``; returns (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _SerialWSGIServer(WSGIServer):
    """One request at a time: the in-memory SQLite test database is a single shared
    connection, which two request threads must not use at once. Django's handler
    answers ``Connection: close`` on a non-threaded server, so no client can hold it."""

    ssl_context: ssl.SSLContext | None = None

    def __init__(self, *args, connections_override=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Held while a request runs; a test that reads the database while an outside
        # program (Alertmanager) is sending takes it too (see LiveServer.lock).
        self.lock = threading.Lock()

    def process_request(self, request, client_address):
        with self.lock:
            super().process_request(request, client_address)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            sock.settimeout(10)
            sock = self.ssl_context.wrap_socket(sock, server_side=True)
        return sock, addr


class _LiveServerThread(LiveServerThread):
    def __init__(self, *args, ssl_context: ssl.SSLContext | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ssl_context = ssl_context

    def _create_server(self, connections_override=None):
        server = _SerialWSGIServer((self.host, self.port), QuietWSGIRequestHandler,
                                   allow_reuse_address=False)
        server.ssl_context = self.ssl_context
        return server


class LiveServer:
    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        override = {
            conn.alias: conn
            for conn in connections.all()
            if conn.vendor == "sqlite" and conn.is_in_memory_db()
        }
        self.thread = _LiveServerThread("127.0.0.1", _StaticFilesHandler,
                                        connections_override=override, ssl_context=ssl_context)
        self.thread.daemon = True
        self.scheme = "https" if ssl_context else "http"

    def start(self) -> None:
        for conn in self.thread.connections_override.values():
            conn.inc_thread_sharing()
        self.thread.start()
        self.thread.is_ready.wait()
        if self.thread.error:
            raise self.thread.error

    def stop(self) -> None:
        self.thread.terminate()
        for conn in self.thread.connections_override.values():
            conn.dec_thread_sharing()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.thread.port}"

    @property
    def lock(self) -> threading.Lock:
        """Take it to query the database while requests may arrive: the in-memory
        SQLite test database is one connection shared with the server thread."""
        return self.thread.httpd.lock


@pytest.fixture
def live_http_server(transactional_db) -> Iterator[LiveServer]:
    server = LiveServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_https_server(transactional_db, tmp_path) -> Iterator[tuple[LiveServer, Path]]:
    cert, key = make_self_signed_cert(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = LiveServer(context)
    server.start()
    yield server, cert
    server.stop()
