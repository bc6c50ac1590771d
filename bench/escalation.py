#!/usr/bin/env python
"""Escalation benchmark with the real processes on PostgreSQL:

    .venv/bin/python bench/escalation.py [--incidents 200] [--redis]

gunicorn (web), one ``qcluster`` (worker) and one ``clock`` run against a throwaway
PostgreSQL cluster (or DATABASE_URL's server, in a scratch database); a local aiosmtpd
server receives the mail. It measures

1. alert to page: from the 202 of a generic-webhook alert to the page email arriving at
   the SMTP server, one alert at a time (each opens an incident, step 1 pages at once);
2. step timing: step 2 of each chain is due one minute after step 1; how late it runs
   (its timeline entry) and how late its email arrives, after the due time.

Targets (issue 4): alert to page p50 < 1 s, p99 < 2 s; steps within 2 s of due (p99).
"""

from __future__ import annotations

import argparse
import asyncio  # noqa: F401 - aiosmtpd's handler runs in its own loop
import email
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402

from bench.pg import Cluster  # noqa: E402
from ircore.testing import free_loopback_port  # noqa: E402

PY = sys.executable
SETUP = """
import json
from django.contrib.auth import get_user_model
from incidents.models import Integration, Service
from ircore.models import Team
from oncall.models import EscalationChain, EscalationStep
User = get_user_model()
team = Team.objects.create(name="Bench", slug="bench")
users = []
for name in ("first", "second"):
    user = User.objects.create_user(username=name, email=f"{name}@bench.example", is_staff=True)
    team.memberships.create(user=user, role="responder")
    users.append(user)
service = Service.objects.create(team=team, name="bench-service")
chain = EscalationChain.objects.create(team=team, name="Bench", is_default=True)
EscalationStep.objects.create(chain=chain, position=0, delay_minutes=1).users.set([users[0]])
EscalationStep.objects.create(chain=chain, position=1, delay_minutes=1).users.set([users[1]])
integration = Integration.objects.create(service=service, kind="generic", name="bench")
print(json.dumps({"token": integration.token}))
"""
REPORT = """
import json
from incidents.models import Incident, TimelineEntry
rows = {}
for e in TimelineEntry.objects.filter(kind="escalation", message__startswith="Step "):
    rows.setdefault(e.incident_id, {})[e.data.get("step")] = e.created_at.timestamp()
titles = dict(Incident.objects.values_list("pk", "title"))
print(json.dumps({titles[k]: v for k, v in rows.items()}))
"""


class Collector:
    def __init__(self) -> None:
        self.arrivals: dict[tuple[str, str], float] = {}

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        now = time.time()
        subject = email.message_from_bytes(envelope.content)["Subject"] or ""
        for rcpt in envelope.rcpt_tos:
            self.arrivals.setdefault((subject, rcpt), now)
        return "250 OK"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--redis", action="store_true", help="django-q2 with a local redis-server broker")
    args = parser.parse_args()

    cluster = None
    given = os.environ.get("DATABASE_URL", "")
    procs: list[subprocess.Popen] = []
    smtp = None
    try:
        if given:
            raise SystemExit("run without DATABASE_URL: the benchmark starts its own PostgreSQL cluster")
        cluster = Cluster()
        url = cluster.createdb(f"bench_escalation_{uuid.uuid4().hex[:8]}")
        collector = Collector()
        smtp = Controller(collector, hostname="127.0.0.1", port=free_loopback_port())
        smtp.start()
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-" + "x" * 50, "LOG_LEVEL": "WARNING",
               "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
               "EMAIL_PORT": str(smtp.port), "ALLOWED_HOSTS": "127.0.0.1", "Q_WORKERS": "2"}
        if args.redis:
            binary = shutil.which("redis-server")
            if binary is None:
                raise SystemExit("--redis needs redis-server (apt-get install redis-server)")
            rport = free_loopback_port()
            procs.append(subprocess.Popen([binary, "--port", str(rport), "--bind", "127.0.0.1", "--save", ""],
                                          stdout=subprocess.DEVNULL, start_new_session=True))
            env["REDIS_URL"] = f"redis://127.0.0.1:{rport}/0"
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        out = subprocess.run([PY, "manage.py", "shell", "-c", SETUP], cwd=ROOT, env=env, check=True,
                             capture_output=True, text=True).stdout
        token = json.loads(out.strip().splitlines()[-1])["token"]
        port = free_loopback_port()
        for cmd in ([PY, "-m", "gunicorn", "ircore.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                     "--log-level", "warning"],
                    [PY, "manage.py", "qcluster"], [PY, "manage.py", "clock"]):
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True))
        endpoint = f"http://127.0.0.1:{port}/integrations/generic/{token}/"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
                break
            except OSError:
                time.sleep(0.3)
        time.sleep(3)  # the worker and the clock are up

        answered: dict[str, float] = {}
        for i in range(args.incidents):
            summary = f"bench incident {i} {uuid.uuid4().hex[:6]}"
            body = json.dumps({"summary": summary, "severity": "critical"}).encode()
            headers = {"Content-Type": "application/json"}
            request = urllib.request.Request(endpoint, data=body, headers=headers)
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 202, response.status
            answered[summary] = time.time()
            time.sleep(0.05)
        # Step 2 of the last incident is due a minute after its step 1.
        deadline = time.time() + 120
        while time.time() < deadline and len(collector.arrivals) < 2 * args.incidents:
            time.sleep(0.5)
        steps = json.loads(subprocess.run([PY, "manage.py", "shell", "-c", REPORT], cwd=ROOT, env=env,
                                          check=True, capture_output=True, text=True).stdout.strip()
                           .splitlines()[-1])
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
        if smtp is not None:
            smtp.stop()
        if cluster is not None:
            cluster.stop()

    def arrival(summary: str, rcpt: str) -> float | None:
        for (subject, to), at in collector.arrivals.items():
            if to == rcpt and subject.endswith(f"{summary} on bench-service"):
                return at
        return None

    page, step_run, step_mail = [], [], []
    missing = 0
    for summary, t0 in answered.items():
        first = arrival(summary, "first@bench.example")
        second = arrival(summary, "second@bench.example")
        runs = steps.get(summary, {})
        if first is None or second is None or "0" not in runs or "1" not in runs:
            missing += 1
            continue
        page.append(first - t0)
        due = runs["0"] + 60
        step_run.append(runs["1"] - due)
        step_mail.append(second - due)
    broker = "Redis" if args.redis else "PostgreSQL (ORM)"
    print(f"\nescalation benchmark: {args.incidents} incidents, PostgreSQL 15, django-q2 broker {broker}, "
          f"1 gunicorn (2 workers) + 1 qcluster (2 workers) + 1 clock; {missing} incomplete\n")
    print("| measure | p50 | p99 | max | target |\n| --- | --- | --- | --- | --- |")
    for label, values, target in (
        ("alert 202 -> page email at the SMTP server", page, "p50 < 1 s, p99 < 2 s"),
        ("step 2 runs after its due time", step_run, "p99 < 2 s"),
        ("step 2 email arrives after its due time", step_mail, "-"),
    ):
        if values:
            print(f"| {label} | {pct(values, .5) * 1000:.0f} ms | {pct(values, .99) * 1000:.0f} ms | "
                  f"{max(values) * 1000:.0f} ms | {target} |")
    if page:
        print(f"\nmean alert to page: {statistics.mean(page) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
