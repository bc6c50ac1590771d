"""Where an ingested event's time goes: SQL statements per event (new incident and
grouped alert) and a cProfile of many events, in-process through Django's test Client
(the same view, middleware and database as under gunicorn, without the HTTP server).

    DATABASE_URL=postgres://... python -m bench.profile_ingest [--events 500]

(``python bench/run.py --only profile`` prepares a database and runs this.)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections import Counter
from typing import Any

import django


def _event(target: str, token: str, key: str, i: int) -> tuple[str, dict[str, Any]]:
    if target == "pagerduty":
        return "/integrations/pagerduty/v2/enqueue", {
            "routing_key": token, "event_action": "trigger", "dedup_key": key,
            "payload": {"summary": f"High error rate ({key})", "source": "web-1", "severity": "error",
                        "custom_details": {"i": i}},
        }
    if target == "alertmanager":
        labels = {"alertname": "HighLatency", "instance": key, "severity": "warning"}
        return f"/integrations/alertmanager/{token}/", {
            "version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "ircore",
            "groupLabels": {}, "commonLabels": labels, "commonAnnotations": {}, "externalURL": "",
            "alerts": [{"status": "firing", "labels": labels, "annotations": {"summary": key},
                        "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "", "fingerprint": key}],
        }
    return f"/integrations/generic/{token}/", {"summary": f"High error rate ({key})", "dedup_key": key,
                                               "severity": "error", "source": "web-1"}


def step_breakdown(send: Any, n: int) -> str:
    """Wrap the pipeline's steps with wall/CPU accumulators, send ``n`` events, tabulate."""
    from django.db import connection
    from django.db.models import QuerySet

    from incidents import services
    from incidents.ingestion import common
    from incidents.models import Alert

    totals: dict[str, list[float]] = {}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                acc = totals.setdefault(name, [0.0, 0.0, 0])
                acc[0] += time.perf_counter() - w
                acc[1] += time.process_time() - c
                acc[2] += 1
        return wrapper

    patches: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, attr: str, name: str) -> None:
        original = getattr(owner, attr)
        patches.append((owner, attr, original))
        setattr(owner, attr, timed(name, original))
        # Modules that imported the function by name hold their own reference.
        for module in list(sys.modules.values()):
            if (getattr(module, "__name__", "").startswith("incidents")
                    and getattr(module, attr, None) is original and module is not owner):
                patches.append((module, attr, original))
                setattr(module, attr, getattr(owner, attr))

    patch(common, "integration_for_token", "integration look-up (SELECT)")
    patch(common, "check_rate_limit", "rate limit (cache)")
    patch(services, "_rules_for", "triage rules (SELECT)")
    patch(services, "triage_apply", "triage evaluation (Python)")
    patch(services, "service_in_maintenance", "maintenance window (SELECT)")
    patch(services, "_open_incident_locked", "open incident FOR UPDATE (SELECT)")
    patch(Alert, "save", "alert INSERT")
    patch(QuerySet, "update", "incident UPDATE")
    patch(services, "timeline_add", "timeline INSERT")
    patch(connection, "_commit", "COMMIT (WAL flush)")
    patch(connection, "run_and_clear_commit_hooks", "on-commit handlers (other apps)")
    patch(services, "alert_ingest", "alert_ingest total")
    request = timed("whole request", send)
    try:
        for i in range(n):
            request(i)
    finally:
        for owner, attr, original in reversed(patches):
            setattr(owner, attr, original)
    whole = totals["whole request"]
    lines = ["| step | calls/event | wall ms/event | CPU ms/event |", "|---|---:|---:|---:|"]
    for name, (wall, cpu, calls) in totals.items():
        lines.append(f"| {name} | {calls / n:.2f} | {wall * 1000 / n:.2f} | {cpu * 1000 / n:.2f} |")
    inner = sum(v[1] for k, v in totals.items() if k not in ("whole request", "alert_ingest total",
                                                               "triage evaluation (Python)"))
    lines.append(f"| rest (middleware, JSON, validation, ORM outside the steps) | | | "
                 f"{(whole[1] - inner) * 1000 / n:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--target", default="generic")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.fixtures import create

    tokens = create()
    client = Client()
    token = tokens[args.target]
    run = str(time.time_ns())

    def post(key: str, i: int) -> int:
        path, body = _event(args.target, token, key, i)
        return client.post(path, data=json.dumps(body), content_type="application/json").status_code

    post(f"warm-{run}", 0)
    for label, key in (("opens an incident", f"open-{run}"), ("grouped into it", f"open-{run}")):
        with CaptureQueriesContext(connection) as ctx:
            status = post(key, 1)
        kinds = Counter(q["sql"].split()[0].upper() for q in ctx.captured_queries)
        print(f"\n## {args.target}: event that {label}: HTTP {status}, {len(ctx)} statements "
              f"({', '.join(f'{k} {v}' for k, v in kinds.most_common())})")
        for q in ctx.captured_queries:
            print(f"  {float(q['time']) * 1000:5.2f} ms  {q['sql'][:150]}")

    # Without the profiler: wall time vs this process's CPU vs the PostgreSQL backend's
    # CPU; the rest is waiting (commit fsync, scheduling, round trips).
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def backend_cpu() -> float:
        try:
            fields = open(f"/proc/{backend}/stat").read().rsplit(")", 1)[1].split()
        except OSError:  # PostgreSQL on another machine
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    n = args.events
    wall0, cpu0, pg0 = time.perf_counter(), time.process_time(), backend_cpu()
    with CaptureQueriesContext(connection) as ctx:
        for i in range(n):
            post(f"t-{run}-{i % 50}", i)
    wall, cpu, pg = (time.perf_counter() - wall0, time.process_time() - cpu0, backend_cpu() - pg0)
    print(f"\n## {n} events in-process (50 keys), no profiler: {wall * 1000 / n:.2f} ms/event wall, "
          f"Python CPU {cpu * 1000 / n:.2f} ms, PostgreSQL backend CPU {pg * 1000 / n:.2f} ms, "
          f"other (fsync, waits) {(wall - cpu - pg) * 1000 / n:.2f} ms; {len(ctx) / n:.1f} statements/event")

    print(f"\n## Per step, {n} events ({args.target}, grouped into open incidents; inclusive times)")
    print(step_breakdown(lambda i: post(f"t-{run}-{i % 50}", i), n))

    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for i in range(args.events):
        post(f"p-{run}-{i % 50}", i)
    profiler.disable()
    elapsed = time.perf_counter() - start
    print(f"\n## {args.events} events in-process, 50 keys: {elapsed * 1000 / args.events:.2f} ms/event "
          f"({args.events / elapsed:.0f}/s, one client, no HTTP server)")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
    sys.stdout.write(out.getvalue())


if __name__ == "__main__":
    main()
