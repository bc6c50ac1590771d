"""Crash safety with the real processes on PostgreSQL: two `clock`s and two django-q2
`qcluster` workers run an escalation for many incidents while one worker is killed
(SIGKILL, whole process group) half-way and restarted. Every step's page must reach
the SMTP server exactly once: one notification, one Message-ID per (incident, step,
person). The one window no sender can close is a crash after the SMTP server accepted
a message and before the database recorded it: that message is sent again after the
send lease, with the same Message-ID (mail systems drop the copy); at most one per
worker process killed. Time between steps is fast-forwarded by moving the
escalations' ``next_at`` (the clock still does the claiming and dispatching)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.utils import timezone

from incidents.events import AlertEvent
from incidents.services import alert_ingest
from ircore.testing import free_loopback_port, process_children
from oncall.models import Escalation, EscalationChain, EscalationStep, Notification

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres
INCIDENTS = 25


class Collector:
    def __init__(self):
        self.messages: list[tuple[str, str, str]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        import email

        message = email.message_from_bytes(envelope.content)
        for rcpt in envelope.rcpt_tos:
            self.messages.append((message["Subject"], rcpt, message["Message-ID"]))
        return "250 OK"


class Processes:
    def __init__(self, env: dict[str, str], logdir: Path):
        self.env, self.logdir, self.procs = env, logdir, {}

    def start(self, name: str, *args: str) -> None:
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, stdout=log, stderr=log,
            start_new_session=True,
        )

    def kill(self, name: str) -> None:
        """A crash of the whole service: ``qcluster`` runs its cluster in a session of its
        own (ircore/management/commands/qcluster.py), killed first, so that it does not
        get the orderly stop its supervisor's death would give it."""
        proc = self.procs.pop(name)
        for child in process_children(proc.pid):
            os.killpg(child, signal.SIGKILL)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def _run_scenario(tmp_path, service_a, make_integration, users, extra_env: dict[str, str]) -> None:
    chain = EscalationChain.objects.create(team=service_a.team, name="Crash", is_default=True)
    for position, user in enumerate(users):
        EscalationStep.objects.create(chain=chain, position=position, delay_minutes=1).users.set([user])
    collector = Collector()
    smtp = Controller(collector, hostname="127.0.0.1", port=free_loopback_port())
    smtp.start()
    env = {
        **os.environ, "DATABASE_URL": _database_url(), "IRCORE_LOCAL_RUN": "1",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port), "Q_WORKERS": "2", "Q_TIMEOUT": "30", "Q_RETRY": "45",
        "ONCALL_CLAIM_LEASE_SECONDS": "3", "ONCALL_SEND_LEASE_SECONDS": "15", "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    procs = Processes(env, tmp_path)
    try:
        for name in ("clock1", "clock2"):
            procs.start(name, "clock", "--interval", "0.2")
        procs.start("worker1", "qcluster")
        procs.start("worker2", "qcluster")
        integration = make_integration(service_a)
        for i in range(INCIDENTS):
            event = AlertEvent(summary=f"crash test {i}", severity="SEV1")
            alert_ingest(integration=integration, event=event)
        expected = INCIDENTS * len(users)
        killed = False
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            if not killed and len(collector.messages) >= INCIDENTS // 2:
                procs.kill("worker1")  # in the middle of step 1's pages
                killed = True
                procs.start("worker1", "qcluster")
            # Time passes: whatever waits for its next step is due now.
            now = timezone.now()
            Escalation.objects.filter(state="active", next_at__gt=now).update(next_at=now)
            done = (not Escalation.objects.filter(state="active").exists()
                    and not Notification.objects.exclude(status="sent").exists()
                    and len(collector.messages) >= expected)
            if done:
                break
            time.sleep(0.3)
        time.sleep(2)  # anything late (a duplicate) would arrive now
    finally:
        procs.stop_all()
        smtp.stop()
    assert killed
    pages = Counter((subject, rcpt) for subject, rcpt, _ in collector.messages)
    ids = {(subject, rcpt): {mid for s, r, mid in collector.messages if (s, r) == (subject, rcpt)}
           for subject, rcpt in pages}
    assert len(pages) == expected, (len(pages), expected, sorted(Path(tmp_path).glob("*.log")))
    assert all(len(mids) == 1 for mids in ids.values()), {k: v for k, v in ids.items() if len(v) > 1}
    resent = sum(pages.values()) - expected
    assert resent <= 2, {k: v for k, v in pages.items() if v > 1}  # Q_WORKERS=2 sends in flight
    assert Notification.objects.filter(kind="page", status="sent").count() == expected
    assert Escalation.objects.filter(state="exhausted").count() == INCIDENTS


def test_kill_a_worker_mid_escalation_every_page_exactly_once(
    transactional_db, tmp_path, service_a, make_integration, responder, secondary, manager
):
    _run_scenario(tmp_path, service_a, make_integration, [responder, secondary, manager], {})


@pytest.mark.external
def test_two_workers_two_clocks_redis_broker_no_duplicates(
    transactional_db, tmp_path, service_a, make_integration, responder, secondary, manager, redis_url
):
    _run_scenario(tmp_path, service_a, make_integration, [responder, secondary, manager],
                  {"REDIS_URL": redis_url})


def test_concurrent_runs_of_one_step_page_once(transactional_db, settings, service_a, make_integration,
                                               responder, secondary):
    """Four workers handed the same due step at the same instant (two clocks, a retried
    task): the row lock and the fence let one run it; every page is sent once."""
    import threading

    from django.core import mail
    from django.db import connections

    from oncall.escalation import escalation_step_run
    from oncall.notify import notification_send

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    chain = EscalationChain.objects.create(team=service_a.team, name="Race", is_default=True)
    EscalationStep.objects.create(chain=chain, position=0).users.set([responder, secondary])
    EscalationStep.objects.create(chain=chain, position=1).users.set([responder])
    incident = alert_ingest(integration=make_integration(service_a),
                            event=AlertEvent(summary="race", severity="SEV1")).incident
    esc = Escalation.objects.get(incident=incident)  # step 1 queued, no worker running
    barrier = threading.Barrier(4)
    results: list[list[int]] = []

    def worker() -> None:
        try:
            barrier.wait()
            ids = escalation_step_run(escalation_id=esc.pk, fence=esc.fence)
            for notification_id in ids:
                notification_send(notification_id=notification_id)
            results.append(ids)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(len(ids) for ids in results) == [0, 0, 0, 2]
    assert sorted(m.to[0] for m in mail.outbox) == ["rita@example.com", "sam@example.com"]
    assert Notification.objects.filter(incident=incident, status="sent").count() == 2
    esc.refresh_from_db()
    assert esc.step_index == 1 and esc.state == "active"
