"""Triage rules and maintenance windows applied to events from each adapter."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from incidents.models import Alert, Incident, MaintenanceWindow, Service, TriageRule
from tests.ingestion.conftest import post_json
from tests.ingestion.test_alertmanager import am_alert, notification

ENQUEUE = "/integrations/pagerduty/v2/enqueue"


def pd_trigger(integration, summary, severity="info", key=None, **payload):
    event = {"routing_key": integration.token, "event_action": "trigger",
             "payload": {"summary": summary, "source": "db1", "severity": severity, **payload}}
    if key:
        event["dedup_key"] = key
    return event


def last_alert(**filters) -> Alert:
    return Alert.objects.filter(**filters).order_by("-pk").first()


def test_database_down_rule_makes_sev1_p1(client, team_a, pd_integration):
    TriageRule.objects.create(team=team_a, name="Database down is critical",
                              match_keywords="database down\nDB unreachable",
                              set_severity="SEV1", set_priority="P1")
    r = post_json(client, ENQUEUE, pd_trigger(pd_integration, "Primary DATABASE DOWN in eu-1"))
    assert r.status_code == 202
    incident = Incident.objects.get()
    assert (incident.severity, incident.priority) == ("SEV1", "P1")
    triage = incident.timeline.get(kind="triage")
    assert "Database down is critical" in triage.message

    # Keywords also match the rendered custom_details, not only the summary.
    post_json(client, ENQUEUE, pd_trigger(pd_integration, "replica lag", key="other",
                                          custom_details={"note": "db unreachable from app"}))
    assert Incident.objects.get(dedup_key="other").severity == "SEV1"
    # An event that does not match keeps the source's severity.
    post_json(client, ENQUEUE, pd_trigger(pd_integration, "cache miss rate", key="third"))
    assert Incident.objects.get(dedup_key="third").severity == "SEV4"


def test_suppress_keeps_the_alert_but_opens_nothing(client, team_a, am_integration):
    TriageRule.objects.create(team=team_a, name="Ignore staging", match_labels={"env": "stag*"},
                              suppress=True)
    staging = am_alert("s1")
    staging["labels"]["env"] = "staging"
    prod = am_alert("p1")
    prod["labels"]["env"] = "production"
    r = post_json(client, f"/integrations/alertmanager/{am_integration.token}/",
                  notification(staging, prod))
    assert r.status_code == 202 and r.json()["dedup_keys"] == ["s1", "p1"]
    suppressed = Alert.objects.get(dedup_key="s1")
    assert suppressed.outcome == "suppressed" and suppressed.incident is None
    assert suppressed.outcome_detail == "Suppressed by triage rule(s): Ignore staging"
    assert Alert.objects.get(dedup_key="p1").outcome == "opened"
    assert list(Incident.objects.values_list("dedup_key", flat=True)) == ["p1"]


def test_route_to_another_service_of_the_team(client, team_a, service_a, pd_integration,
                                              make_integration):
    database = Service.objects.create(team=team_a, name="database")
    TriageRule.objects.create(team=team_a, name="DB alerts to database", match_source="db*",
                              route_to_service=database)
    key = post_json(client, ENQUEUE, pd_trigger(pd_integration, "slow queries")).json()["dedup_key"]
    incident = Incident.objects.get()
    assert incident.service == database
    assert Alert.objects.get().service == database
    # The resolve carries no source, so the rule does not route it: it still finds the
    # incident its trigger opened, because it comes through the same integration ...
    other = make_integration(service_a, "pagerduty")
    resolve = {"routing_key": other.token, "event_action": "resolve", "dedup_key": key}
    assert post_json(client, ENQUEUE, resolve).status_code == 202
    alert = last_alert(integration=other)
    assert (alert.outcome, alert.service, alert.incident) == ("no_open_incident", service_a, None)
    incident.refresh_from_db()
    assert incident.status == "triggered"
    r = post_json(client, ENQUEUE, {**resolve, "routing_key": pd_integration.token})
    assert r.status_code == 202 and r.json()["dedup_key"] == key
    alert = last_alert(integration=pd_integration)
    assert (alert.outcome, alert.incident) == ("resolved", incident)
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert Alert.objects.filter(service=database, action="resolve").count() == 1


def test_set_dedup_key_groups_alerts_by_label(client, team_a, am_integration):
    TriageRule.objects.create(team=team_a, name="One incident per alertname",
                              set_dedup_key="am:{labels[alertname]}")
    body = notification(am_alert("f1"), am_alert("f2", instance="https://b"))
    r = post_json(client, f"/integrations/alertmanager/{am_integration.token}/", body)
    # The answer carries the keys as received; triage runs when the events are applied.
    assert r.status_code == 202 and r.json()["dedup_keys"] == ["f1", "f2"]
    assert list(Alert.objects.order_by("pk").values_list("dedup_key", "outcome")) == [
        ("am:ProbeFailure", "opened"), ("am:ProbeFailure", "grouped")]
    incident = Incident.objects.get()
    assert incident.dedup_key == "am:ProbeFailure" and incident.alert_count == 2
    # The resolved notification goes through the same rule, so it finds the incident.
    body = notification(am_alert("f1", "resolved"))
    r = post_json(client, f"/integrations/alertmanager/{am_integration.token}/", body)
    assert r.status_code == 202
    assert (last_alert().outcome, last_alert().incident) == ("resolved", incident)
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_key_set_by_triage_resolves_the_incident(client, team_a, pd_integration):
    TriageRule.objects.create(team=team_a, name="Per source", set_dedup_key="src:{source}")
    r = post_json(client, ENQUEUE, pd_trigger(pd_integration, "x"))
    assert r.status_code == 202
    incident = Incident.objects.get()
    assert incident.dedup_key == "src:db1"
    # The resolve carries no source (the rule makes its key "src:"), but the key the
    # rule gave the incident still finds it through the integration that sent the trigger.
    resolve = {"routing_key": pd_integration.token, "event_action": "resolve", "dedup_key": "src:db1"}
    assert post_json(client, ENQUEUE, resolve).status_code == 202
    assert (last_alert().outcome, last_alert().incident) == ("resolved", incident)
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_key_in_the_answer_resolves_the_incident_even_when_triage_sets_the_key(
    client, team_a, service_a, pd_integration, make_integration
):
    TriageRule.objects.create(team=team_a, name="Per source", set_dedup_key="src:{source}")
    r = post_json(client, ENQUEUE, pd_trigger(pd_integration, "x"))
    # The answer comes before triage: the key as sent, or generated when there was none.
    key = r.json()["dedup_key"]  # what the pagerduty client keeps to resolve later
    assert len(key) == 32 and Incident.objects.get().dedup_key == "src:db1"
    ack = {"routing_key": pd_integration.token, "event_action": "acknowledge", "dedup_key": key}
    assert post_json(client, ENQUEUE, ack).status_code == 202
    assert last_alert().outcome == "acknowledged", last_alert().outcome_detail
    assert post_json(client, ENQUEUE, {**ack, "event_action": "resolve"}).status_code == 202
    assert last_alert().outcome == "resolved", last_alert().outcome_detail
    assert Incident.objects.get().status == "resolved"
    # Only through the integration that sent the trigger, as for routed incidents.
    post_json(client, ENQUEUE, pd_trigger(pd_integration, "x"))
    other = make_integration(service_a, "pagerduty")
    r = post_json(client, ENQUEUE, {**ack, "routing_key": other.token, "event_action": "resolve"})
    assert r.status_code == 202 and last_alert().outcome == "no_open_incident"
    assert Incident.objects.filter(status="triggered").count() == 1


def test_alerts_in_maintenance_are_kept_and_marked(client, team_a, service_a, pd_integration):
    now = timezone.now()
    window = MaintenanceWindow.objects.create(team=team_a, starts_at=now - timedelta(minutes=5),
                                              ends_at=now + timedelta(hours=1), reason="DB upgrade")
    window.services.add(service_a)
    post_json(client, ENQUEUE, pd_trigger(pd_integration, "db restarting", "critical"))
    incident = Incident.objects.get()
    assert incident.in_maintenance and Alert.objects.get().in_maintenance
    assert incident.timeline.filter(kind="maintenance").exists()
