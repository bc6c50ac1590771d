"""pytest plugin, loaded with ``-p ircore.testing`` from pyproject.

1. Marks the test run as a local run before Django settings are imported, so it can use
   a generated key.
2. Required markers: when ``IRCORE_REQUIRE_MARKERS`` is set (comma-separated marker
   names, e.g. ``external,postgres``), a test that carries one of those markers and is
   skipped is reported as a failure instead. CI sets it once it has installed the
   system packages and started PostgreSQL, so a missing binary or a wrong
   ``DATABASE_URL`` cannot turn the tests that matter most into a quiet "skipped".
   A test that also carries an environment marker this run does not provide (say
   ``postgres`` and ``external`` in the SQLite run, which requires only ``external``)
   may still skip: it is required in the run that provides all its environments.

3. Password hashing uses a fast hasher in tests: every persona is a user, and the
   production hasher (PBKDF2, ~1M iterations) would cost most of the suite's time.

The required-marker check runs where the test runs (also in pytest-xdist workers), so the converted
report travels back to the controller like any other failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Generator
from typing import Any

import pytest

os.environ.setdefault("IRCORE_LOCAL_RUN", "1")

ENV_VAR = "IRCORE_REQUIRE_MARKERS"
# Markers that say which environment a test needs (pyproject's marker list).
ENVIRONMENT_MARKERS = frozenset({"postgres", "external"})
_PROPERTY = "ircore_required_skip"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("django"):
        return
    from django.conf import settings

    if settings.configured:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def required_markers() -> set[str]:
    return {name.strip() for name in os.environ.get(ENV_VAR, "").split(",") if name.strip()}


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    # xfail also reports as "skipped" but is an expected failure, not a missing dependency.
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    required = required_markers()
    if not required:
        return
    markers = {marker.name for marker in item.iter_markers()}
    hit = sorted(required & markers)
    if not hit or (markers & ENVIRONMENT_MARKERS) - required:
        return
    reason = _skip_reason(report)
    report.outcome = "failed"
    report.longrepr = (
        f"{item.nodeid} was skipped ({reason}), but it carries the marker(s) {', '.join(hit)} "
        f"which this run requires ({ENV_VAR}={os.environ[ENV_VAR]}). Install or start what it "
        f"needs (see .ci/run) instead of skipping it."
    )
    report.user_properties.append((_PROPERTY, f"{','.join(hit)}: {reason}"))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    required = required_markers()
    if not required:
        return
    skipped_required = []
    for key in ("failed", "error"):
        for report in terminalreporter.stats.get(key, []):
            for name, value in getattr(report, "user_properties", []):
                if name == _PROPERTY:
                    skipped_required.append(f"{report.nodeid} [{value}]")
    if skipped_required:
        terminalreporter.section(f"required tests that were skipped ({ENV_VAR})", sep="=", red=True)
        for line in skipped_required:
            terminalreporter.line(line)


def free_loopback_port() -> int:
    """A loopback port free a moment ago (nothing listens on it once this returns)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable_redis_url() -> str:
    """A Redis URL on a loopback port nothing listens on: every connection is refused."""
    return f"redis://127.0.0.1:{free_loopback_port()}/0"


def redis_server_start(binary: str = "redis-server", port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A throwaway redis-server (no persistence) on a free loopback port (or ``port``, to
    restart one), once it accepts connections, and its URL; for the tests (``redis_url``
    fixture) and the benchmarks."""
    port = port or free_loopback_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


class SmtpCollector:
    """An aiosmtpd handler that keeps every message it receives, as
    ``(mail from, recipients, raw bytes)`` in ``messages`` (the ``smtp_server`` fixture)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _proc_stats() -> Generator[tuple[int, list[str]], None, None]:
    """(pid, the fields of /proc/<pid>/stat after the command name) of every process."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    yield int(entry.name), f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile


def process_children(pid: int) -> list[int]:
    """The pids of the processes whose parent is ``pid`` (Linux /proc)."""
    return [child for child, fields in _proc_stats() if int(fields[1]) == pid]


def session_processes(sid: int) -> list[int]:
    """The pids of the live (not zombie) processes in session ``sid`` (Linux /proc)."""
    return [pid for pid, fields in _proc_stats() if int(fields[3]) == sid and fields[0] != "Z"]
