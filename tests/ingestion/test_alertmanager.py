"""Alertmanager (webhook v4) and Grafana alerting webhooks, through the test client."""

from __future__ import annotations

import copy

import pytest

from incidents.models import Alert, Incident
from tests.ingestion.conftest import post_json

GROUP_KEY = '{}/{severity="critical"}:{alertname="ProbeFailure"}'


def am_alert(fingerprint: str, status: str = "firing", instance: str = "https://a.example.org",
             severity: str = "critical") -> dict:
    return {
        "status": status,
        "labels": {"alertname": "ProbeFailure", "instance": instance, "job": "http_checks",
                   "severity": severity},
        "annotations": {
            "description": f"Instance {instance} has been down for over 5m.",
            "summary": f"BlackBox Probe Failure: {instance}",
            "runbook_url": "https://runbooks.example.org/probe",
        },
        "startsAt": "2023-02-06T13:08:45.828Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2023-02-06T13:20:45.828Z",
        "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=probe_success+%3D%3D+0",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict, status: str | None = None) -> dict:
    if status is None:
        status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {
        "receiver": "ircore",
        "status": status,
        "alerts": list(alerts),
        "groupLabels": {"alertname": "ProbeFailure"},
        "commonLabels": {"alertname": "ProbeFailure", "job": "http_checks", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.org:9093",
        "version": "4",
        "groupKey": GROUP_KEY,
        "truncatedAlerts": 0,
        "someFutureField": {"ignored": True},
    }


def grafana_notification(*alerts: dict, status: str = "firing") -> dict:
    body = notification(*alerts, status=status)
    body.update(orgId=1, title=f"[{status.upper()}:{len(alerts)}] ProbeFailure", state="alerting",
                message="**Firing**", version="1")
    for alert in body["alerts"]:
        alert.update(silenceURL="https://grafana.example.org/alerting/silence/new",
                     dashboardURL="https://grafana.example.org/d/abc", panelURL="",
                     valueString="[ var='B' labels={} value=0 ]")
    return body


def accepted(*keys: str) -> dict:
    """The answer to an accepted notification: one event per key, in order."""
    return {"status": "accepted", "message": f"{len(keys)} event(s) accepted", "events": len(keys),
            "dedup_keys": list(keys)}


def outcomes(*keys: str) -> list[str]:
    """The outcome of the newest alert with each key."""
    return [Alert.objects.filter(dedup_key=key).order_by("-pk").first().outcome for key in keys]


def am_url(integration) -> str:
    return f"/integrations/alertmanager/{integration.token}/"


def grafana_url(integration) -> str:
    return f"/integrations/grafana/{integration.token}/"


def test_each_alert_is_an_event_keyed_by_fingerprint(client, am_integration):
    body = notification(am_alert("aaa1"), am_alert("bbb2", instance="https://b.example.org"))
    r = post_json(client, am_url(am_integration), body)
    assert r.status_code == 202, r.content
    assert r.json() == accepted("aaa1", "bbb2")
    assert outcomes("aaa1", "bbb2") == ["opened", "opened"]
    incidents = {i.dedup_key: i for i in Incident.objects.all()}
    assert set(incidents) == {"aaa1", "bbb2"}
    first = incidents["aaa1"]
    assert first.title == "BlackBox Probe Failure: https://a.example.org"
    assert (first.severity, first.priority) == ("SEV1", "P1")
    alert = first.alerts.get()
    assert alert.labels["alertname"] == "ProbeFailure" and alert.source == "https://a.example.org"
    assert "has been down for over 5m" in alert.details and "runbook_url:" in alert.details
    assert {link["text"] for link in alert.links} == {"Source", "Runbook", "Alertmanager"}
    # The stored payload is the notification with only this alert in it.
    assert alert.payload["groupKey"] == GROUP_KEY and alert.payload["alerts"] == [am_alert("aaa1")]

    # Alertmanager repeats a firing alert: it joins the open incident.
    post_json(client, am_url(am_integration), notification(am_alert("aaa1")))
    first.refresh_from_db()
    assert first.alert_count == 2 and Incident.objects.count() == 2

    # One resolved entry resolves only its own incident.
    body = notification(am_alert("aaa1", "resolved"), am_alert("bbb2", instance="https://b.example.org"))
    r = post_json(client, am_url(am_integration), body)
    assert r.status_code == 202 and r.json() == accepted("aaa1", "bbb2")
    assert outcomes("aaa1", "bbb2") == ["resolved", "grouped"]
    assert Alert.objects.filter(dedup_key="aaa1").order_by("-pk").first().outcome_detail == (
        f"Resolved {first.ref}")
    statuses = dict(Incident.objects.values_list("dedup_key", "status"))
    assert statuses == {"aaa1": "resolved", "bbb2": "triggered"}


@pytest.mark.parametrize("labels,annotations,summary", [
    ({"alertname": "A"}, {"summary": "S", "description": "D"}, "S"),
    ({"alertname": "A"}, {"description": "D  with\n spaces"}, "D with spaces"),
    ({"alertname": "A"}, {}, "A"),
    ({"job": "x"}, {}, "Alert fp"),
])
def test_summary_falls_back(client, am_integration, labels, annotations, summary):
    alert = {"status": "firing", "labels": labels, "annotations": annotations, "fingerprint": "fp"}
    assert post_json(client, am_url(am_integration), notification(alert)).status_code == 202
    assert Incident.objects.get().title == summary


@pytest.mark.parametrize("severity,expected", [
    ("critical", "SEV1"), ("page", "SEV1"), ("warning", "SEV3"), ("info", "SEV4"),
    ("something-else", "SEV3")])
def test_severity_from_label(client, am_integration, severity, expected):
    post_json(client, am_url(am_integration), notification(am_alert("f", severity=severity)))
    assert Incident.objects.get().severity == expected


def test_group_mode_one_incident_per_group_resolved_only_when_all_resolved(
    client, service_a, make_integration
):
    integration = make_integration(service_a, "alertmanager", options={"group_by": "group"})
    a, b = am_alert("aaa1"), am_alert("bbb2", instance="https://b.example.org", severity="warning")
    r = post_json(client, am_url(integration), notification(a, b))
    assert r.status_code == 202 and r.json() == accepted(GROUP_KEY)
    incident = Incident.objects.get()
    assert incident.dedup_key == GROUP_KEY
    assert incident.severity == "SEV1"  # the worst firing alert of the group
    assert incident.title.startswith("[FIRING:2]")
    alert = incident.alerts.get()
    assert "BlackBox Probe Failure: https://a.example.org" in alert.details
    assert "BlackBox Probe Failure: https://b.example.org" in alert.details
    assert alert.labels == notification()["commonLabels"]

    # One alert of the group resolved, the group still firing: stays open.
    r = post_json(client, am_url(integration), notification(am_alert("aaa1", "resolved"), b))
    assert r.status_code == 202 and r.json() == accepted(GROUP_KEY)
    assert outcomes(GROUP_KEY) == ["grouped"]
    incident.refresh_from_db()
    assert incident.status == "triggered" and incident.alert_count == 2

    # Whole group resolved: the incident resolves.
    body = notification(am_alert("aaa1", "resolved"), {**b, "status": "resolved"})
    r = post_json(client, am_url(integration), body)
    assert r.status_code == 202 and r.json() == accepted(GROUP_KEY)
    assert outcomes(GROUP_KEY) == ["resolved"]
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_group_mode_requires_group_key(client, service_a, make_integration):
    integration = make_integration(service_a, "alertmanager", options={"group_by": "group"})
    body = notification(am_alert("a"))
    del body["groupKey"]
    r = post_json(client, am_url(integration), body)
    assert r.status_code == 400 and "'groupKey'" in r.json()["errors"][0]


def test_very_long_group_key_is_hashed_to_fit(client, service_a, make_integration):
    integration = make_integration(service_a, "alertmanager", options={"group_by": "group"})
    body = notification(am_alert("a"))
    body["groupKey"] = "{}:{" + ",".join(f'label{i}="value{i}"' for i in range(40)) + "}"
    post_json(client, am_url(integration), body)
    post_json(client, am_url(integration), body)
    incident = Incident.objects.get()
    assert incident.dedup_key.startswith("groupKey:") and len(incident.dedup_key) <= 255
    assert incident.alert_count == 2


def _drop(path):
    def mutate(body):
        target = body
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
    return mutate


def _set(path, value):
    def mutate(body):
        target = body
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return mutate


BAD_INPUTS = [
    (_drop(["alerts"]), "alerts"),
    (_set(["alerts"], {"a": 1}), "alerts"),
    (_set(["alerts"], []), "alerts"),
    (_set(["alerts"], ["text"]), "alerts[0]"),
    (_drop(["status"]), "status"),
    (_set(["status"], "burning"), "status"),
    (_set(["status"], {"firing": True}), "status"),
    (_drop(["alerts", 0, "status"]), "alerts[0].status"),
    (_set(["alerts", 0, "status"], "pending"), "alerts[0].status"),
    (_set(["alerts", 0, "status"], ["firing"]), "alerts[0].status"),
    (_set(["alerts", 1, "labels", "instance"], None), "alerts[1].labels.instance"),
    (_set(["alerts", 0, "annotations", "summary"], ["x"]), "alerts[0].annotations.summary"),
    (_set(["alerts", 1, "silenceURL"], {"u": 1}), "alerts[1].silenceURL"),
    (_set(["alerts", 0, "endsAt"], False), "alerts[0].endsAt"),
    (_set(["alerts", 0, "valueString"], 3), "alerts[0].valueString"),
    (_drop(["alerts", 0, "labels"]), "alerts[0].labels"),
    (_set(["alerts", 0, "labels"], ["a"]), "alerts[0].labels"),
    (_set(["alerts", 0, "labels", "severity"], {"x": 1}), "alerts[0].labels.severity"),
    (_set(["alerts", 0, "annotations"], "text"), "alerts[0].annotations"),
    (_set(["alerts", 0, "fingerprint"], 12), "alerts[0].fingerprint"),
    (_set(["alerts", 0, "generatorURL"], 5), "alerts[0].generatorURL"),
    (_set(["alerts", 0, "startsAt"], 5), "alerts[0].startsAt"),
    (_set(["groupKey"], ["k"]), "groupKey"),
    (_set(["commonLabels"], "x"), "commonLabels"),
    (_set(["externalURL"], 1), "externalURL"),
]


@pytest.mark.parametrize("mutate,field", BAD_INPUTS + [
    (_drop(["alerts", 0, "fingerprint"]), "alerts[0].fingerprint"),
    (_set(["version"], "3"), "version"),
])
def test_alertmanager_bad_input_is_400_naming_the_field(client, am_integration, mutate, field):
    body = notification(am_alert("aaa1"), am_alert("bbb2"))
    mutate(body)
    r = post_json(client, am_url(am_integration), body)
    assert r.status_code == 400, r.content
    assert any(f"'{field}'" in e for e in r.json()["errors"]), r.json()
    assert Alert.objects.count() == 0 and Incident.objects.count() == 0


@pytest.mark.parametrize("mutate,field", BAD_INPUTS)
def test_grafana_bad_input_is_400_naming_the_field(client, grafana_integration, mutate, field):
    body = grafana_notification(am_alert("aaa1"), am_alert("bbb2"))
    mutate(body)
    r = post_json(client, grafana_url(grafana_integration), body)
    assert r.status_code == 400, r.content
    assert any(f"'{field}'" in e for e in r.json()["errors"]), r.json()
    assert Alert.objects.count() == 0


@pytest.mark.parametrize("raw", [b"{", b"", b'"text"', b"null"])
def test_malformed_json_is_400(client, am_integration, grafana_integration, raw):
    for url in (am_url(am_integration), grafana_url(grafana_integration)):
        r = post_json(client, url, raw)
        assert r.status_code == 400 and r.json()["errors"]


def test_unknown_wrong_kind_or_disabled_token_is_404(client, service_a, make_integration,
                                                     am_integration, grafana_integration):
    disabled = make_integration(service_a, "alertmanager", enabled=False)
    body = notification(am_alert("a"))
    for url in ("/integrations/alertmanager/nope/", am_url(disabled),
                am_url(grafana_integration), grafana_url(am_integration)):
        assert post_json(client, url, body).status_code == 404, url
    assert Alert.objects.count() == 0


def test_grafana_notification(client, grafana_integration):
    body = grafana_notification(am_alert("c6ea"), am_alert("bc97", instance="https://b"))
    r = post_json(client, grafana_url(grafana_integration), body)
    assert r.status_code == 202, r.content
    assert r.json() == accepted("c6ea", "bc97")
    alert = Alert.objects.get(dedup_key="c6ea")
    assert "Value: [ var='B' labels={} value=0 ]" in alert.details
    texts = {link["text"] for link in alert.links}
    assert {"Silence", "Dashboard", "Grafana", "Source"} <= texts and "Panel" not in texts
    resolved = grafana_notification(am_alert("c6ea", "resolved"), status="resolved")
    post_json(client, grafana_url(grafana_integration), resolved)
    assert dict(Incident.objects.values_list("dedup_key", "status")) == {
        "c6ea": "resolved", "bc97": "triggered"}


def test_grafana_without_fingerprint_keys_by_label_set(client, grafana_integration):
    alert = am_alert("x")
    del alert["fingerprint"]
    body = grafana_notification(alert)
    post_json(client, grafana_url(grafana_integration), body)
    post_json(client, grafana_url(grafana_integration), copy.deepcopy(body))
    incident = Incident.objects.get()
    assert incident.alert_count == 2 and len(incident.dedup_key) == 16
    resolved = copy.deepcopy(alert)
    resolved["status"] = "resolved"
    post_json(client, grafana_url(grafana_integration), grafana_notification(resolved, status="resolved"))
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_grafana_group_mode_uses_title(client, service_a, make_integration):
    integration = make_integration(service_a, "grafana", options={"group_by": "group"})
    body = grafana_notification(am_alert("a"), am_alert("b", instance="https://b"))
    post_json(client, grafana_url(integration), body)
    assert Incident.objects.get().title == "[FIRING:2] ProbeFailure"


def test_group_mode_notes_truncated_alerts(client, service_a, make_integration):
    integration = make_integration(service_a, "alertmanager", options={"group_by": "group"})
    body = notification(am_alert("a"))
    body["truncatedAlerts"] = 7
    post_json(client, am_url(integration), body)
    assert "7 more alert(s) were left out" in Alert.objects.get().details


def test_unknown_fields_are_ignored_and_kept_in_the_payload(client, am_integration):
    body = notification(am_alert("a"))
    body["alerts"][0]["somethingNew"] = [1, 2]
    assert post_json(client, am_url(am_integration), body).status_code == 202
    payload = Alert.objects.get().payload
    assert payload["someFutureField"] == {"ignored": True}
    assert payload["alerts"][0]["somethingNew"] == [1, 2]
