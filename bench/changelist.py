"""Admin incidents changelist with 100,000 incidents and 1,000,000 alerts.

    DATABASE_URL=postgres://... python -m bench.changelist generate [--incidents N --alerts M]
    DATABASE_URL=postgres://... python -m bench.changelist measure [--runs 7]

``generate`` fills a migrated database in PostgreSQL itself (INSERT ... SELECT over
generate_series: no rows travel through Python). Incidents span four teams and a year,
mostly resolved with a few hundred open; every incident has at least one alert, the
rest are skewed so some incidents carry thousands; ``alert_count`` and
``last_alert_at`` are then computed from the alerts, so the data is consistent.
Columns the generator does not set get the model field's default, so a field added
later does not break it.

``measure`` renders pages with Django's test Client in this process (server time: URL
resolving, middleware, admin, queries, template) as a superuser and as a responder of
one team, and prints JSON with the median of several runs and the query count.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from typing import Any

import django

TEAMS = 4
SERVICES_PER_TEAM = 5
OPEN_INCIDENTS = 300
MEMBER = "bench-member"
SUPERUSER = "bench-admin"


def _insert_select(model: Any, exprs: dict[str, str], from_sql: str, params: list[Any]) -> str:
    """``INSERT INTO table (cols) SELECT exprs FROM ...``: columns missing from ``exprs``
    get the field's default as a parameter."""
    from django.db import connection

    columns, values, defaults = [], [], []
    for field in model._meta.concrete_fields:
        if field.column == "id":
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.column in exprs:
            values.append(exprs[field.column])
        else:
            values.append("%s")
            default = None if field.null and not field.has_default() else field.get_default()
            defaults.append(field.get_db_prep_save(default, connection))
    sql = (f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
           f"SELECT {', '.join(values)} FROM {from_sql}")
    # Defaults come first in the statement (in the SELECT list), then the FROM's own.
    with connection.cursor() as cursor:
        cursor.execute(sql, defaults + params)
    return sql


_last_step = [time.perf_counter()]


def step(name: str) -> None:
    now = time.perf_counter()
    print(f"    {name}: {now - _last_step[0]:.1f} s", file=sys.stderr, flush=True)
    _last_step[0] = now


def generate(incidents: int, alerts: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import DatabaseError, connection, transaction

    from incidents.models import Alert, Incident, Integration, Service, TimelineEntry
    from ircore.models import Counter, Team

    started = time.perf_counter()
    user_model = get_user_model()
    bulk_tables = [Alert._meta.db_table, TimelineEntry._meta.db_table]
    with connection.cursor() as cursor:
        # Load first, index after: far faster than maintaining the indexes row by row.
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
                       "AND indexdef NOT LIKE '%%UNIQUE%%'", [bulk_tables])
        indexes = cursor.fetchall()
    with transaction.atomic(), connection.cursor() as ddl:
        # The rows are consistent by construction; skipping the per-row deferred
        # foreign-key triggers (superuser only) saves most of the load time.
        try:
            with transaction.atomic():
                ddl.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError:
            pass
        for name, _ in indexes:
            ddl.execute(f'DROP INDEX "{name}"')
        teams = [Team.objects.create(name=f"Team {n}", slug=f"team-{n}") for n in range(1, TEAMS + 1)]
        services = [
            Service.objects.create(team=team, name=f"service-{team.pk}-{n}")
            for team in teams for n in range(SERVICES_PER_TEAM)
        ]
        integrations = [
            Integration.objects.create(service=service, kind=Integration.Kind.PAGERDUTY, name="pd")
            for service in services
        ]
        user_model.objects.create_superuser(SUPERUSER, f"{SUPERUSER}@example.com", None)
        member = user_model.objects.create_user(MEMBER, f"{MEMBER}@example.com", None, is_staff=True,
                                                first_name="Rita", last_name="Responder")
        teams[0].memberships.create(user=member, role="responder")
        Counter.objects.update_or_create(name="incident", defaults={"value": incidents})

        service_ids = "ARRAY[" + ",".join(str(s.pk) for s in services) + "]::bigint[]"
        team_ids = "ARRAY[" + ",".join(str(s.team_id) for s in services) + "]::bigint[]"
        integration_ids = "ARRAY[" + ",".join(str(i.pk) for i in integrations) + "]::bigint[]"
        nsvc = len(services)
        base = f"now() - ({incidents} - g) * interval '5 minutes'"
        open_from = incidents - OPEN_INCIDENTS
        status = (f"CASE WHEN g <= {open_from} THEN 'resolved' WHEN mod(g, 3) = 0 THEN 'acknowledged' "
                  "ELSE 'triggered' END")
        severity = ("CASE WHEN mod(g * 7919, 100) < 5 THEN 'SEV1' WHEN mod(g * 7919, 100) < 20 THEN 'SEV2' "
                    "WHEN mod(g * 7919, 100) < 70 THEN 'SEV3' ELSE 'SEV4' END")
        title = ("(ARRAY['High error rate on checkout', 'Disk almost full on', 'Database down on', "
                 "'p99 latency above SLO on', 'Certificate expires soon on', 'Queue backlog growing on'])"
                 "[1 + mod(g, 6)] || ' host-' || mod(g, 977)")
        _insert_select(Incident, {
            "number": "g",
            "team_id": f"({team_ids})[1 + mod(g, {nsvc})]",
            "service_id": f"({service_ids})[1 + mod(g, {nsvc})]",
            "title": title,
            "status": status,
            "severity": severity,
            "priority": f"'P' || substr({severity}, 4, 1)",
            "dedup_key": "'key-' || g",
            "triggered_at": base,
            "acknowledged_at": f"CASE WHEN {status} <> 'triggered' THEN {base} + interval '3 minutes' END",
            "acknowledged_by_id": f"CASE WHEN {status} <> 'triggered' THEN {member.pk} END",
            "resolved_at": f"CASE WHEN {status} = 'resolved' THEN {base} + interval '47 minutes' END",
            "updated_at": "now()",
        }, f"generate_series(1, {incidents}) AS g", [])
        step("incidents")

        inc = Incident._meta.db_table
        # The first `incidents` alerts give each incident one; the rest pile up skewed
        # (power of a uniform draw) so a few incidents carry thousands of alerts.
        with connection.cursor() as cursor:
            cursor.execute("SELECT setseed(0.42)")
        # Rows are written in the order they were received, as the applier writes them:
        # the table's physical order then follows received_at, as in a real database
        # (in join order, the last 30 days' alerts were spread over most of the table's
        # pages, and the console's alert-text search read 19,600 pages instead of 1,400).
        received_at = "i.triggered_at + mod(s.g, 3600) * interval '1 second'"
        pick = (f"(SELECT g, CASE WHEN g <= {incidents} THEN g "
                f"ELSE 1 + floor({incidents} * power(random(), 3))::bigint END AS n "
                f"FROM generate_series(1, {alerts}) AS g) AS s JOIN {inc} AS i ON i.number = s.n "
                f"ORDER BY {received_at}")
        _insert_select(Alert, {
            "integration_id": f"({integration_ids})[1 + mod(i.number, {nsvc})]",
            "service_id": "i.service_id",
            "incident_id": "i.id",
            "dedup_key": "i.dedup_key",
            "summary": "i.title",
            "severity": "i.severity",
            "priority": "i.priority",
            "source": "'host-' || mod(i.number, 977) || '.prod'",
            "payload": ("jsonb_build_object('summary', i.title, 'source', 'host-' || mod(i.number, 977), "
                        "'severity', 'error', 'custom_details', jsonb_build_object('n', s.g))"),
            "outcome": f"CASE WHEN s.g <= {incidents} THEN 'opened' ELSE 'grouped' END",
            "received_at": received_at,
        }, pick, [])
        alert = Alert._meta.db_table
        step("alerts")
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {inc} AS i SET alert_count = a.c, last_alert_at = a.m FROM ("
                f"SELECT incident_id, count(*) AS c, max(received_at) AS m FROM {alert} "
                f"GROUP BY incident_id) AS a WHERE a.incident_id = i.id"
            )
        step("alert counts")
        _insert_select(TimelineEntry, {
            "incident_id": "i.id", "service_id": "i.service_id", "kind": "'triggered'",
            "message": "'Triggered by an alert: ' || i.title", "via": "'integration'",
            "created_at": "i.triggered_at",
        }, f"{inc} AS i", [])
        _insert_select(TimelineEntry, {
            "incident_id": "i.id", "service_id": "i.service_id", "kind": "'resolved'",
            "message": "'Resolved by an integration'", "via": "'integration'",
            "created_at": "i.resolved_at",
        }, f"{inc} AS i WHERE i.status = 'resolved'", [])
        step("timeline")
        for _, definition in indexes:
            ddl.execute(definition)
        step("indexes")
    with connection.cursor() as cursor:
        for model in (Incident, Alert, TimelineEntry):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
        step("vacuum analyze")
        cursor.execute(f"SELECT count(*), sum(alert_count), min(alert_count), max(alert_count) FROM {inc}")
        n_inc, sum_count, min_count, max_count = cursor.fetchone()
        cursor.execute(f"SELECT count(*) FROM {alert}")
        (n_alerts,) = cursor.fetchone()
    if n_inc != incidents or n_alerts != alerts or sum_count != alerts or min_count < 1:
        raise SystemExit(f"generator produced inconsistent data: {n_inc} incidents, {n_alerts} alerts, "
                         f"alert_count sum {sum_count}, min {min_count}")
    return {"incidents": n_inc, "alerts": n_alerts, "max_alerts_per_incident": max_count,
            "seconds": time.perf_counter() - started}


PAGES = [
    ("default page", ""),
    ("open incidents (status filter)", "?status__exact=triggered"),
    ("SEV1 resolved (two filters)", "?severity__exact=SEV1&status__exact=resolved"),
    ("page 50", "?p=50"),
    ("search by number", "?q=INC-{number}"),
    ("search by word", "?q=certificate"),
]
URL = "/admin/incidents/incident/"


def database_cpu() -> Any:
    """A function returning a snapshot of the CPU used by every process of the PostgreSQL
    server (backends, also a second connection's); empty when it runs elsewhere."""
    from django.db import connection

    from bench.pg import server_cpu_snapshot, server_pid

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        postmaster = server_pid(cursor.fetchone()[0])
    return lambda: server_cpu_snapshot(postmaster)


def measure(runs: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.pg import server_cpu_seconds
    from ircore.models import Counter

    logging.getLogger("django.request").setLevel(logging.ERROR)  # 404s until the admin exists
    # An incident of the member's team (services are dealt out in turn, team 1 first).
    number = Counter.objects.get(name="incident").value // 2 + 3
    db_cpu = database_cpu()
    results = []
    for who in (SUPERUSER, MEMBER):
        client = Client()
        client.force_login(get_user_model().objects.get(username=who))
        for label, query in PAGES:
            query = query.format(number=number)
            response = client.get(URL + query)  # warm: templates, caches, buffers
            timings, cpu = [], []
            for _ in range(runs):
                db0 = db_cpu()  # before the clocks start: reading /proc costs CPU too
                start, cpu0 = time.perf_counter(), time.process_time()
                response = client.get(URL + query)
                timings.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - cpu0 + server_cpu_seconds(db0, db_cpu())) * 1000)
            with CaptureQueriesContext(connection) as queries:
                client.get(URL + query)
            # One action checkbox per listed incident.
            rows = response.content.count(b'name="_selected_action"') if response.status_code == 200 else None
            note = ""
            if response.status_code == 302:
                note = f"redirected to {response['Location']} (filter not offered?)"
            results.append({
                "user": "superuser" if who == SUPERUSER else "team member", "page": label,
                "url": URL + query, "status": response.status_code, "rows": rows,
                "median_ms": statistics.median(timings), "min_ms": min(timings), "max_ms": max(timings),
                "queries": len(queries), "note": note, "cpu_ms": statistics.median(cpu),
            })
    return {"pages": results, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--incidents", type=int, default=100_000)
    gen.add_argument("--alerts", type=int, default=1_000_000)
    meas = sub.add_parser("measure")
    meas.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    out = generate(args.incidents, args.alerts) if args.command == "generate" else measure(args.runs)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
