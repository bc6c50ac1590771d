"""Ingestion benchmark: gunicorn serving ircore on PostgreSQL, the clock (whose
applier turns queued events into alerts) running beside it, load from a separate
process (bench/loadgen.py), each run verified in the database afterwards.

A 2xx answer means "stored in the queue"; an event is fully processed once the
applier has triaged it, opened or updated its incident and written the timeline. So
a run lasts until the queue is empty again: events/s counts events fully processed,
from the first request to the moment the last one was applied. The check after each
run proves it: one new alert per 2xx, each attached to an incident with an
``opened``/``grouped`` outcome, at least one timeline entry per alert, incident alert
counts adding up, nothing left in the queue.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.pg import server_cpu_seconds, server_cpu_snapshot, server_pid
from ircore.testing import free_loopback_port, process_children, redis_server_start

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PATHS = {
    "pagerduty": "/integrations/pagerduty/v2/enqueue",
    "alertmanager": "/integrations/alertmanager/{token}/",
    "generic": "/integrations/generic/{token}/",
    "bare": "/bench/bare/",
}
# A run opens one incident per key, then groups the rest of the events into them: the
# mix a real alert source produces (a few new problems, many repeats).
KEYS_PER_RUN = 200
# A round where one gunicorn worker did more than this share of the work is redone.
LOPSIDED_SHARE = 0.8
LOPSIDED_RETRIES = 2
NEW_INCIDENTS_PER_RUN = 1000
TARGET_CONCURRENCY = 8
ROUNDS_AT_TARGET = 5


def django_env(url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        **(extra or {}),
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "SECRET_KEY": "bench-" + "x" * 50,
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def module_json(url: str, module: str, *args: str) -> Any:
    """Run ``python -m module *args`` against ``url``; the JSON its last line prints."""
    out = subprocess.run([PY, "-m", module, *args], cwd=ROOT, env=django_env(url), check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def migrate(url: str) -> None:
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=django_env(url), check=True)


def create_fixtures(url: str) -> dict[str, str]:
    return module_json(url, "bench.fixtures")


class Gunicorn:
    """The same server for every target: ``workers`` processes of ``threads`` threads, as
    the Procfile runs it (without the access log, which would only add the same cost to
    every target)."""

    def __init__(self, url: str, workers: int, threads: int = 1, env: dict[str, str] | None = None) -> None:
        self.port = free_loopback_port()
        self.workers = workers
        self.proc = subprocess.Popen(
            [PY, "-m", "gunicorn", "ircore.wsgi", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(workers), "--threads", str(threads), "--log-level", "warning",
             "--timeout", "60"],
            cwd=ROOT, env=django_env(url, env), start_new_session=True,
        )
        deadline = time.time() + 90
        while True:
            try:
                # Any HTTP answer (a GET on a POST-only view is a 405) means it serves.
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/bench/bare/", timeout=30).read()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.3)

    def worker_cpu_seconds(self) -> float:
        """CPU used so far by the worker processes (children of the master)."""
        return sum(self.worker_cpu().values())

    def worker_cpu(self) -> dict[int, float]:
        """CPU used so far by each worker process (children of the master), by pid."""
        cpu = {}
        for pid in process_children(self.proc.pid):
            try:
                cpu[pid] = process_cpu_seconds(pid)
            except (OSError, ValueError):
                continue  # gone meanwhile
        return cpu

    def stop(self) -> None:
        """Stop the master and its workers (their own process group, started by us)."""
        stop_process_group(self.proc)


def stop_process_group(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL to the whole group (started with start_new_session) after 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Clock:
    """``manage.py clock``, as the Procfile runs it: its applier thread turns queued
    events into alerts (and its jobs start escalations for new incidents)."""

    def __init__(self, url: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([PY, "manage.py", "clock"], cwd=ROOT, env=django_env(url, env),
                                     start_new_session=True)

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        stop_process_group(self.proc)


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def probe(port: int, target: str, token: str) -> str | None:
    """None if the endpoint exists, otherwise why it cannot be measured."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{PATHS[target].format(token=token)}", data=b"{}", method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(request, timeout=10).read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404 and "json" not in (exc.headers.get("Content-Type") or ""):
            return "endpoint not implemented yet (404)"
        if exc.code >= 500:
            return f"endpoint answers {exc.code} to an empty event"
    return None


def loadgen(port: int, target: str, token: str, concurrency: int, *, duration: float = 0,
            requests: int = 0, keys: int = KEYS_PER_RUN, shuffle: bool = False,
            namespace: str = "") -> dict[str, Any]:
    cmd = [PY, str(ROOT / "bench" / "loadgen.py"), "--port", str(port), "--target", target,
           "--token", token, "--concurrency", str(concurrency), "--keys", str(keys),
           "--namespace", namespace or f"{target}-c{concurrency}-{uuid.uuid4().hex[:8]}"]
    if duration:
        cmd += ["--duration", str(duration)]
    if requests:
        cmd += ["--requests", str(requests)]
    if shuffle:
        cmd.append("--shuffle")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


class Ledger:
    """Counts rows created since the last snapshot."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.mark()

    def _max_ids(self) -> tuple[int, int, int]:
        row = self.conn.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM incidents_alert),"
            " (SELECT coalesce(max(id), 0) FROM incidents_incident),"
            " (SELECT coalesce(max(id), 0) FROM incidents_timelineentry)"
        ).fetchone()
        return row  # type: ignore[return-value]

    def mark(self) -> None:
        self.alert_id, self.incident_id, self.timeline_id = self._max_ids()

    def database_cpu_snapshot(self) -> dict[int, int]:
        if not hasattr(self, "_postmaster"):
            self._postmaster = server_pid(self.conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        return server_cpu_snapshot(self._postmaster)

    def since_mark(self) -> dict[str, int]:
        a, i, t = self.alert_id, self.incident_id, self.timeline_id
        row = self.conn.execute(
            """SELECT
                 (SELECT count(*) FROM incidents_alert WHERE id > %s),
                 (SELECT count(*) FROM incidents_alert WHERE id > %s
                    AND (incident_id IS NULL OR outcome NOT IN ('opened', 'grouped'))),
                 (SELECT count(*) FROM incidents_incident WHERE id > %s),
                 (SELECT count(*) FROM incidents_timelineentry WHERE id > %s),
                 (SELECT count(DISTINCT incident_id) FROM incidents_alert WHERE id > %s),
                 (SELECT coalesce(sum(n), 0) FROM (
                    SELECT i.alert_count - (SELECT count(*) FROM incidents_alert x
                                            WHERE x.incident_id = i.id) AS n
                    FROM incidents_incident i WHERE i.id IN (
                      SELECT DISTINCT incident_id FROM incidents_alert WHERE id > %s)) d)
            """,
            (a, a, i, t, a, a),
        ).fetchone()
        keys = ["alerts", "unprocessed", "incidents", "timeline", "touched_incidents", "count_mismatch"]
        return {key: int(value) for key, value in zip(keys, row, strict=True)}

    def queue_wait(self, timeout: float = 300) -> float:
        """Seconds until the alert queue is empty (the applier has caught up)."""
        started = time.perf_counter()
        while self.conn.execute("SELECT EXISTS (SELECT 1 FROM incidents_queuedevent)").fetchone()[0]:
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"the alert queue did not drain within {timeout:.0f} s")
            time.sleep(0.005)
        return time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


def verify(result: dict[str, Any], counts: dict[str, int], expected_incidents: int | None) -> str:
    """'ok' or what is wrong; bare runs must not write anything."""
    problems = []
    if result["target"] == "bare":
        if counts["alerts"]:
            problems.append(f"bare view wrote {counts['alerts']} alerts")
    else:
        if counts["alerts"] != result["ok"]:
            problems.append(f"{result['ok']} answered 2xx but {counts['alerts']} alerts stored")
        if counts["unprocessed"]:
            problems.append(f"{counts['unprocessed']} alerts without an incident")
        # At least one per alert (opened or grouped); other apps add more on a trigger
        # (escalation started, status page updated...).
        if counts["timeline"] < counts["alerts"]:
            problems.append(f"{counts['timeline']} timeline entries for {counts['alerts']} alerts")
        if counts["count_mismatch"]:
            problems.append("incident alert_count differs from the alerts stored")
        if expected_incidents is not None and counts["incidents"] != expected_incidents:
            problems.append(f"{counts['incidents']} incidents opened, expected {expected_incidents}")
    if result["requests"] != result["ok"]:
        problems.append(f"non-2xx answers: {result['statuses']}")
    if result["errors"]:
        problems.append(f"connection errors: {result['errors']}")
    return "; ".join(problems) or "ok"


def run(url: str, *, targets: list[str], concurrencies: list[int], duration: float, workers: int,
        threads: int, storm_events: int, storm_keys: int, log: Any = print) -> dict[str, Any]:
    migrate(url)
    tokens = create_fixtures(url)
    tokens["bare"] = ""
    server = Gunicorn(url, workers, threads)
    try:
        clock = Clock(url)
        ledger = Ledger(url)
    except BaseException:
        server.stop()
        raise
    results: list[dict[str, Any]] = []
    redone: list[dict[str, Any]] = []  # lopsided rounds, measured again
    skipped: dict[str, str] = {}
    storm: dict[str, Any] | None = None
    variant = ""  # "redis" for the runs of the production configuration
    redis: subprocess.Popen | None = None
    try:
        for target in targets:
            reason = probe(server.port, target, tokens[target])
            if reason:
                skipped[target] = reason
                log(f"  {target}: skipped, {reason}")
        live = [t for t in targets if t not in skipped]
        # Warm every worker (imports, URLconf, connections) and open one incident per
        # key, so the measured runs are the common case: repeats of open problems,
        # grouped into their incident.
        namespaces = {t: f"{t}-{uuid.uuid4().hex[:8]}" for t in live}
        for target in live:
            loadgen(server.port, target, tokens[target], 8, requests=KEYS_PER_RUN,
                    namespace=namespaces[target])
        ledger.queue_wait()

        def applied(result: dict[str, Any]) -> None:
            """Extend the run until the applier has emptied the queue: events/s counts
            fully processed events. Latencies stay those of the answers."""
            result["drain_s"] = ledger.queue_wait()
            result["answered_rps"] = result["rps"]
            result["rps"] = result["ok"] / (result["elapsed"] + result["drain_s"])

        def measured(target: str, concurrency: int, *, new_incidents: bool = False, round_: int = 0,
                     attempt: int = 0) -> None:
            ledger.mark()
            busy0, total0 = cpu_times()
            workers0, db_cpu0 = server.worker_cpu(), ledger.database_cpu_snapshot()
            server_cpu0 = sum(workers0.values())
            clock_cpu0 = clock.cpu_seconds()
            # New incidents: a burst of NEW_INCIDENTS_PER_RUN distinct problems (each one
            # is paged: escalation, status page...), not a whole run's worth of them.
            result = loadgen(server.port, target, tokens[target], concurrency,
                             duration=0 if new_incidents else duration,
                             requests=NEW_INCIDENTS_PER_RUN if new_incidents else 0,
                             namespace="" if new_incidents else namespaces[target],
                             keys=10**9 if new_incidents else KEYS_PER_RUN)
            applied(result)
            busy1, total1 = cpu_times()
            workers1 = server.worker_cpu()
            result["server_cpu_ms_per_req"] = (
                (sum(workers1.values()) - server_cpu0) * 1000 / max(1, result["requests"])
            )
            # How the work split between gunicorn's workers: keep-alive connections stay with
            # the worker that accepted them, and one worker can only use one CPU.
            shares = [workers1[pid] - workers0.get(pid, 0.0) for pid in workers1]
            result["worker_cpu_shares"] = [round(x / max(sum(shares), 1e-9), 2) for x in sorted(shares)]
            result["applier_cpu_ms_per_req"] = (
                (clock.cpu_seconds() - clock_cpu0) * 1000 / max(1, result["requests"])
            )
            db_cpu = server_cpu_seconds(db_cpu0, ledger.database_cpu_snapshot())
            result["db_cpu_ms_per_req"] = db_cpu * 1000 / max(1, result["requests"])
            result["machine_busy_pct"] = 100 * (busy1 - busy0) / max(1, total1 - total0)
            result["new_incidents"] = new_incidents
            result["variant"] = variant
            result["round"] = round_
            counts = ledger.since_mark()
            expected = None if target == "bare" else (result["ok"] if new_incidents else 0)
            result["verified"] = verify(result, counts, expected)
            result["db"] = counts
            # Keep-alive connections stay with the worker that accepted them: now and then
            # one worker takes all of them and the run measures one CPU instead of two,
            # whatever the target. Such a round is redone (at most twice), for the bare
            # view as for the endpoints, and the report counts the redone ones.
            lopsided = (concurrency >= 2 * workers and len(result["worker_cpu_shares"]) > 1
                        and max(result["worker_cpu_shares"]) > LOPSIDED_SHARE)
            if lopsided and attempt < LOPSIDED_RETRIES and result["verified"] == "ok":
                redone.append({"target": target, "concurrency": concurrency, "rps": result["rps"],
                               "worker_cpu_shares": result["worker_cpu_shares"]})
                log(f"  {target:<18} c={concurrency:<3} {result['rps']:8.1f} req/s with one worker holding "
                    f"{max(result['worker_cpu_shares']):.0%} of the work: redone")
                measured(target, concurrency, new_incidents=new_incidents, round_=round_, attempt=attempt + 1)
                return
            results.append(result)
            name = target + (" (new)" if new_incidents else "") + (f" ({variant})" if variant else "")
            log(f"  {name:<18} c={concurrency:<3} "
                f"{result['rps']:8.1f} req/s  p50 {result['p50_ms']:6.1f} ms  "
                f"p99 {result['p99_ms']:6.1f} ms  cpu {result['machine_busy_pct']:3.0f}%  "
                f"workers {'/'.join(f'{x:.0%}' for x in result['worker_cpu_shares'])}  "
                f"drained +{result['drain_s'] * 1000:.0f} ms  CPU/event {result['server_cpu_ms_per_req']:.2f}"
                f"+{result['applier_cpu_ms_per_req']:.2f}+{result['db_cpu_ms_per_req']:.2f} ms  "
                f"{result['verified']}")

        for concurrency in concurrencies:
            # The target concurrency is measured in several rounds, each target right after
            # the bare view: on a shared machine one run can be 15 % off either way.
            for round_ in range(ROUNDS_AT_TARGET if concurrency == TARGET_CONCURRENCY else 1):
                for target in live:
                    measured(target, concurrency, round_=round_)
        # The expensive case: every event opens a new incident (numbering, escalation).
        for target in live:
            if target != "bare":
                measured(target, 8, new_incidents=True)
        storm_target = next((t for t in ("pagerduty", "generic", "alertmanager") if t in live), None)
        if storm_target and storm_events:
            ledger.mark()
            result = loadgen(server.port, storm_target, tokens[storm_target], 32,
                             requests=storm_events, keys=storm_keys, shuffle=True)
            applied(result)
            result["elapsed"] += result["drain_s"]
            counts = ledger.since_mark()
            result["verified"] = verify(result, counts, storm_keys)
            result["db"] = counts
            storm = result
            log(f"  storm via {storm_target}: {storm_events} events over {storm_keys} keys -> "
                f"{counts['incidents']} incidents, {counts['alerts']} alerts in {result['elapsed']:.1f} s "
                f"({result['rps']:.0f}/s, p99 {result['p99_ms']:.0f} ms): {result['verified']}")
        # The production configuration (README): REDIS_URL set, so the rate limits are
        # shared through Redis (and django-q2 uses it as its broker).
        redis_targets = [t for t in ("bare", "pagerduty") if t in live]
        if shutil.which("redis-server") and "pagerduty" in redis_targets:
            redis, redis_url = redis_server_start()
            clock.stop()
            server.stop()
            server = Gunicorn(url, workers, threads, env={"REDIS_URL": redis_url})
            clock = Clock(url, env={"REDIS_URL": redis_url})
            variant = "redis"
            for target in redis_targets:  # warm the new workers
                loadgen(server.port, target, tokens[target], 8, requests=KEYS_PER_RUN,
                        namespace=namespaces[target])
            ledger.queue_wait()
            for round_ in range(ROUNDS_AT_TARGET):
                for target in redis_targets:
                    measured(target, TARGET_CONCURRENCY, round_=round_)
        else:
            log("  REDIS_URL runs skipped: no redis-server (Debian package redis-server)")
    finally:
        ledger.close()
        clock.stop()
        server.stop()
        if redis is not None:
            redis.terminate()
            redis.wait(10)
    return {"runs": results, "redone": redone, "skipped": skipped, "storm": storm, "workers": workers,
            "threads": threads, "duration": duration, "keys_per_run": KEYS_PER_RUN}
