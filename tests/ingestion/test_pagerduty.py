"""PagerDuty Events API v2 compatible endpoints, through Django's test client."""

from __future__ import annotations

import pytest

from incidents.models import Alert, Incident, TimelineEntry
from tests.ingestion.conftest import post_json

ENQUEUE = "/integrations/pagerduty/v2/enqueue"
CHANGE = "/integrations/pagerduty/v2/change/enqueue"


def trigger(integration, **overrides):
    event = {
        "routing_key": integration.token,
        "event_action": "trigger",
        "payload": {
            "summary": "Example alert on host1.example.com",
            "timestamp": "2015-07-17T08:42:58.315+0000",
            "source": "host1.example.com",
            "severity": "critical",
            "component": "postgres",
            "group": "prod-datapipe",
            "class": "deploy",
            "custom_details": {"ping time": "1500ms", "load avg": 0.75, "nested": {"a": [1, 2]}},
        },
        "images": [{"src": "https://example.com/graph.png", "href": "https://example.com/", "alt": "graph"}],
        "links": [{"href": "https://example.com/runbook", "text": "Runbook"}],
        "client": "Sample Monitoring Service",
        "client_url": "https://monitoring.example.com",
    }
    event.update(overrides)
    return event


def processed(key: str) -> dict:
    """PagerDuty's own answer to an accepted event, word for word."""
    return {"status": "success", "message": "Event processed", "dedup_key": key}


def last_alert() -> Alert:
    return Alert.objects.order_by("-pk").first()


def test_trigger_without_dedup_key_generates_one_and_stores_everything(client, pd_integration):
    r = post_json(client, ENQUEUE, trigger(pd_integration))
    assert r.status_code == 202, r.content
    body = r.json()
    key = body["dedup_key"]
    assert body == processed(key)
    assert len(key) >= 16
    incident = Incident.objects.get()
    assert incident.dedup_key == key
    assert (incident.severity, incident.priority, incident.status) == ("SEV1", "P1", "triggered")
    assert incident.title == "Example alert on host1.example.com"
    alert = Alert.objects.get()
    assert alert.source == "host1.example.com"
    assert alert.labels == {"component": "postgres", "group": "prod-datapipe", "class": "deploy"}
    assert "ping time: 1500ms" in alert.details and "load avg: 0.75" in alert.details
    assert '"a": [' in alert.details  # nested values rendered as indented JSON
    assert alert.payload == trigger(pd_integration)  # the whole raw event, routing key included
    hrefs = [link["href"] for link in alert.links]
    assert hrefs == ["https://example.com/runbook", "https://example.com/", "https://monitoring.example.com"]
    assert TimelineEntry.objects.filter(incident=incident, kind="triggered").count() == 1


def test_two_triggers_without_key_open_two_incidents(client, pd_integration):
    keys = {post_json(client, ENQUEUE, trigger(pd_integration)).json()["dedup_key"] for _ in range(2)}
    assert len(keys) == 2 and Incident.objects.count() == 2


@pytest.mark.parametrize("severity,expected", [
    ("critical", "SEV1"), ("error", "SEV2"), ("warning", "SEV3"), ("info", "SEV4")])
def test_severity_mapping(client, pd_integration, severity, expected):
    event = trigger(pd_integration, dedup_key="sev")
    event["payload"]["severity"] = severity
    assert post_json(client, ENQUEUE, event).status_code == 202
    assert Incident.objects.get().severity == expected


def test_trigger_ack_resolve_cycle_and_new_incident_after_resolve(client, pd_integration):
    key = "disk/host1"
    r = post_json(client, ENQUEUE, trigger(pd_integration, dedup_key=key))
    assert r.json() == processed(key)
    r = post_json(client, ENQUEUE, trigger(pd_integration, dedup_key=key))
    assert r.status_code == 202 and r.json() == processed(key)
    incident = Incident.objects.get()
    assert (last_alert().outcome, last_alert().outcome_detail) == ("grouped", f"Added to {incident.ref}")
    assert incident.alert_count == 2

    ack = {"routing_key": pd_integration.token, "dedup_key": key, "event_action": "acknowledge"}
    r = post_json(client, ENQUEUE, ack)
    assert r.status_code == 202 and r.json() == processed(key)
    alert = last_alert()
    assert (alert.action, alert.outcome, alert.outcome_detail, alert.incident) == (
        "acknowledge", "acknowledged", f"Acknowledged {incident.ref}", incident)
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.acknowledged_at is not None

    r = post_json(client, ENQUEUE, {**ack, "event_action": "resolve"})
    assert r.status_code == 202 and r.json() == processed(key)
    assert (last_alert().outcome, last_alert().outcome_detail) == ("resolved", f"Resolved {incident.ref}")
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_at is not None

    # PagerDuty: after resolve, a trigger with the same key opens a new incident ...
    post_json(client, ENQUEUE, trigger(pd_integration, dedup_key=key))
    assert list(Incident.objects.order_by("number").values_list("status", flat=True)) == [
        "resolved", "triggered"]
    # ... and acknowledge/resolve of an unknown key change nothing and say so.
    r = post_json(client, ENQUEUE, {**ack, "dedup_key": "never-seen", "event_action": "resolve"})
    assert r.status_code == 202 and r.json() == processed("never-seen")
    alert = last_alert()
    assert alert.outcome == "no_open_incident" and alert.incident is None
    assert "nothing changed" in alert.outcome_detail
    assert Incident.objects.filter(status="triggered").count() == 1


def test_ack_resolve_ignore_their_payload(client, pd_integration):
    post_json(client, ENQUEUE, trigger(pd_integration, dedup_key="k"))
    r = post_json(client, ENQUEUE, {"routing_key": pd_integration.token, "dedup_key": "k",
                                    "event_action": "resolve", "payload": "ignored"})
    assert r.status_code == 202 and Incident.objects.get().status == "resolved"


def test_routing_key_of_another_kind_or_disabled_is_404(client, service_a, make_integration):
    generic = make_integration(service_a, "generic")
    disabled = make_integration(service_a, "pagerduty", enabled=False)
    for key in (generic.token, disabled.token, "0" * 32):
        r = post_json(client, ENQUEUE, trigger(generic, routing_key=key))
        assert r.status_code == 404
        assert r.json()["status"] == "invalid event"
        assert "routing key" in r.json()["message"]
    assert Alert.objects.count() == 0


@pytest.mark.parametrize("mutate,field", [
    (lambda e: e.pop("event_action"), "event_action"),
    (lambda e: e.update(event_action="explode"), "event_action"),
    (lambda e: e.update(event_action=5), "event_action"),
    (lambda e: e.pop("payload"), "payload"),
    (lambda e: e.update(payload="text"), "payload"),
    (lambda e: e["payload"].pop("summary"), "payload.summary"),
    (lambda e: e["payload"].update(summary="   "), "payload.summary"),
    (lambda e: e["payload"].update(summary="x" * 1025), "payload.summary"),
    (lambda e: e["payload"].update(summary=["a"]), "payload.summary"),
    (lambda e: e["payload"].pop("source"), "payload.source"),
    (lambda e: e["payload"].update(source=12), "payload.source"),
    (lambda e: e["payload"].pop("severity"), "payload.severity"),
    (lambda e: e["payload"].update(severity="disaster"), "payload.severity"),
    (lambda e: e["payload"].update(severity="Critical"), "payload.severity"),
    (lambda e: e["payload"].update(timestamp="yesterday"), "payload.timestamp"),
    (lambda e: e["payload"].update(timestamp=1700000000), "payload.timestamp"),
    (lambda e: e["payload"].update(component={"a": 1}), "payload.component"),
    (lambda e: e["payload"].update(group=1), "payload.group"),
    (lambda e: e["payload"].update({"class": []}), "payload.class"),
    (lambda e: e.update(dedup_key=123), "dedup_key"),
    (lambda e: e.update(dedup_key="k" * 256), "dedup_key"),
    (lambda e: e.update(links={"href": "x"}), "links"),
    (lambda e: e.update(links=[{"text": "no href"}]), "links[0].href"),
    (lambda e: e.update(links=["https://x"]), "links[0]"),
    (lambda e: e.update(images=[{"href": "https://x"}]), "images[0].src"),
    (lambda e: e.update(images="x"), "images"),
    (lambda e: e.update(client=1), "client"),
    (lambda e: e.update(client_url=["u"]), "client_url"),
    (lambda e: e.update(event_action="acknowledge"), "dedup_key"),
    (lambda e: e.update(event_action="resolve", dedup_key=""), "dedup_key"),
])
def test_invalid_events_are_400_naming_the_field(client, pd_integration, mutate, field):
    event = trigger(pd_integration)
    mutate(event)
    r = post_json(client, ENQUEUE, event)
    assert r.status_code == 400, r.content
    body = r.json()
    assert body["status"] == "invalid event" and body["message"] == "Event object is invalid"
    assert any(f"'{field}'" in error for error in body["errors"]), body["errors"]
    assert Alert.objects.count() == 0 and Incident.objects.count() == 0


def test_all_problems_are_reported_at_once(client, pd_integration):
    r = post_json(client, ENQUEUE, {"routing_key": pd_integration.token, "event_action": "trigger",
                                    "payload": {"severity": "bad"}})
    errors = " ".join(r.json()["errors"])
    for field in ("payload.summary", "payload.source", "payload.severity"):
        assert field in errors


@pytest.mark.parametrize("body,needle", [
    (b"{not json", "not valid JSON"),
    (b"", "empty"),
    (b"[1, 2]", "JSON object"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_malformed_bodies_are_400(client, pd_integration, body, needle):
    r = post_json(client, ENQUEUE, body)
    assert r.status_code == 400 and r.json()["status"] == "invalid event"
    assert needle in " ".join(r.json()["errors"])


@pytest.mark.parametrize("routing_key", [None, "", 42])
def test_missing_or_bad_routing_key_is_400(client, pd_integration, routing_key):
    event = trigger(pd_integration)
    if routing_key is None:
        event.pop("routing_key")
    else:
        event["routing_key"] = routing_key
    r = post_json(client, ENQUEUE, event)
    assert r.status_code == 400 and "routing_key" in r.json()["errors"][0]


def test_get_is_not_allowed(client, pd_integration):
    assert client.get(ENQUEUE).status_code == 405


# --------------------------------------------------------------------------- change events


def test_change_event_goes_on_the_service_timeline_without_incident(client, pd_integration):
    event = {
        "routing_key": pd_integration.token,
        "payload": {
            "summary": "Build Success: Increase snapshot create timeout to 30 seconds",
            "timestamp": "2020-07-17T08:42:58.315+0000",
            "source": "acme-build-pipeline-tool-default-i-9999",
            "custom_details": {"build_state": "passed", "build_number": "2"},
        },
        "links": [{"href": "https://acme.pagerduty.dev/build/2", "text": "View more details in Acme!"}],
    }
    r = post_json(client, CHANGE, event)
    assert r.status_code == 202
    assert r.json() == {"status": "success", "message": "Change event processed"}
    entry = TimelineEntry.objects.get()
    assert entry.incident is None and entry.service_id == pd_integration.service_id
    assert entry.kind == "change" and entry.message.startswith("Build Success")
    assert entry.data["source"] == "acme-build-pipeline-tool-default-i-9999"
    assert entry.data["details"]["build_number"] == "2"
    assert entry.data["details"]["timestamp"] == "2020-07-17T08:42:58.315+0000"
    assert entry.data["links"][0]["href"] == "https://acme.pagerduty.dev/build/2"
    assert Incident.objects.count() == 0 and Alert.objects.count() == 0


@pytest.mark.parametrize("event,field", [
    ({}, "payload"),
    ({"payload": []}, "payload"),
    ({"payload": {"source": "ci"}}, "payload.summary"),
    ({"payload": {"summary": "x" * 1025}}, "payload.summary"),
    ({"payload": {"summary": "deploy", "source": 1}}, "payload.source"),
    ({"payload": {"summary": "deploy", "timestamp": "soon"}}, "payload.timestamp"),
    ({"payload": {"summary": "deploy"}, "links": [{"text": "x"}]}, "links[0].href"),
])
def test_invalid_change_events_are_400(client, pd_integration, event, field):
    r = post_json(client, CHANGE, {"routing_key": pd_integration.token, **event})
    assert r.status_code == 400
    assert any(f"'{field}'" in e for e in r.json()["errors"]), r.json()
    assert TimelineEntry.objects.count() == 0


def test_change_event_unknown_routing_key_is_404(client, db):
    r = post_json(client, CHANGE, {"routing_key": "nope", "payload": {"summary": "deploy"}})
    assert r.status_code == 404 and r.json()["status"] == "invalid event"
