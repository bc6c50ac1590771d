"""A throwaway PostgreSQL cluster for the benchmarks: initdb into a temp dir as the
``postgres`` user, listen on a free loopback port, remove everything on stop.

Settings are PostgreSQL's defaults (fsync and synchronous_commit on) apart from a
larger shared_buffers, so the figures are those of a durable server, not a tuned toy.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ircore.testing import free_loopback_port, process_children

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def _ensure_installed() -> None:
    if (PG_BIN / "initdb").exists():
        return
    print("PostgreSQL not found; installing it with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-q", "postgresql-15"], check=False, env=env)
    if not (PG_BIN / "initdb").exists():
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql-15"], check=True, env=env)


class Cluster:
    def __init__(self) -> None:
        _ensure_installed()
        self.root = Path(tempfile.mkdtemp(prefix="ircore-bench-pg-"))
        self.data = self.root / "data"
        self.port = free_loopback_port()
        self.user = "postgres"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust",
                  "-E", "UTF8", "--no-locale")
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60",
            "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                  "-c shared_buffers=512MB -c max_connections=200 -c work_mem=16MB "
                  "-c maintenance_work_mem=256MB -c max_wal_size=4GB",
            "start",
        )

    def _run(self, *cmd: str) -> None:
        if self._as_root:
            cmd = ("runuser", "-u", "postgres", "--", *cmd)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd="/")

    def url(self, dbname: str) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def createdb(self, dbname: str) -> str:
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, dbname)
        return self.url(dbname)

    def stop(self) -> None:
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        except subprocess.CalledProcessError:
            time.sleep(1)
        shutil.rmtree(self.root, ignore_errors=True)


def server_pid(backend_pid: int) -> int:
    """The postmaster of a backend on this machine; 0 if the server runs elsewhere."""
    try:
        return int(Path(f"/proc/{backend_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def server_cpu_snapshot(postmaster: int) -> dict[int, int]:
    """CPU nanoseconds used so far by each process of the server (/proc/<pid>/schedstat)."""
    snapshot: dict[int, int] = {}
    if not postmaster:
        return snapshot
    for pid in process_children(postmaster):
        try:
            snapshot[pid] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return snapshot


def server_cpu_seconds(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU used between two snapshots, per process, so a process that exits in between
    (a closed connection, an autovacuum worker) does not make the total go down."""
    return sum(max(0, ns - before.get(pid, 0)) for pid, ns in after.items()) / 1e9
