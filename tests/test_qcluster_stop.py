"""``manage.py qcluster`` (ircore's, around django-q2's) as process managers stop it: a
SIGTERM to its whole process group (honcho's killpg, a terminal's Ctrl-C) stops the cluster
in order within seconds, and a supervisor killed outright takes the cluster with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ircore.testing import process_children, session_processes

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def worker_env(tmp_path_factory):
    var = tmp_path_factory.mktemp("qcluster")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{var / 'db.sqlite3'}", "IRCORE_LOCAL_RUN": "1",
           "IRCORE_VAR_DIR": str(var), "Q_WORKERS": "2", "LOG_LEVEL": "INFO"}
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True,
                   timeout=300)
    return env, var


def start_cluster(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    """``manage.py qcluster`` in a process group of its own, as honcho starts it, once
    running; returns it and the pid of the cluster it supervises."""
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while b"running." not in log.read_bytes():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    (cluster,) = process_children(proc.pid)
    return proc, cluster


def gone(sid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while session_processes(sid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_sigterm_to_the_process_group_stops_the_cluster_in_order(worker_env):
    env, var = worker_env
    log = var / "stop.log"
    proc, cluster = start_cluster(env, log)
    try:
        assert len(session_processes(cluster)) >= 5  # cluster, sentinel, 2 workers, pusher, monitor
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
        assert time.monotonic() - started < 10
        text = log.read_text()
        assert "stopped doing work" in text and "has stopped." in text, text
        assert gone(cluster, 5), session_processes(cluster)
    finally:
        for pid in session_processes(cluster):
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_killed_supervisor_takes_the_cluster_down(worker_env):
    env, var = worker_env
    log = var / "kill.log"
    proc, cluster = start_cluster(env, log)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert gone(cluster, 20), session_processes(cluster)
        assert "has stopped." in log.read_text()  # SIGTERM from the kernel: an orderly stop
    finally:
        for pid in session_processes(cluster):
            os.kill(pid, signal.SIGKILL)
