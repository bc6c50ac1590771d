"""The real Prometheus Alertmanager (Debian's prometheus-alertmanager) sending its
webhook to a live ircore: alerts posted to Alertmanager's API open incidents, and
ending them resolves the incidents. ircore queues what Alertmanager sends; every look
at the database applies the queue first, as the clock's applier would."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from incidents.alert_queue import queue_drain
from incidents.models import Alert, Incident, QueuedEvent
from ircore.testing import free_loopback_port

BINARY = "/usr/bin/prometheus-alertmanager"
DEADLINE = 20.0  # seconds for each wait; Alertmanager is told to flush every second

pytestmark = [
    pytest.mark.external,
    pytest.mark.skipif(
        shutil.which(BINARY) is None,
        reason=f"{BINARY} is not installed (apt-get install prometheus-alertmanager; .ci/run does)",
    ),
]


def _wait_for(what: str, check: Callable[[], bool], log: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; Alertmanager log:\n{log.read_text()[-3000:]}")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def alertmanager(request, tmp_path, live_http_server, service_a, make_integration):
    integration = make_integration(service_a, "alertmanager", options=getattr(request, "param", {}))
    webhook = f"{live_http_server.url}/integrations/alertmanager/{integration.token}/"
    config = tmp_path / "alertmanager.yml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "route": {"receiver": "ircore", "group_by": ["alertname"], "group_wait": "1s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "ircore",
                       "webhook_configs": [{"url": webhook, "send_resolved": True}]}],
    }))
    port = free_loopback_port()
    log = tmp_path / "alertmanager.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [BINARY, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
             "--log.level=debug"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    api = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"alertmanager exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{api}/-/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        _wait_for("Alertmanager to be ready", ready, log)
        yield api, integration, log, live_http_server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _post_alerts(api: str, alerts: list[dict]) -> None:
    request = urllib.request.Request(
        f"{api}/api/v2/alerts", data=json.dumps(alerts).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _disk_alerts() -> list[dict]:
    # Started "now": Alertmanager flushes a group at once when an alert is already older
    # than group_wait, which could send the first alert before the second is grouped.
    started = datetime.now(UTC)
    return [
        {
            "labels": {"alertname": "DiskFull", "instance": host, "severity": "critical"},
            "annotations": {"summary": f"Disk full on {host}", "runbook_url": "https://runbooks/disk"},
            "startsAt": _rfc3339(started),
            "generatorURL": "http://prometheus.local:9090/graph?g0.expr=disk",
        }
        for host in ("db1", "db2")
    ]


def _ended(alert: dict) -> dict:
    # In the past (so resolved) yet after startsAt: the first notification alone takes
    # longer than group_wait (1 s).
    return {**alert, "endsAt": _rfc3339(datetime.now(UTC) - timedelta(milliseconds=200))}


def test_alertmanager_opens_and_resolves_incidents(alertmanager):
    api, integration, log, server = alertmanager
    alerts = _disk_alerts()
    _post_alerts(api, alerts)

    def incidents(**filters) -> int:
        with server.lock:
            queue_drain()
            return Incident.objects.filter(service=integration.service, **filters).count()

    _wait_for("two incidents", lambda: incidents(status="triggered") == 2, log)
    with server.lock:
        rows = list(Incident.objects.order_by("title").values("title", "severity", "dedup_key"))
    assert [r["title"] for r in rows] == ["Disk full on db1", "Disk full on db2"]
    assert {r["severity"] for r in rows} == {"SEV1"}
    assert all(len(r["dedup_key"]) == 16 for r in rows)  # Alertmanager's fingerprints

    _post_alerts(api, [_ended(alert) for alert in alerts])
    _wait_for("both incidents resolved", lambda: incidents(status="resolved") == 2, log)
    assert incidents() == 2
    with server.lock:
        outcomes = sorted(Alert.objects.filter(outcome__in=["opened", "resolved"])
                          .values_list("dedup_key", "outcome"))
        assert not QueuedEvent.objects.exists()
    keys = sorted(r["dedup_key"] for r in rows)
    assert outcomes == [(keys[0], "opened"), (keys[0], "resolved"), (keys[1], "opened"),
                        (keys[1], "resolved")]


@pytest.mark.parametrize("alertmanager", [{"group_by": "group"}], indirect=True)
def test_group_mode_resolves_when_the_whole_group_is_resolved(alertmanager):
    api, integration, log, server = alertmanager
    alerts = _disk_alerts()
    _post_alerts(api, alerts)

    def incident() -> Incident | None:
        with server.lock:
            queue_drain()
            return Incident.objects.filter(service=integration.service).first()

    _wait_for("the group's incident", lambda: incident() is not None, log)
    opened = incident()
    assert opened.title.startswith("[FIRING:2]") and opened.dedup_key.startswith("{}:")

    # One alert of the group ends: Alertmanager sends the group again, still firing.
    _post_alerts(api, [_ended(alerts[0])])
    _wait_for("the partly resolved notification", lambda: incident().alert_count == 2, log)
    assert incident().status == "triggered"

    _post_alerts(api, [_ended(alerts[1])])
    _wait_for("the group's incident resolved", lambda: incident().status == "resolved", log)
    with server.lock:
        assert Incident.objects.count() == 1
