"""What `make run` relies on: the demo data command (idempotent, generated admin
password kept 0600) and the welcome banner whose example commands must really work."""

from __future__ import annotations

import io
import json
import shlex
import socket
import stat
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from incidents.alert_queue import queue_drain
from incidents.models import (
    Alert,
    Incident,
    Integration,
    QueuedEvent,
    Service,
    TimelineEntry,
    TriageRule,
)
from ircore.management.commands import _examples
from ircore.models import Team, TeamMembership


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (
        get_user_model(), Team, TeamMembership, Service, Integration, TriageRule, Incident, Alert,
        TimelineEntry)}


@pytest.mark.django_db(transaction=True)
def test_demo_creates_everything_once_and_keeps_user_changes(var_dir):
    first = run("ircore_demo")
    assert "superuser admin" in first and "demo alert" in first
    before = counts()
    assert before["Team"] == 2 and before["Service"] == 3 and before["Incident"] == 2
    kinds = set(Integration.objects.values_list("kind", flat=True))
    assert kinds == {kind for kind, _ in Integration.Kind.choices}
    # The user edits demo data; a re-run changes nothing and keeps the edit.
    Service.objects.filter(name="payments-api").update(description="ours now")
    assert "nothing changed" in run("ircore_demo")
    assert counts() == before
    assert Service.objects.get(name="payments-api").description == "ours now"


@pytest.mark.django_db(transaction=True)
def test_admin_password_is_generated_once_private_and_works(var_dir):
    run("ircore_demo", "--admin-only")
    path = var_dir / "admin_password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = path.read_text().strip()
    assert len(password) >= 16
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert Team.objects.count() == 0  # --admin-only: no demo data
    run("ircore_demo")
    assert path.read_text().strip() == password
    # Demo users share the generated password and are staff in their team only.
    maya = get_user_model().objects.get(username="maya")
    assert maya.check_password(password) and maya.is_staff and not maya.is_superuser
    assert list(maya.team_memberships.values_list("team__slug", "role")) == [("payments", "manager")]


@pytest.mark.django_db(transaction=True)
def test_demo_incidents_go_through_the_pipeline(var_dir):
    run("ircore_demo")
    db_down = Incident.objects.get(dedup_key="demo-payments-db")
    # "database down" matched the demo triage rule.
    assert (db_down.severity, db_down.priority, db_down.status) == ("SEV1", "P1", "triggered")
    assert db_down.timeline.filter(kind="triage").exists()
    acked = Incident.objects.get(dedup_key="demo-checkout-errors")
    assert acked.status == "acknowledged" and acked.acknowledged_by.username == "rita"


@pytest.mark.django_db(transaction=True)
def test_welcome_prints_login_and_a_working_command_per_integration(var_dir, client):
    run("ircore_demo")
    password = (var_dir / "admin_password").read_text().strip()
    banner = run("ircore_welcome")
    assert "http://localhost:8000/admin/" in banner
    assert f"admin / {password}" in banner
    email = Integration.objects.get(kind="email")
    assert f"address {email.token}@" in banner
    commands = [line.strip() for line in banner.splitlines() if line.strip().startswith("curl ")]
    # generic, PagerDuty, Alertmanager, Grafana (heartbeat too once it has an endpoint).
    assert len(commands) >= 4
    # Run each printed command through the test client: same URL, same body; then apply
    # the queue as the clock's applier would.
    for command in commands:
        argv = shlex.split(command)
        url = argv[argv.index("-X") + 2]
        body = argv[argv.index("-d") + 1] if "-d" in argv else ""
        before = Alert.objects.count()
        response = client.post(url.removeprefix("http://localhost:8000"), body,
                               content_type="application/json")
        assert response.status_code == 202, (command, response.content)
        answer = response.json()
        sent = json.loads(body) if body else {}
        if "/integrations/heartbeat/" in url:  # a ping, recorded at once: no event
            assert answer["status"] == "ok" and "next_expected_before" in answer, command
            assert not QueuedEvent.objects.exists()
            continue
        if "/integrations/pagerduty/" in url:
            assert answer == {"status": "success", "message": "Event processed",
                              "dedup_key": sent["dedup_key"]}, command
        elif "/integrations/generic/" in url:
            assert answer == {"status": "accepted", "message": "Event accepted",
                              "dedup_key": sent["dedup_key"]}, command
        else:  # Alertmanager, Grafana: one event per alert (or per group)
            assert "/integrations/alertmanager/" in url or "/integrations/grafana/" in url, command
            assert answer["status"] == "accepted" and answer["events"] == len(answer["dedup_keys"]) >= 1
            assert answer["message"] == f"{answer['events']} event(s) accepted"
        assert QueuedEvent.objects.exists() and Alert.objects.count() == before
        assert queue_drain() >= 1
        new = Alert.objects.order_by("-pk")[: Alert.objects.count() - before]
        assert new and all(alert.outcome != "failed" for alert in new), command
    assert not QueuedEvent.objects.exists()
    assert Incident.objects.get(dedup_key="payments-db-down").severity == "SEV1"


@pytest.mark.django_db
def test_every_http_kind_has_an_example_and_an_endpoint(service_a, make_integration):
    for kind in ("generic", "pagerduty", "alertmanager", "grafana"):
        integration = make_integration(service_a, kind)
        assert _examples.endpoint_available(integration.url), kind
        assert _examples.curl_command(integration) is not None, kind
    assert _examples.curl_command(make_integration(service_a, "email")) is None
    assert not _examples.endpoint_available("http://localhost:8000/integrations/nope/x/")
    assert not _examples.endpoint_available("https://elsewhere.example.com/integrations/generic/x/")


def test_welcome_says_so_when_the_password_was_changed(var_dir, django_user_model, db):
    run("ircore_demo", "--admin-only")
    admin = django_user_model.objects.get(username="admin")
    admin.set_password("something-else-entirely")
    admin.save()
    assert "changed since" in run("ircore_welcome")


@pytest.mark.django_db(transaction=True)
def test_local_setup_runs_every_step_and_can_run_again(var_dir, settings):
    settings.STATIC_ROOT = var_dir / "static"
    first = run("ircore_local_setup", "--no-demo")
    assert "superuser admin" in first and "Console:" in first
    assert (var_dir / "static" / "admin" / "css" / "base.css").exists()
    assert Team.objects.count() == 0
    second = run("ircore_local_setup")
    assert "team Payments" in second and "curl -sS -X POST" in second
    assert "nothing changed" in run("ircore_local_setup")


@pytest.mark.django_db
def test_printed_email_command_delivers_to_the_smtp_listener_address(settings, service_a, make_integration):
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.INBOUND_SMTP_HOST, settings.INBOUND_SMTP_PORT = "127.0.0.1", port
    integration = make_integration(service_a, "email")
    argv = shlex.split(_examples.email_command(integration))
    assert argv[:2] == ["python3", "-c"]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        subprocess.run([sys.executable, *argv[1:]], check=True, timeout=60)
    finally:
        controller.stop()
    assert received[0].rcpt_tos == [f"{integration.token}@{settings.INBOUND_EMAIL_DOMAIN}"]
    assert b"Subject: PROBLEM: web01 HTTP is CRITICAL" in received[0].content
