"""The real ``pagerduty`` client library, unchanged, against a live ircore over HTTPS
with a certificate this test makes. The server queues events; the test applies the
queue (as the clock's applier would) before looking at alerts and incidents."""

from __future__ import annotations

import ssl

import pagerduty
import pytest

from incidents.alert_queue import queue_drain
from incidents.models import Alert, Incident, QueuedEvent, TimelineEntry


def _trusting(cert) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


@pytest.fixture
def events_client(live_https_server, service_a, make_integration):
    server, cert = live_https_server
    integration = make_integration(service_a, "pagerduty")
    client = pagerduty.EventsApiV2Client(
        integration.token, base_url=f"{server.url}/integrations/pagerduty", verify=_trusting(cert)
    )
    # A failing request must fail the test, not be retried for minutes.
    client.retry = {}
    client.max_network_attempts = 0
    yield client, integration
    client.close()


@pytest.fixture
def apply(live_https_server):
    """Apply the queued events in the test process; the lock keeps the server thread
    off the shared in-memory SQLite connection meanwhile."""
    server, _cert = live_https_server

    def run() -> int:
        with server.lock:
            return queue_drain()

    return run


def test_trigger_acknowledge_resolve_with_the_pagerduty_client(events_client, apply):
    client, integration = events_client
    key = client.trigger(
        "Disk almost full on db1", "db1.example.com", severity="error",
        custom_details={"free": "2%", "mount": "/var"},
        links=[{"href": "https://grafana.example.com/d/disk", "text": "Disk dashboard"}],
    )
    assert len(key) == 32  # generated on enqueue and answered, as PagerDuty does
    assert apply() == 1
    incident = Incident.objects.get(dedup_key=key)
    assert (incident.status, incident.severity, incident.priority) == ("triggered", "SEV2", "P2")
    alert = incident.alerts.get()
    assert alert.integration == integration and alert.source == "db1.example.com"
    assert "free: 2%" in alert.details
    assert alert.payload["routing_key"] == integration.token

    # The client's default severity is critical: the repeat raises the incident's.
    assert client.trigger("Disk almost full on db1", "db1.example.com", dedup_key=key) == key
    assert apply() == 1
    incident.refresh_from_db()
    assert incident.alert_count == 2 and incident.severity == "SEV1"

    assert client.acknowledge(key) == key
    assert apply() == 1
    incident.refresh_from_db()
    assert incident.status == "acknowledged"

    assert client.resolve(key) == key
    assert apply() == 1
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_at is not None
    assert list(incident.timeline.values_list("kind", flat=True)) == [
        "triggered", "alert", "severity", "acknowledged", "resolved"]

    # Resolving again is accepted and changes nothing, as with PagerDuty.
    assert client.resolve(key) == key
    assert apply() == 1
    again = Alert.objects.get(outcome="no_open_incident")
    assert again.dedup_key == key and again.incident is None and "nothing changed" in again.outcome_detail
    assert list(incident.alerts.order_by("pk").values_list("outcome", flat=True)) == [
        "opened", "grouped", "acknowledged", "resolved"]
    assert QueuedEvent.objects.count() == 0


def test_send_change_event_with_the_pagerduty_client(events_client):
    client, integration = events_client
    client.send_change_event(
        payload={"summary": "Deployed payments-api v2.4.1", "source": "ci",
                 "timestamp": "2026-01-05T10:00:00Z", "custom_details": {"commit": "abc123"}},
        links=[{"href": "https://ci.example.com/builds/42", "text": "Build 42"}],
    )
    entry = TimelineEntry.objects.get(kind="change")
    assert entry.incident is None and entry.service_id == integration.service_id
    assert entry.message == "Deployed payments-api v2.4.1"
    assert entry.data["details"]["commit"] == "abc123"
    assert Incident.objects.count() == 0


def test_client_errors_surface_our_400_and_404(events_client, live_https_server, apply):
    client, integration = events_client
    with pytest.raises(pagerduty.HttpError) as excinfo:
        client.trigger("x", "src", severity="catastrophic")
    assert excinfo.value.response.status_code == 400
    assert "payload.severity" in excinfo.value.response.json()["errors"][0]

    server, cert = live_https_server
    stranger = pagerduty.EventsApiV2Client(
        "0" * 32, base_url=f"{server.url}/integrations/pagerduty", verify=_trusting(cert)
    )
    stranger.retry = {}
    with pytest.raises(pagerduty.HttpError) as excinfo:
        stranger.trigger("x", "src")
    assert excinfo.value.response.status_code == 404
    stranger.close()
    assert apply() == 0  # nothing was queued
    assert Alert.objects.count() == 0


def test_the_certificate_is_really_checked(live_https_server, service_a, make_integration, apply):
    server, _cert = live_https_server
    integration = make_integration(service_a, "pagerduty")
    client = pagerduty.EventsApiV2Client(integration.token, base_url=f"{server.url}/integrations/pagerduty")
    client.max_network_attempts = 0
    with pytest.raises(pagerduty.Error):  # default trust store: our self-signed cert is refused
        client.trigger("x", "src")
    client.close()
    assert apply() == 0
    assert Alert.objects.count() == 0
