"""Heartbeat integrations end to end over HTTP, and the clock's registry/command."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from incidents.models import Incident
from ircore.clock import clock_jobs, clock_tick
from oncall.models import HeartbeatState

pytestmark = pytest.mark.django_db


@pytest.fixture
def heartbeat(service_a, make_integration):
    return make_integration(service_a, kind="heartbeat", options={"interval": 60, "grace": 30})


def url(integration) -> str:
    return f"/integrations/heartbeat/{integration.token}/"


def test_missed_heartbeat_opens_an_incident_and_pings_resolve_it(clock, client, heartbeat, chain):
    response = client.post(url(heartbeat))
    assert response.status_code == 202 and response.json()["status"] == "ok"
    state = HeartbeatState.objects.get(integration=heartbeat)
    assert state.last_ping_at == clock.now and not state.expired
    clock.advance(seconds=89)
    assert not Incident.objects.exists()
    clock.advance(seconds=1)
    incident = Incident.objects.get()
    assert incident.status == "triggered" and "missed" in incident.title and incident.severity == "SEV2"
    clock.advance(minutes=10)
    assert Incident.objects.count() == 1 and incident.alerts.count() == 1  # once per silence
    assert client.get(url(heartbeat)).status_code == 202  # GET works too (cron + curl)
    incident.refresh_from_db()
    assert incident.status == "resolved"
    clock.advance(seconds=60)
    assert Incident.objects.filter(status="triggered").count() == 0


def test_heartbeat_bad_input(clock, client, heartbeat, service_a, make_integration):
    assert client.post("/integrations/heartbeat/nope/").status_code == 404
    generic = make_integration(service_a, kind="generic")
    assert client.post(url(generic)).status_code == 404  # not a heartbeat integration
    assert client.put(url(heartbeat)).status_code == 405
    bad = make_integration(service_a, kind="heartbeat", options={"interval": "often"})
    response = client.post(url(bad))
    assert response.status_code == 400 and "interval" in response.json()["errors"][0]
    assert not HeartbeatState.objects.filter(integration=bad).exists()
    heartbeat.enabled = False
    heartbeat.save()
    assert client.post(url(heartbeat)).status_code == 404


def test_oncall_registers_its_clock_jobs_and_the_command_runs_them(clock, capsys):
    names = {job.name for job in clock_jobs()}
    assert {"escalation_steps", "notifications", "ack_timeouts", "auto_resolve", "heartbeats"} <= names
    call_command("clock", "--once")
    out = capsys.readouterr().out
    assert "escalation_steps: 0" in out and "heartbeats: 0" in out


def test_a_failing_job_does_not_stop_the_others(clock):
    from ircore import clock as registry

    def broken(now):
        raise RuntimeError("boom")

    registry.clock_job_register("zz_broken", broken)
    try:
        results = clock_tick(force=True)
    finally:
        registry._jobs.pop("zz_broken")
    assert results["zz_broken"] == -1 and results["escalation_steps"] == 0
