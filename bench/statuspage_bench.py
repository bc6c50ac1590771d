#!/usr/bin/env python
"""Status page speed, on PostgreSQL (or SQLite with --sqlite): 50 components in 5 groups,
90 days of status history, 200 past incidents (3 updates each), one open incident and one
maintenance.

    .venv/bin/python bench/statuspage_bench.py [--quick] [--workers N] [--sqlite]

1. Uncached render: the full view (middleware, queries, uptime arithmetic, template) in
   this process with Django's test Client, the render cache cleared before every request.
   Target: < 100 ms (median). The process's memo of the days before today (uptime and
   bars, see statuspage.selectors.component_uptimes) and of the past incidents' dates
   stays warm, as after any change to a page; the same render with those memos also
   cleared (the first render of a day in a process) is measured and reported as well.
2. Cached throughput: gunicorn (sync workers, as the Procfile) serving /status/<slug>/
   from the render cache, against a bare Django view answering a constant body of the
   same size, served the same way in the same run. Target: >= 50% of the bare view.

Prints a markdown report and writes it to bench/results/statuspage.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SLUG = "bench"
TARGET_RENDER_MS, TARGET_SHARE = 100.0, 0.5
_BODIES: dict[int, bytes] = {}


def bare_get_view(request: Any) -> Any:
    """The baseline for the cached page: no database, no template, a constant body of
    ``?size=`` bytes (the page's size), through the same middleware and server."""
    from django.http import HttpResponse

    size = min(int(request.GET.get("size", "1000")), 2_000_000)
    if size not in _BODIES:
        _BODIES[size] = b"x" * size
    return HttpResponse(_BODIES[size], content_type="text/html; charset=utf-8")


# --------------------------------------------------------------------------- in Django


def generate() -> dict[str, Any]:
    import random
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from ircore.models import Team
    from statuspage.models import (
        Component,
        ComponentGroup,
        ComponentStatusChange,
        PublicIncident,
        PublicUpdate,
        StatusPage,
    )
    from statuspage.rendering import markdown_to_html
    from statuspage.services import maintenance_create, public_incident_create

    rng = random.Random(42)
    now = timezone.now()
    with transaction.atomic():
        team = Team.objects.create(name="Bench", slug="bench")
        page = StatusPage.objects.create(team=team, slug=SLUG, title="Bench Cloud", time_zone="Europe/Berlin")
        components = []
        for g in range(5):
            group = ComponentGroup.objects.create(page=page, name=f"Group {g}", position=g, expanded=g < 2)
            for c in range(10):
                components.append(
                    Component.objects.create(page=page, group=group, name=f"Component {g}-{c}", position=c)
                )
        Component.objects.filter(page=page).update(created_at=now - timedelta(days=200))
        changes = []
        for component in components:
            # ~2 incidents a week per component over 95 days: 27 outages, 54 log rows each.
            at = now - timedelta(days=95)
            while True:
                at += timedelta(hours=rng.uniform(24, 120))
                if at > now - timedelta(hours=3):
                    break
                status = rng.choice(["major_outage", "partial_outage", "degraded_performance"])
                changes.append(
                    ComponentStatusChange(
                        component=component, old_status="operational", new_status=status, changed_at=at
                    )
                )
                changes.append(
                    ComponentStatusChange(
                        component=component,
                        old_status=status,
                        new_status="operational",
                        changed_at=at + timedelta(minutes=rng.randint(5, 400)),
                    )
                )
        ComponentStatusChange.objects.bulk_create(changes)
        body = "We are investigating **elevated error rates**. More details will follow as we learn more."
        for i in range(200):
            started = now - timedelta(days=rng.uniform(1, 90))
            incident = PublicIncident.objects.create(
                page=page,
                name=f"Past incident {i}",
                status="resolved",
                impact=rng.choice(["minor", "major"]),
                started_at=started,
                resolved_at=started + timedelta(hours=2),
            )
            incident.components.set(rng.sample(components, 2))
            PublicUpdate.objects.bulk_create(
                [
                    PublicUpdate(
                        incident=incident,
                        status=s,
                        body=body,
                        body_html=markdown_to_html(body),
                        created_at=started + timedelta(minutes=40 * k),
                    )
                    for k, s in enumerate(["investigating", "identified", "resolved"])
                ]
            )
        public_incident_create(
            page=page,
            name="Open incident",
            body=body,
            impact="major",
            component_statuses={components[3].pk: "partial_outage"},
        )
        start = now + timedelta(days=1)
        maintenance_create(
            page=page,
            name="Planned upgrade",
            body=body,
            scheduled_for=start,
            scheduled_until=start + timedelta(hours=2),
            component_ids=[components[0].pk],
        )
    return {"components": len(components), "status_changes": len(changes), "incidents": 201}


def measure_render(runs: int) -> dict[str, Any]:
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from statuspage.selectors import uptime_memo_clear
    from statuspage.templatetags.statuspage_display import memo_clear

    client = Client()
    url = f"/status/{SLUG}/"
    client.get(url)  # warm-up: imports, template loading
    timings: list[float] = []
    cpu_ms: list[float] = []
    queries = 0
    size = 0
    for _ in range(runs):
        cache.clear()
        with CaptureQueriesContext(connection) as ctx:
            started, cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            cpu_ms.append((time.process_time() - cpu) * 1000)
        assert response.status_code == 200, response.status_code
        queries, size = len(ctx.captured_queries), len(response.content)
    gzip_size = len(client.get(url, HTTP_ACCEPT_ENCODING="gzip").content)
    cached = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(url)
        cached.append((time.perf_counter() - started) * 1000)
    cold: list[float] = []
    cold_cpu: list[float] = []
    for _ in range(max(5, runs // 2)):
        cache.clear()
        uptime_memo_clear()
        memo_clear()
        started, cpu = time.perf_counter(), time.process_time()
        assert client.get(url).status_code == 200
        cold.append((time.perf_counter() - started) * 1000)
        cold_cpu.append((time.process_time() - cpu) * 1000)
    timings.sort()
    return {
        "runs": runs,
        "median_ms": statistics.median(timings),
        "min_ms": timings[0],
        "max_ms": timings[-1],
        "p90_ms": timings[int(0.9 * (len(timings) - 1))],
        "queries": queries,
        "bytes": size,
        "gzip_bytes": gzip_size,
        "cached_median_ms": statistics.median(cached),
        "cpu_median_ms": statistics.median(cpu_ms),
        "cold_runs": len(cold),
        "cold_median_ms": statistics.median(cold),
        "cold_cpu_median_ms": statistics.median(cold_cpu),
    }


# --------------------------------------------------------------------------- load


async def _load(port: int, path: str, concurrency: int, duration: float, gzip: bool) -> dict[str, Any]:
    extra = "Accept-Encoding: gzip\r\n" if gzip else ""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n".encode()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    deadline = time.perf_counter() + duration

    async def client() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            data = await reader.read()
            writer.close()
            latencies.append((time.perf_counter() - started) * 1000)
            code = data[9:12].decode() if len(data) > 12 else "???"
            statuses[code] = statuses.get(code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "path": path,
        "gzip": gzip,
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "statuses": statuses,
        "p50_ms": latencies[len(latencies) // 2] if latencies else 0,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0,
    }


def load(port: int, path: str, concurrency: int, duration: float, gzip: bool = False) -> dict[str, Any]:
    return asyncio.run(_load(port, path, concurrency, duration, gzip))


# --------------------------------------------------------------------------- driver


def _django(url: str, *args: str) -> dict[str, Any]:
    from bench import ingest

    return ingest.module_json(url, "bench.statuspage_bench", *args)


def main() -> int:
    parser = argparse.ArgumentParser(description="status page benchmark")
    parser.add_argument("command", nargs="?", choices=["generate", "render"], help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "2")))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    args = parser.parse_args()
    if args.command:
        import django

        django.setup()
        result = generate() if args.command == "generate" else measure_render(args.runs)
        print(json.dumps(result))
        return 0

    from bench import ingest
    from bench.run import Databases

    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="sp-bench-"))
    dbs = None if args.sqlite else Databases()
    try:
        if dbs is None:
            url, database = f"sqlite:///{scratch / 'bench.sqlite3'}", f"SQLite {sqlite3.sqlite_version}"
        else:
            url = dbs.create("statuspage")
            database = f"PostgreSQL {dbs.server_version}"
        ingest.migrate(url)
        generated = _django(url, "generate")
        render = _django(url, "render", "--runs", str(11 if args.quick else args.runs))
        server = ingest.Gunicorn(url, args.workers)
        try:
            duration = 3.0 if args.quick else 8.0
            page_path = f"/status/{SLUG}/"
            bare_path = f"/bench/bare-get/?size={render['bytes']}"
            bare_gz_path = f"/bench/bare-get/?size={render['gzip_bytes']}"
            runs = [(bare_path, False), (page_path, False), (bare_gz_path, False), (page_path, True)]
            for path, gz in runs:
                load(server.port, path, args.concurrency, 1.0, gz)  # warm every worker's cache
            results = []
            for _ in range(2):  # alternate, so drift on a shared machine hits both alike
                for path, gz in runs:
                    results.append(load(server.port, path, args.concurrency, duration, gz))
        finally:
            server.stop()
    finally:
        if dbs is not None:
            dbs.close()
        shutil.rmtree(scratch, ignore_errors=True)

    def pick(path: str, gz: bool) -> list[dict[str, Any]]:
        return [r for r in results if r["path"] == path and r["gzip"] == gz]

    def rps(rows: list[dict[str, Any]]) -> float:
        return statistics.mean(r["rps"] for r in rows)

    def p50(rows: list[dict[str, Any]]) -> float:
        return statistics.mean(r["p50_ms"] for r in rows)

    bare, page = pick(bare_path, False), pick(page_path, False)
    bare_gz, page_gz = pick(bare_gz_path, False), pick(page_path, True)
    share = rps(page) / rps(bare) if rps(bare) else 0.0
    share_gz = rps(page_gz) / rps(bare_gz) if rps(bare_gz) else 0.0

    def ok(flag: bool) -> str:
        return "yes" if flag else "**NO**"

    gen, r = generated, render
    lines = [
        "# Status page benchmark",
        "",
        f"{os.cpu_count()} CPU, {database}, {gen['components']} components in 5 "
        f"groups, {gen['status_changes']:,} status changes over 95 days, {gen['incidents']} incidents "
        f"(3 updates each), page {r['bytes']:,} bytes; total {time.perf_counter() - started:.0f} s.",
        "",
        "| measure | value | target | met |",
        "|---|---:|---:|---|",
        f"| uncached render, median of {r['runs']} (min / p90 / max) | {r['median_ms']:.1f} ms "
        f"({r['min_ms']:.1f} / {r['p90_ms']:.1f} / {r['max_ms']:.1f}), {r['queries']} queries "
        f"| < {TARGET_RENDER_MS:.0f} ms | {ok(r['median_ms'] < TARGET_RENDER_MS)} |",
        f"| uncached render, CPU time of this process (median; the machine's other load excluded) | "
        f"{r['cpu_median_ms']:.1f} ms | < {TARGET_RENDER_MS:.0f} ms "
        f"| {ok(r['cpu_median_ms'] < TARGET_RENDER_MS)} |",
        f"| same, with the process's memo of past days also cleared (first render of a day in a "
        f"process), median of {r['cold_runs']} | {r['cold_median_ms']:.1f} ms "
        f"({r['cold_cpu_median_ms']:.1f} ms CPU) | | |",
        f"| cached page in-process, median | {r['cached_median_ms']:.2f} ms | | |",
        f"| cached page via gunicorn ({args.workers} sync workers, concurrency {args.concurrency}), "
        f"{r['bytes']:,} bytes | {rps(page):.0f} req/s (p50 {p50(page):.1f} ms) | | |",
        f"| bare Django view, same body size, same server | {rps(bare):.0f} req/s "
        f"(p50 {p50(bare):.1f} ms) | | |",
        f"| **cached page / bare view** | **{share:.0%}** | >= {TARGET_SHARE:.0%} "
        f"| {ok(share >= TARGET_SHARE)} |",
        f"| cached page gzip ({r['gzip_bytes']:,} bytes) / bare view of that size | {share_gz:.0%} "
        f"({rps(page_gz):.0f} vs {rps(bare_gz):.0f} req/s) | >= {TARGET_SHARE:.0%} "
        f"| {ok(share_gz >= TARGET_SHARE)} |",
        "",
        f"Statuses: page {page[0]['statuses']}, bare {bare[0]['statuses']}, "
        f"page gzip {page_gz[0]['statuses']}. Load average at the end: {os.getloadavg()[0]:.1f}.",
    ]
    text = "\n".join(lines)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "statuspage.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
