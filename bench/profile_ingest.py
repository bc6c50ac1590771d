"""Where an ingested event's time goes, in-process (Django's test Client: the same
views, middleware and database as under gunicorn, without the HTTP server):

- the request: CPU per request of the bare view, of the endpoint, and of the endpoint
  with its one INSERT left out, plus the PostgreSQL backend's CPU, and the statements
  a request runs;
- the applier: CPU per event (this process and the backend) for batches of 500, 100
  and 20 events grouped into open incidents, and for events that each open an incident.

    DATABASE_URL=postgres://... python -m bench.profile_ingest [--target pagerduty] [--events 3000]

(``python bench/run.py --only profile`` prepares a database and runs this.)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from collections.abc import Callable
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--target", default="pagerduty")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    import incidents.ingestion.views as views
    from bench.fixtures import create
    from incidents.alert_queue import queue_apply_batch, queue_drain

    tokens = create()
    client = Client()
    token = tokens[args.target]
    run = str(time.time_ns())
    n = args.events

    def post(key: str, i: int, path_override: str | None = None) -> int:
        path, body = _event(args.target, token, key, i)
        return client.post(path_override or path, data=json.dumps(body),
                           content_type="application/json").status_code

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def backend_cpu() -> float:
        try:
            fields = open(f"/proc/{backend}/stat").read().rsplit(")", 1)[1].split()
        except OSError:  # PostgreSQL on another machine
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_per_request(label: str, key: str, path: str | None = None) -> None:
        """Best of three runs of ``n`` requests: this process's CPU and the backend's."""
        best = (float("inf"), float("inf"))
        for _ in range(3):
            cpu0, pg0 = time.process_time(), backend_cpu()
            for i in range(n):
                status = post(f"{key}-{i % 200}", i, path)
                assert status == 202, f"{label}: answered {status}"  # measure the work, not an error
            best = min(best, ((time.process_time() - cpu0) / n, (backend_cpu() - pg0) / n))
        print(f"| {label} | {best[0] * 1e6:.0f} | {best[1] * 1e6:.0f} |")

    print(f"\n## {args.target}: request side, {n} requests each, µs of CPU per request (best of 3)\n")
    print("| request | Django | PostgreSQL |\n|---|---:|---:|")
    for i in range(200):  # warm up both views and the connection
        post(f"warm-{run}", i, "/bench/bare/")
        post(f"warm-{run}", i)
    cpu_per_request("bare view", "k", "/bench/bare/")
    cpu_per_request("endpoint (validate, one INSERT into the queue)", f"r-{run}")
    real = views.events_enqueue
    views.events_enqueue = lambda *, integration, events, **_: [e.dedup_key or "-" for e in events]
    try:
        cpu_per_request("endpoint without the INSERT", f"x-{run}")
    finally:
        views.events_enqueue = real
    with CaptureQueriesContext(connection) as ctx:
        post(f"q-{run}", 0)
    kinds = Counter(q["sql"].split()[0].upper() for q in ctx.captured_queries)
    print(f"\nStatements per request: {len(ctx)} ({', '.join(f'{k} {v}' for k, v in kinds.most_common())})")

    print("\n## Applier side, µs of CPU per event (best of 3)\n")
    print("| batch | Django | PostgreSQL |\n|---|---:|---:|")
    queue_drain()
    for i in range(200):  # open 200 incidents, so the events below are repeats
        post(f"g-{run}-{i}", i)
    queue_drain()

    def grouped(size: int) -> Callable[[], int]:
        def work() -> int:
            for i in range(2000):
                post(f"g-{run}-{i % 200}", i)
            cpu0, pg0 = time.process_time(), backend_cpu()
            applied = 0
            while batch := queue_apply_batch(limit=size):
                applied += batch
            work.spent = (time.process_time() - cpu0, backend_cpu() - pg0)  # type: ignore[attr-defined]
            return applied
        return work

    for size in (500, 100, 20):
        best = (float("inf"), float("inf"))
        for _ in range(3):
            work = grouped(size)
            applied = work()
            spent = work.spent  # type: ignore[attr-defined]
            best = min(best, (spent[0] / applied, spent[1] / applied))
        print(f"| {size} events grouped into 200 open incidents | {best[0] * 1e6:.0f} | "
              f"{best[1] * 1e6:.0f} |")
    for i in range(300):
        post(f"new-{run}-{i}", i)
    cpu0, pg0 = time.process_time(), backend_cpu()
    applied = queue_drain()
    cpu, pg = time.process_time() - cpu0, backend_cpu() - pg0
    print(f"| {applied} events that each open an incident | {cpu / applied * 1e6:.0f} | "
          f"{pg / applied * 1e6:.0f} |")


if __name__ == "__main__":
    main()
