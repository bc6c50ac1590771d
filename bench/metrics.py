#!/usr/bin/env python
"""Incident metrics for a year with 100,000 incidents, on PostgreSQL. Target: < 300 ms.

    .venv/bin/python bench/metrics.py [--incidents 100000] [--runs 9]

Without DATABASE_URL a throwaway PostgreSQL cluster is started and removed afterwards;
with DATABASE_URL (postgres://, a role allowed to CREATE DATABASE) a scratch database is
created next to it and dropped. Incidents are generated in PostgreSQL itself (INSERT ...
SELECT over generate_series): 4 teams x 5 services, one every ~5 minutes over 365 days,
severities 5/15/50/30 %, acknowledged after 30 s - 30 min, resolved up to a day later,
the last 300 still open. Then ``incidents.metrics.metrics_compute`` (all the figures of
the metrics page and API) and ``GET /api/v1/metrics/`` are timed in-process: median of
``--runs`` runs after a warm-up, as a superuser (all teams) and as a member of one team.

Prints a markdown table and writes it to bench/results/metrics.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_MS = 300.0
OPEN_INCIDENTS = 300
MEMBER = "bench-metrics-member"
SUPERUSER = "bench-metrics-admin"


# --------------------------------------------------------------------------- inside Django


def generate(incidents: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from bench.changelist import _insert_select
    from incidents.models import Incident, Service
    from ircore.models import Counter, Team

    started = time.perf_counter()
    with transaction.atomic():
        teams = [Team.objects.create(name=f"Team {n}", slug=f"team-{n}") for n in range(1, 5)]
        services = [
            Service.objects.create(team=t, name=f"service-{t.pk}-{n}") for t in teams for n in range(5)
        ]
        users = get_user_model()
        users.objects.create_superuser(SUPERUSER, f"{SUPERUSER}@example.com", None)
        member = users.objects.create_user(MEMBER, f"{MEMBER}@example.com", None, is_staff=True)
        teams[0].memberships.create(user=member, role="responder")
        Counter.objects.update_or_create(name="incident", defaults={"value": incidents})
        service_ids = "ARRAY[" + ",".join(str(s.pk) for s in services) + "]::bigint[]"
        team_ids = "ARRAY[" + ",".join(str(s.team_id) for s in services) + "]::bigint[]"
        n = len(services)
        step = 365 * 86400 / incidents
        base = f"now() - ({incidents} - g) * interval '{step:.3f} seconds'"
        open_from = incidents - OPEN_INCIDENTS
        status = (
            f"CASE WHEN g <= {open_from} THEN 'resolved' WHEN mod(g, 3) = 0 THEN 'acknowledged' "
            "ELSE 'triggered' END"
        )
        severity = (
            "CASE WHEN mod(g * 7919, 100) < 5 THEN 'SEV1' WHEN mod(g * 7919, 100) < 20 THEN 'SEV2' "
            "WHEN mod(g * 7919, 100) < 70 THEN 'SEV3' ELSE 'SEV4' END"
        )
        ack = f"{base} + (30 + mod(g * 7919, 1770)) * interval '1 second'"
        _insert_select(
            Incident,
            {
                "number": "g",
                "team_id": f"({team_ids})[1 + mod(g, {n})]",
                "service_id": f"({service_ids})[1 + mod(g, {n})]",
                "title": "'Incident ' || g",
                "status": status,
                "severity": severity,
                "priority": f"'P' || substr({severity}, 4, 1)",
                "dedup_key": "'key-' || g",
                "triggered_at": base,
                # Some resolve without an acknowledgement (an integration resolved them).
                "acknowledged_at": f"CASE WHEN {status} <> 'triggered' AND mod(g, 10) <> 0 THEN {ack} END",
                "resolved_at": (
                    f"CASE WHEN {status} = 'resolved' THEN {ack} + mod(g * 104729, 86400) "
                    "* interval '1 second' END"
                ),
                "updated_at": "now()",
            },
            f"generate_series(1::bigint, {incidents}) AS g",
            [],
        )
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Incident._meta.db_table}")
    return {"incidents": Incident.objects.count(), "seconds": time.perf_counter() - started}


def _timed(fn: Any, runs: int) -> tuple[float, Any]:
    fn()  # warm-up: connection, plan cache, OS page cache
    samples, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), result


def measure(runs: int) -> dict[str, Any]:
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from incidents.metrics import metrics_compute
    from incidents.models import Incident
    from ircore import permissions

    users = get_user_model()
    now = timezone.now()
    rows = []
    for username in (SUPERUSER, MEMBER):
        user = users.objects.get(username=username)
        scoped = permissions.scope_queryset(Incident.objects.all(), user)
        for label, days in (("year", 366), ("quarter", 90), ("month", 30)):
            start = now - timedelta(days=days)

            def compute(qs: Any = scoped, start: Any = start) -> dict:
                return metrics_compute(queryset=qs, start=start, end=now)

            with CaptureQueriesContext(connection) as queries:
                compute()
            ms, data = _timed(compute, runs)
            rows.append(
                {
                    "user": "superuser" if user.is_superuser else "team member",
                    "what": f"compute, {label}",
                    "incidents": data["incidents"],
                    "ms": ms,
                    "queries": len(queries.captured_queries),
                }
            )
        client = Client()
        client.force_login(user)
        frm = (now - timedelta(days=365)).date().isoformat()

        def api(client: Client = client, frm: str = frm) -> Any:
            response = client.get("/api/v1/metrics/", {"from": frm})
            assert response.status_code == 200, response.content[:200]
            return response.json()

        ms, data = _timed(api, runs)
        rows.append(
            {
                "user": "superuser" if user.is_superuser else "team member",
                "what": "GET /api/v1/metrics/?from=<1 year ago>",
                "incidents": data["incidents"],
                "ms": ms,
                "queries": None,
            }
        )
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return {
        "runs": runs,
        "rows": rows,
        "load": load,
        "server_version": connection.cursor().connection.info.server_version,
    }


# --------------------------------------------------------------------------- orchestration


def _django(url: str, *args: str) -> dict[str, Any]:
    from bench import ingest

    return ingest.module_json(url, "bench.metrics", *args)


def report(gen: dict[str, Any], res: dict[str, Any], argv: list[str]) -> str:
    version = res["server_version"]
    lines = [
        f"## Incident metrics ({gen['incidents']:,} incidents over one year, PostgreSQL "
        f"{version // 10000}.{version % 10000})",
        "",
        f"`{' '.join(['python', 'bench/metrics.py', *argv])}`; {os.cpu_count()} CPU (load average "
        f"{res['load']} during the runs: the machine is shared); server time in-process, "
        f"median of {res['runs']} runs after a warm-up. Target: < {TARGET_MS:.0f} ms for a year.",
        "",
        "| user | what | incidents | median ms | queries (+1 on a 2nd connection) | < 300 ms |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in res["rows"]:
        ok = "yes" if row["ms"] < TARGET_MS else "**NO**"
        queries = row["queries"] if row["queries"] is not None else "-"
        lines.append(
            f"| {row['user']} | {row['what']} | {row['incidents']:,} | {row['ms']:.0f} | {queries} | {ok} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    import psycopg

    from bench import ingest
    from bench.pg import Cluster

    given = os.environ.get("DATABASE_URL", "")
    cluster = None
    name = f"ircore_bench_metrics_{uuid.uuid4().hex[:6]}"
    if given and not given.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench needs PostgreSQL: DATABASE_URL must be postgres://... (or unset)")
    if given:
        with psycopg.connect(given, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = urlunsplit(urlsplit(given)._replace(path="/" + name))
    else:
        print("starting a throwaway PostgreSQL cluster", file=sys.stderr, flush=True)
        cluster = Cluster()
        url = cluster.createdb(name)
    try:
        ingest.migrate(url)
        print(f"generating {args.incidents:,} incidents", file=sys.stderr, flush=True)
        gen = _django(url, "generate", "--incidents", str(args.incidents))
        print(f"  done in {gen['seconds']:.1f} s; measuring", file=sys.stderr, flush=True)
        res = _django(url, "measure", "--runs", str(args.runs))
    finally:
        if cluster:
            cluster.stop()
        else:
            with psycopg.connect(given, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    text = report(gen, res, sys.argv[1:])
    print(text)
    out = ROOT / "bench" / "results" / "metrics.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0 if all(row["ms"] < TARGET_MS for row in res["rows"]) else 1


def _subcommand() -> None:
    import django

    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["generate", "measure"])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    django.setup()
    result = generate(args.incidents) if args.command == "generate" else measure(args.runs)
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("generate", "measure"):
        _subcommand()
    else:
        sys.exit(main())
