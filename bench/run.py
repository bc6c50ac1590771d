#!/usr/bin/env python
"""``make bench``: ingestion throughput/latency and admin changelist speed on PostgreSQL.

    .venv/bin/python bench/run.py [--quick] [--only ingest|changelist] [--workers N] [--threads N]

Without DATABASE_URL a throwaway PostgreSQL cluster is started (initdb into a temp dir,
free loopback port) and removed afterwards. With DATABASE_URL (postgres://, a role
allowed to CREATE DATABASE) two scratch databases are created next to the given one
and dropped afterwards; the given database itself is not touched.

Prints a markdown report and writes it to bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the repo, on the path
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench import ingest  # noqa: E402
from bench.pg import Cluster  # noqa: E402

LABELS = {"bare": "bare Django view", "pagerduty": "PagerDuty /v2/enqueue",
          "alertmanager": "Alertmanager webhook (1 alert)", "generic": "generic webhook"}
TARGET_SHARE, TARGET_P99_MS, TARGET_CHANGELIST_MS = 0.5, 50.0, 300.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Databases:
    """Scratch databases: in a throwaway cluster, or next to DATABASE_URL."""

    def __init__(self) -> None:
        self.given = os.environ.get("DATABASE_URL", "")
        self.cluster: Cluster | None = None
        self.created: list[str] = []
        if self.given and not self.given.startswith(("postgres://", "postgresql://")):
            raise SystemExit("bench needs PostgreSQL: DATABASE_URL must be postgres://... (or unset)")
        if not self.given:
            log("starting a throwaway PostgreSQL cluster")
            self.cluster = Cluster()
        self.server_version = self.durability = ""

    def create(self, purpose: str) -> str:
        name = f"ircore_bench_{purpose}_{uuid.uuid4().hex[:6]}"
        if self.cluster:
            url = self.cluster.createdb(name)
        else:
            with psycopg.connect(self.given, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = urlunsplit(urlsplit(self.given)._replace(path="/" + name))
        self.created.append(url)
        with psycopg.connect(url) as conn:
            self.server_version = conn.execute("SHOW server_version").fetchone()[0].split(" ")[0]
            self.durability = ", ".join(
                f"{name} {conn.execute(f'SHOW {name}').fetchone()[0]}"
                for name in ("fsync", "synchronous_commit")
            )
        return url

    def close(self) -> None:
        if self.cluster:
            self.cluster.stop()
            return
        with psycopg.connect(self.given, autocommit=True) as conn:
            for url in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')


def django_json(url: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=ingest.django_env(url), check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_changelist(dbs: Databases, quick: bool) -> dict[str, Any]:
    url = dbs.create("changelist")
    ingest.migrate(url)
    incidents, alerts = (20_000, 200_000) if quick else (100_000, 1_000_000)
    log(f"generating {incidents:,} incidents / {alerts:,} alerts")
    generated = django_json(url, "bench.changelist", "generate", "--incidents", str(incidents),
                            "--alerts", str(alerts))
    log(f"  done in {generated['seconds']:.0f} s (largest incident: {generated['max_alerts_per_incident']:,}"
        " alerts); measuring the admin changelist")
    measured = django_json(url, "bench.changelist", "measure", "--runs", "5" if quick else "9")
    return {"generated": generated, **measured}


def ok(flag: bool) -> str:
    return "yes" if flag else "**NO**"


def _label(r: dict) -> str:
    return (LABELS[r["target"]] + (" *new*" if r.get("new_incidents") else "")
            + (", `REDIS_URL` set" if r.get("variant") == "redis" else ""))


def _cpu_per_event(r: dict) -> float:
    return r["server_cpu_ms_per_req"] + r["applier_cpu_ms_per_req"] + r.get("db_cpu_ms_per_req", 0)


def _ingest_rows(runs: list[dict]) -> list[dict]:
    """One row per endpoint, concurrency and configuration, in the order first run: its
    best round, compared with the bare view's best round of the same concurrency and
    configuration (throughput, and CPU per event), and every round's verification."""
    def key(r: dict) -> tuple:
        return r["target"], r["concurrency"], r.get("variant", ""), bool(r.get("new_incidents"))

    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault(key(r), []).append(r)
    best = {k: max(group, key=lambda r: r["rps"]) for k, group in groups.items()}
    rows = []
    for k, group in groups.items():
        run, base = best[k], best.get(("bare", k[1], k[2], False))
        # Each round against the bare view's run of the same round (minutes apart at most).
        bare_rounds = {r.get("round", 0): r for r in groups.get(("bare", k[1], k[2], False), [])}
        paired = [r["rps"] / bare_rounds[r.get("round", 0)]["rps"] for r in group
                  if r.get("round", 0) in bare_rounds and bare_rounds[r.get("round", 0)]["rps"]]
        rows.append({
            "run": run,
            "rounds": len(group),
            "paired": paired,
            "ratio": run["rps"] / base["rps"] if base and base["rps"] else None,
            "cost_ratio": _cpu_per_event(base) / _cpu_per_event(run) if base else None,
            "verified": "; ".join(sorted({r["verified"] for r in group})),
        })
    return rows


def _redone_note(redone: list[dict]) -> str:
    if not redone:
        return " (none was, this run)"
    return " (redone this run: " + ", ".join(
        f"{LABELS[r['target']]} c={r['concurrency']} at {r['rps']:.0f}/s" for r in redone) + ")"


def report(args: argparse.Namespace, dbs: Databases, ingest_res: dict | None, cl: dict | None,
           elapsed: float) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    lines = [
        f"# ircore benchmark ({'quick' if args.quick else 'full'}, commit {commit})",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPU, Python {platform.python_version()}, "
        f"PostgreSQL {dbs.server_version} ({dbs.durability}), "
        f"`{' '.join(['python', 'bench/run.py', *sys.argv[1:]])}`, total {elapsed:.0f} s. "
        f"Load average at start {args.load_start:.1f}, at end {os.getloadavg()[0]:.1f}: on a shared "
        "machine other processes take CPU from the server and the database alike, so compare "
        "figures within one run (bare and ingestion are interleaved), not across runs.",
        "",
    ]
    if ingest_res:
        runs = ingest_res["runs"]
        rows = _ingest_rows(runs)
        lines += [
            "## Ingestion (gunicorn + the clock's queue applier, PostgreSQL, events fully processed)",
            "",
            f"gunicorn with {ingest_res['workers']} workers of {ingest_res.get('threads', 1)} threads "
            "for every target (the Procfile's defaults), and `manage.py clock`, "
            "whose applier turns queued events into alerts and incidents; load from a separate "
            f"process, {ingest_res['duration']:g} s per run, closed loop, then until the queue is empty "
            "again: events/s counts events fully processed (`drain`: how long after the last answer the "
            "last event was applied); latencies are the answers'. Each run uses "
            f"{ingest_res['keys_per_run']} dedup keys in turn whose incidents were opened beforehand, "
            "so each event is added to an open incident (the common case); rows marked *new* send "
            f"{ingest.NEW_INCIDENTS_PER_RUN:,} events with a fresh key each, so each one opens an incident "
            "(and is paged). Rows with `REDIS_URL` set: the production configuration (README), where "
            "Redis holds the rate limits shared by all processes and django-q2's queue; the bare view "
            f"is measured again on that server. At concurrency {ingest.TARGET_CONCURRENCY} each target "
            f"runs in {ingest.ROUNDS_AT_TARGET} rounds, interleaved with the bare view's; the table "
            "shows the best round, for the bare view as for the endpoints (a round in which gunicorn's "
            "workers got an uneven share of the keep-alive connections, one worker saturated and the "
            "machine not, or other work took the CPU measures the machine, not the code), and a "
            "target counts as met only if the median of each round against its own bare round meets "
            "it too. A round in which one worker did more than "
            f"{ingest.LOPSIDED_SHARE:.0%} of the work (it got every keep-alive connection) is redone, "
            f"up to {ingest.LOPSIDED_RETRIES} times, whichever the target"
            f"{_redone_note(ingest_res.get('redone', []))}. `verified`: the "
            "database holds exactly one processed alert per 2xx answer, each on an incident, with at "
            "least one timeline entry (other apps add more on a trigger).",
            "",
            "| endpoint | concurrency | events/s | vs bare | p50 ms | p90 ms | p99 ms | drain ms | "
            "CPU ms/event gunicorn + applier + PostgreSQL | verified |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in rows:
            r = row["run"]
            ratio = f"{row['ratio']:.0%}" if row["ratio"] is not None else "-"
            lines.append(
                f"| {_label(r)} | {r['concurrency']} | "
                f"{r['rps']:.0f} | {ratio} | "
                f"{r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} | {r['drain_s'] * 1000:.0f} | "
                f"{r['server_cpu_ms_per_req']:.2f} + {r['applier_cpu_ms_per_req']:.2f} + "
                f"{r.get('db_cpu_ms_per_req', 0):.2f} | {row['verified']} |"
            )
        for target, reason in ingest_res["skipped"].items():
            lines.append(f"| {LABELS[target]} | - | - | - | - | - | - | - | - | not measured: {reason} |")
        lines += ["", "Targets at concurrency 8 (>= 50% of the bare view's events/s, p99 < 50 ms). "
                  "`CPU cost ratio`: the bare view's CPU per request (gunicorn + applier + PostgreSQL) "
                  "over the endpoint's per event, the share of the bare throughput a CPU-bound server can "
                  "reach whatever else runs on the machine:", ""]
        for row in rows:
            r, share = row["run"], row["ratio"]
            measured_target = r["concurrency"] == 8 and r["target"] != "bare" and not r.get("new_incidents")
            if measured_target and share is not None:
                rounds = f" (best of {row['rounds']} rounds)" if row["rounds"] > 1 else ""
                # Met only if the best round and the typical round both reach it: on a noisy
                # machine the best-against-best ratio alone flatters whichever side was lucky.
                met = share >= TARGET_SHARE
                paired = ""
                if len(row["paired"]) > 1:
                    median = statistics.median(row["paired"])
                    met = met and median >= TARGET_SHARE
                    paired = (f", median {median:.0%} of each round against that round's bare view ("
                              + ", ".join(f"{x:.0%}" for x in row["paired"]) + ")")
                lines.append(f"- {_label(r)}: {share:.0%} of bare{rounds}{paired}: {ok(met)}; "
                             f"p99 {r['p99_ms']:.1f} ms ({ok(r['p99_ms'] < TARGET_P99_MS)}), "
                             f"CPU cost ratio {row['cost_ratio']:.0%}")
        storm = ingest_res["storm"]
        if storm:
            db = storm["db"]
            lines += [
                "",
                f"Alert storm: {storm['requests']:,} events over 100 keys, in random order, "
                f"concurrency 32, via {LABELS[storm['target']]}: {db['incidents']} incidents, "
                f"{db['alerts']:,} alerts in {storm['elapsed']:.1f} s ({storm['rps']:.0f} events/s, "
                f"p99 {storm['p99_ms']:.0f} ms) - {storm['verified']} "
                f"(expected exactly 100 incidents and {storm['requests']:,} alerts).",
            ]
        lines.append("")
    if cl:
        gen = cl["generated"]
        lines += [
            f"## Admin incidents changelist ({gen['incidents']:,} incidents, {gen['alerts']:,} alerts)",
            "",
            f"Server time in-process (Django test Client), median of {cl['runs']} runs after a warm-up; "
            f"data generated in {gen['seconds']:.0f} s. Target: < {TARGET_CHANGELIST_MS:.0f} ms. "
            "CPU ms: median CPU time the request used in Django and in PostgreSQL: what the page "
            "costs whatever else runs on the machine (wall time includes waiting for a CPU).",
            "",
            "| user | page | status | rows | median ms | min ms | max ms | CPU ms (Django + PostgreSQL) "
            "| queries | < 300 ms |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for p in cl["pages"]:
            fine = p["status"] == 200 and p["median_ms"] < TARGET_CHANGELIST_MS
            lines.append(
                f"| {p['user']} | {p['page']} (`{p['url'].split('/')[-1] or '/'}`) | {p['status']} | "
                f"{p['rows'] if p['rows'] is not None else '-'} | {p['median_ms']:.0f} | {p['min_ms']:.0f} | "
                f"{p['max_ms']:.0f} | {p.get('cpu_ms', 0):.0f} | {p['queries']} | "
                f"{ok(fine)}{' ' + p['note'] if p['note'] else ''} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="ircore benchmarks (make bench)")
    parser.add_argument("--quick", action="store_true", help="shorter runs, 20k/200k changelist data")
    parser.add_argument("--only", choices=["ingest", "changelist", "profile"],
                        help="profile: SQL per event and a cProfile of the ingest path (not in the table)")
    # The Procfile's defaults (WEB_CONCURRENCY, WEB_THREADS).
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "2")),
                        help="gunicorn worker processes (default 2, or BENCH_WORKERS)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "4")),
                        help="threads per gunicorn worker (default 4, or BENCH_THREADS)")
    parser.add_argument("--duration", type=float, help="seconds per ingestion run (default 8, quick 3)")
    parser.add_argument("--targets", default="bare,pagerduty,alertmanager,generic")
    args = parser.parse_args()
    started = time.perf_counter()
    args.load_start = os.getloadavg()[0]
    # SIGTERM (CI timeout, a parent stopping us) unwinds like Ctrl-C, so gunicorn and the
    # PostgreSQL cluster are stopped and the temp directory removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    dbs = Databases()
    ingest_res = cl = None
    try:
        if args.only == "profile":
            url = dbs.create("profile")
            ingest.migrate(url)
            for target in args.targets.split(","):
                if target != "bare":
                    subprocess.run([sys.executable, "-m", "bench.profile_ingest", "--target", target],
                                   cwd=ROOT, env=ingest.django_env(url), check=False)
            return 0
        if args.only in (None, "ingest"):
            log("ingestion benchmark")
            ingest_res = ingest.run(
                dbs.create("ingest"), targets=args.targets.split(","), concurrencies=[1, 8, 32],
                duration=args.duration or (3.0 if args.quick else 8.0),
                workers=args.workers, threads=args.threads,
                storm_events=2_000 if args.quick else 10_000, storm_keys=100, log=log,
            )
        if args.only in (None, "changelist"):
            cl = run_changelist(dbs, args.quick)
    finally:
        dbs.close()
    text = report(args, dbs, ingest_res, cl, time.perf_counter() - started)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.md").write_text(text)
    (out / "latest.json").write_text(json.dumps({"ingest": ingest_res, "changelist": cl}, indent=1))
    print(text)
    log(f"written to {out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
