import pytest

from incidents.alert_queue import queue_drain
from incidents.models import Alert, Incident, QueuedEvent, TimelineEntry


@pytest.fixture
def integration(service_a, make_integration):
    return make_integration(service_a, "generic")


def post(client, integration, data, **kw):
    """POST to the generic endpoint, then apply the queue as the clock's applier would."""
    response = client.post(f"/integrations/generic/{integration.token}/", data,
                           content_type=kw.pop("content_type", "application/json"), **kw)
    queue_drain()
    return response


def accepted(key: str) -> dict:
    return {"status": "accepted", "message": "Event accepted", "dedup_key": key}


def last_alert() -> Alert:
    return Alert.objects.order_by("-pk").first()


def test_trigger_opens_incident_and_second_trigger_groups(client, integration):
    r1 = post(client, integration, {"summary": "disk full", "dedup_key": "k1", "severity": "critical"})
    assert r1.status_code == 202, r1.content
    assert r1.json() == accepted("k1")
    incident = Incident.objects.get()
    assert (last_alert().outcome, last_alert().outcome_detail) == ("opened", f"Opened {incident.ref}")
    r2 = post(client, integration, {"summary": "disk full again", "dedup_key": "k1"})
    assert r2.status_code == 202 and r2.json() == accepted("k1")
    assert (last_alert().outcome, last_alert().outcome_detail) == ("grouped", f"Added to {incident.ref}")
    assert not QueuedEvent.objects.exists()
    incident = Incident.objects.get()
    assert incident.severity == "SEV1" and incident.priority == "P1"
    assert incident.alert_count == 2 and incident.alerts.count() == 2
    assert TimelineEntry.objects.filter(incident=incident, kind="triggered").count() == 1


def test_resolve_then_same_key_opens_new_incident(client, integration):
    post(client, integration, {"summary": "x", "dedup_key": "k"})
    r = post(client, integration, {"summary": "x", "dedup_key": "k", "action": "resolve"})
    assert r.status_code == 202 and r.json() == accepted("k")
    first = Incident.objects.get()
    assert (last_alert().outcome, last_alert().incident) == ("resolved", first)
    post(client, integration, {"summary": "x", "dedup_key": "k"})
    assert last_alert().outcome == "opened" and last_alert().incident != first
    assert list(Incident.objects.order_by("number").values_list("status", flat=True)) == [
        "resolved", "triggered"]


def test_ack_without_open_incident_changes_nothing(client, integration):
    r = post(client, integration, {"summary": "x", "dedup_key": "nope", "action": "acknowledge"})
    assert r.status_code == 202 and r.json() == accepted("nope")
    alert = Alert.objects.get()
    assert alert.outcome == "no_open_incident" and alert.incident is None
    assert alert.outcome_detail == "No open incident with dedup key 'nope' on payments-api: nothing changed"
    assert Incident.objects.count() == 0


@pytest.mark.parametrize("body,field", [
    ({}, "summary"),
    ({"summary": 5.5, "severity": "bogus"}, "severity"),
    ({"summary": "x", "action": "explode"}, "action"),
    ({"summary": "x", "labels": ["a"]}, "labels"),
    ({"summary": "x", "action": "resolve"}, "dedup_key"),
])
def test_bad_input_is_400_naming_the_field(client, integration, body, field):
    r = post(client, integration, body)
    assert r.status_code == 400
    assert field in " ".join(r.json()["errors"])
    assert Alert.objects.count() == 0


def test_unknown_token_is_404(client, db):
    r = client.post("/integrations/generic/nope/", {"summary": "x"}, content_type="application/json")
    assert r.status_code == 404


def test_form_body_and_details_object(client, integration):
    r = client.post(f"/integrations/generic/{integration.token}/",
                    "summary=queue+backlog&severity=warning&labels=%7B%22env%22%3A%22prod%22%7D",
                    content_type="application/x-www-form-urlencoded")
    assert r.status_code == 202, r.content
    key = r.json()["dedup_key"]
    assert r.json() == accepted(key) and len(key) == 32  # generated when the event has none
    assert QueuedEvent.objects.count() == 1 and Alert.objects.count() == 0  # queued, not applied yet
    queue_drain()
    alert = Alert.objects.get()
    assert alert.dedup_key == key and alert.outcome == "opened"
    assert (alert.summary, alert.severity, alert.labels) == ("queue backlog", "SEV3", {"env": "prod"})
    post(client, integration, {"summary": "y", "details": {"queue": "mail", "depth": 1200}})
    assert Alert.objects.get(summary="y").details == "queue: mail\ndepth: 1200"


@pytest.mark.parametrize("body,content_type,needle", [
    (b"{oops", "application/json", "not valid JSON"),
    (b"", "application/json", "empty"),
    (b"[]", "application/json", "JSON object"),
    (b"summary=x&labels=%7Bnope", "application/x-www-form-urlencoded", "'labels' must be JSON"),
    (b"--b\r\n", "multipart/form-data; boundary=b", "multipart"),
    (b'{"summary": "x", "priority": "P9"}', "application/json", "'priority'"),
    (b'{"summary": "' + b"x" * 1025 + b'"}', "application/json", "'summary' is longer"),
    (b'{"summary": "x", "links": [{"text": "no href"}]}', "application/json", "'links'"),
    (b'{"summary": "x", "dedup_key": ["k"]}', "application/json", "'dedup_key' must be a string"),
    (b'{"summary": "x", "source": {"a": 1}}', "application/json", "'source' must be a string"),
])
def test_generic_bad_bodies_are_400(client, integration, body, content_type, needle):
    r = client.post(f"/integrations/generic/{integration.token}/", body, content_type=content_type)
    assert r.status_code == 400, r.content
    assert needle in " ".join(r.json()["errors"])
    assert Alert.objects.count() == 0


def test_acknowledge_via_generic(client, integration):
    post(client, integration, {"summary": "x", "dedup_key": "k"})
    r = post(client, integration, {"summary": "x", "dedup_key": "k", "action": "acknowledge"})
    assert r.status_code == 202 and r.json() == accepted("k")
    incident = Incident.objects.get()
    assert incident.status == "acknowledged"
    alert = last_alert()
    assert (alert.outcome, alert.outcome_detail) == ("acknowledged", f"Acknowledged {incident.ref}")
    # A second acknowledge is accepted, changes nothing and says so on its alert.
    post(client, integration, {"summary": "x", "dedup_key": "k", "action": "acknowledge"})
    assert last_alert().outcome_detail == f"{incident.ref} was already acknowledged"
    assert incident.timeline.filter(kind="acknowledged").count() == 1
