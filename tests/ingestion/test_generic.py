import pytest

from incidents.models import Alert, Incident, TimelineEntry


@pytest.fixture
def integration(service_a, make_integration):
    return make_integration(service_a, "generic")


def post(client, integration, data, **kw):
    return client.post(f"/integrations/generic/{integration.token}/", data,
                       content_type=kw.pop("content_type", "application/json"), **kw)


def test_trigger_opens_incident_and_second_trigger_groups(client, integration):
    r1 = post(client, integration, {"summary": "disk full", "dedup_key": "k1", "severity": "critical"})
    assert r1.status_code == 202, r1.content
    assert r1.json()["outcome"] == "opened"
    r2 = post(client, integration, {"summary": "disk full again", "dedup_key": "k1"})
    assert r2.json()["outcome"] == "grouped"
    incident = Incident.objects.get()
    assert incident.severity == "SEV1" and incident.priority == "P1"
    assert incident.alert_count == 2 and incident.alerts.count() == 2
    assert TimelineEntry.objects.filter(incident=incident, kind="triggered").count() == 1


def test_resolve_then_same_key_opens_new_incident(client, integration):
    post(client, integration, {"summary": "x", "dedup_key": "k"})
    r = post(client, integration, {"summary": "x", "dedup_key": "k", "action": "resolve"})
    assert r.json()["outcome"] == "resolved"
    post(client, integration, {"summary": "x", "dedup_key": "k"})
    assert list(Incident.objects.order_by("number").values_list("status", flat=True)) == [
        "resolved", "triggered"]


def test_ack_without_open_incident_changes_nothing(client, integration):
    r = post(client, integration, {"summary": "x", "dedup_key": "nope", "action": "acknowledge"})
    assert r.status_code == 202
    assert r.json()["outcome"] == "no_open_incident"
    assert Incident.objects.count() == 0 and Alert.objects.count() == 1


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
    alert = Alert.objects.get()
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
    assert r.json()["outcome"] == "acknowledged"
    assert Incident.objects.get().status == "acknowledged"
