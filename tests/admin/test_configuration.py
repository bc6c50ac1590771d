"""Configuration in the console: triage rules (and their templates), integrations with
a test alert, maintenance windows, re-processing failed alerts."""

from __future__ import annotations

from html import unescape

import pytest
from django.contrib.messages import get_messages

from incidents.models import Alert, Incident, Integration, MaintenanceWindow, TriageRule
from incidents.rule_templates import RULE_TEMPLATES, rule_templates_load

LOAD = "/admin/incidents/triagerule/load-templates/"


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def rule_data(team, **extra):
    data = {"team": team.pk, "name": "rule", "position": 0, "enabled": "on", "match_keywords": "",
            "match_labels": "{}", "match_source": "", "set_dedup_key": ""}
    data.update(extra)
    return data


# ----------------------------------------------------------------------------- triage rules


def test_database_down_rule_in_a_minute(login, manager, team_a, service_a, raise_alert):
    """The issue's example: an alert containing "database down" becomes SEV1/P1."""
    response = login(manager).post("/admin/incidents/triagerule/add/", rule_data(
        team_a, name="DB down is critical", match_keywords="database down",
        set_severity="SEV1", set_priority="P1"))
    assert response.status_code == 302, response.content.decode()[:3000]
    rule = TriageRule.objects.get()
    assert rule.position == 10  # appended, with room to insert rules in between
    incident = raise_alert(service_a, "Primary DATABASE DOWN in eu-1", severity="SEV4")
    assert (incident.severity, incident.priority) == ("SEV1", "P1")
    assert incident.timeline.filter(kind="triage", message__contains="DB down is critical").exists()


@pytest.mark.parametrize("extra,field_error", [
    ({"match_labels": '["env"]'}, "JSON object"),
    ({"match_labels": "{not json"}, "Enter a valid JSON"),
    ({"match_labels": '{"env": {"nested": 1}}'}, "JSON object"),
    ({"set_severity": "SEV7"}, "Select a valid choice"),
    ({}, "at least one action"),
    # PostgreSQL's jsonb refuses NUL: the save was a 500 (ircore.admin.StorableJSONFormField).
    ({"match_labels": '{"env": "prod\\u0000"}', "set_severity": "SEV1"}, "env contains a NUL character"),
    ({"match_labels": '{"e\\u0000nv": "prod"}', "set_severity": "SEV1"}, "contains a NUL character"),
])
def test_bad_rules_are_refused(login, manager, team_a, extra, field_error):
    response = login(manager).post("/admin/incidents/triagerule/add/", rule_data(team_a, **extra))
    assert response.status_code == 200
    assert field_error in response.content.decode()
    assert not TriageRule.objects.exists()


def test_rule_cannot_route_to_a_service_of_another_team_it_can_see(
        login, django_user_model, team_a, team_b, service_a, service_b):
    # A manager of A who is only a responder in B: B's services are not offered.
    boss = django_user_model.objects.create_user("boss", password="pw", is_staff=True)
    team_a.memberships.create(user=boss, role="manager")
    team_b.memberships.create(user=boss, role="responder")
    response = login(boss).post("/admin/incidents/triagerule/add/", rule_data(
        team_a, route_to_service=service_b.pk))
    assert "Select a valid choice" in response.content.decode()
    assert not TriageRule.objects.exists()


def test_superuser_rule_with_mismatched_team_is_refused(login, admin_user, team_a, service_b):
    response = login(admin_user).post("/admin/incidents/triagerule/add/", rule_data(
        team_a, route_to_service=service_b.pk))
    assert "does not belong to team Payments" in response.content.decode()
    assert not TriageRule.objects.exists()


def test_reorder_with_editable_positions(login, manager, team_a):
    first = TriageRule.objects.create(team=team_a, name="first", position=10, set_severity="SEV1")
    second = TriageRule.objects.create(team=team_a, name="second", position=20, set_severity="SEV2")
    client = login(manager)
    rows = list(client.get("/admin/incidents/triagerule/").context["cl"].result_list)
    assert rows == [first, second]
    data = {"form-TOTAL_FORMS": 2, "form-INITIAL_FORMS": 2, "form-MIN_NUM_FORMS": 0,
            "form-MAX_NUM_FORMS": 1000, "_save": "Save",
            "form-0-id": first.pk, "form-0-position": 30, "form-0-enabled": "on",
            "form-1-id": second.pk, "form-1-position": 20, "form-1-enabled": "on"}
    assert client.post("/admin/incidents/triagerule/", data).status_code == 302
    rows = list(client.get("/admin/incidents/triagerule/").context["cl"].result_list)
    assert rows == [second, first]


def test_load_templates_page(login, manager, responder):
    response = login(manager).get(LOAD)
    assert response.status_code == 200
    html = response.content.decode()
    for tpl in RULE_TEMPLATES:
        assert tpl.name in html
    assert login(responder).get(LOAD).status_code == 403


def test_load_templates_creates_working_rules(login, manager, team_a, service_a, raise_alert):
    from incidents.models import Service

    ledger = Service.objects.create(team=team_a, name="ledger")
    keys = [tpl.key for tpl in RULE_TEMPLATES]
    response = login(manager).post(LOAD, {"team": team_a.pk, "templates": keys, "route_service": ledger.pk})
    assert response.status_code == 302
    assert "Created 6 rule(s)" in messages_of(response)[0]
    rules = list(TriageRule.objects.order_by("position"))
    assert [r.position for r in rules] == [10, 20, 30, 40, 50, 60]
    # The templates work through the real pipeline.
    db = raise_alert(service_a, "database down: primary unreachable", severity="SEV3")
    assert (db.severity, db.priority) == ("SEV1", "P1")
    assert raise_alert(service_a, "[TEST] please ignore") is None
    assert Alert.objects.get(summary="[TEST] please ignore").outcome == "suppressed"
    staging = raise_alert(service_a, "database down", key="stg", labels={"env": "staging"})
    assert (staging.severity, staging.priority) == ("SEV4", "P5")
    disk = raise_alert(service_a, "Low disk space on /var", severity="SEV1")
    assert disk.severity == "SEV3"
    routed = raise_alert(service_a, "ledger mismatch", labels={"service": "ledger"})
    assert routed.service == ledger
    # Loading again duplicates nothing.
    response = login(manager).post(LOAD, {"team": team_a.pk, "templates": keys, "route_service": ledger.pk})
    assert "Already present, skipped" in messages_of(response)[-1]
    assert TriageRule.objects.count() == 6


@pytest.mark.parametrize("data,error", [
    ({"templates": ["route-by-label"]}, "Choose the service to route to"),
    ({"templates": []}, "This field is required"),
    ({"templates": ["no-such-template"]}, "Select a valid choice"),
    ({"templates": ["database-down"], "team": "other"}, "Select a valid choice"),
    ({"templates": ["route-by-label"], "route_service": "other"}, "Select a valid choice"),
])
def test_load_templates_bad_input(login, manager, team_a, team_b, service_b, data, error):
    post = {"team": team_a.pk, **data}
    if post.get("team") == "other":
        post["team"] = team_b.pk
    if post.get("route_service") == "other":
        post["route_service"] = service_b.pk
    response = login(manager).post(LOAD, post)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not TriageRule.objects.exists()


def test_rule_templates_load_refuses_foreign_service(team_a, service_b):
    with pytest.raises(ValueError, match="does not belong"):
        rule_templates_load(team=team_a, keys=["route-by-label"], route_service=service_b)
    assert not TriageRule.objects.exists()


# ----------------------------------------------------------------------------- integrations


@pytest.mark.parametrize("kind,expected", [
    ("generic", "/integrations/generic/"), ("pagerduty", '"routing_key"'),
    ("alertmanager", '"fingerprint"'), ("grafana", "/integrations/grafana/"),
])
def test_integration_page_shows_url_and_curl(login, manager, service_a, make_integration, kind, expected):
    integration = make_integration(service_a, kind)
    html = unescape(login(manager).get(f"/admin/incidents/integration/{integration.pk}/change/")
                    .content.decode())
    assert integration.url in html and "curl -fsS -X POST" in html and expected in html
    assert integration.token in html
    assert 'name="token"' not in html  # shown, never editable
    assert f"/admin/incidents/integration/{integration.pk}/send-test/" in html


def test_send_test_alert_runs_the_pipeline(login, manager, service_a, make_integration):
    integration = make_integration(service_a)
    response = login(manager).post(f"/admin/incidents/integration/{integration.pk}/send-test/")
    assert response.status_code == 302
    alert = Alert.objects.get()
    assert alert.integration == integration and alert.outcome == "opened"
    assert alert.incident.title.startswith("Test alert from the ircore console")
    assert "Test alert sent" in messages_of(response)[0] and alert.incident.ref in messages_of(response)[0]


def test_send_test_alert_bad_cases(login, manager, responder, service_a, make_integration):
    disabled = make_integration(service_a, enabled=False)
    response = login(manager).post(f"/admin/incidents/integration/{disabled.pk}/send-test/")
    assert "is disabled" in messages_of(response)[0]
    enabled = make_integration(service_a)
    assert login(manager).get(f"/admin/incidents/integration/{enabled.pk}/send-test/").status_code == 405
    assert login(responder).post(f"/admin/incidents/integration/{enabled.pk}/send-test/").status_code == 403
    assert login(manager).post("/admin/incidents/integration/999999/send-test/").status_code == 404
    assert not Alert.objects.exists()


def test_send_test_alert_bulk_action(login, manager, service_a, make_integration):
    first, second = make_integration(service_a), make_integration(service_a, "pagerduty")
    login(manager).post("/admin/incidents/integration/", {
        "action": "send_test_alert", "_selected_action": [first.pk, second.pk]})
    assert set(Alert.objects.values_list("integration_id", flat=True)) == {first.pk, second.pk}
    assert Incident.objects.count() == 2


def test_create_integration(login, manager, service_a):
    response = login(manager).post("/admin/incidents/integration/add/", {
        "service": service_a.pk, "name": "prod alertmanager", "kind": "alertmanager", "enabled": "on",
        "options": "{}", "rate_limit_per_minute": ""})
    assert response.status_code == 302
    integration = Integration.objects.get()
    assert len(integration.token) == 32


@pytest.mark.parametrize("kind,options,message", [
    ("alertmanager", '{"group_by": "groups"}', "options.group_by must be"),
    ("email", '{"creation": "sometimes"}', "options.creation must be"),
    ("heartbeat", '{"grace": -1}', "&#x27;grace&#x27; must be"),
])
def test_create_integration_with_bad_options_is_refused(login, manager, service_a, kind, options, message):
    response = login(manager).post("/admin/incidents/integration/add/", {
        "service": service_a.pk, "name": "x", "kind": kind, "enabled": "on",
        "options": options, "rate_limit_per_minute": ""})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Integration.objects.count() == 0


# ----------------------------------------------------------------------------- alerts


def test_reprocess_failed_alerts(login, responder, service_a, make_integration):
    from incidents.events import AlertEvent
    from incidents.services import alert_store_failed

    integration = make_integration(service_a)
    failed = alert_store_failed(integration=integration, event=AlertEvent(summary="cpu hot", dedup_key="cpu"),
                                error="database is locked")
    response = login(responder).post("/admin/incidents/alert/", {
        "action": "reprocess_failed", "_selected_action": [failed.pk]})
    assert "Re-processed 1 failed alert(s)" in messages_of(response)[0]
    assert not Alert.objects.filter(pk=failed.pk).exists()
    alert = Alert.objects.get()
    assert alert.outcome == "opened" and alert.incident.title == "cpu hot"


def test_reprocess_leaves_non_failed_alerts_alone(login, responder, service_a, raise_alert):
    incident = raise_alert(service_a, "fine")
    alert = incident.alerts.get()
    response = login(responder).post("/admin/incidents/alert/", {
        "action": "reprocess_failed", "_selected_action": [alert.pk]})
    assert "had not failed" in messages_of(response)[0]
    assert Alert.objects.count() == 1 and Incident.objects.count() == 1


def test_alerts_are_read_only(login, admin_user, service_a, raise_alert):
    alert = raise_alert(service_a, "x").alerts.get()
    client = login(admin_user)
    assert client.get(f"/admin/incidents/alert/{alert.pk}/change/").status_code == 200
    assert client.post(f"/admin/incidents/alert/{alert.pk}/change/", {"summary": "y"}).status_code == 403
    assert client.get("/admin/incidents/alert/add/").status_code == 403
    assert client.get(f"/admin/incidents/alert/{alert.pk}/delete/").status_code == 403


# ----------------------------------------------------------------------------- maintenance


def window_data(team, services, starts="2026-01-01 10:00:00", ends="2026-01-01 12:00:00"):
    return {"team": team.pk, "services": [s.pk for s in services], "starts_at_0": starts[:10],
            "starts_at_1": starts[11:], "ends_at_0": ends[:10], "ends_at_1": ends[11:],
            "reason": "db upgrade"}


def test_create_maintenance_window(login, manager, team_a, service_a):
    response = login(manager).post("/admin/incidents/maintenancewindow/add/",
                                   window_data(team_a, [service_a]))
    assert response.status_code == 302, response.content.decode()[:3000]
    window = MaintenanceWindow.objects.get()
    assert window.created_by == manager and list(window.services.all()) == [service_a]


@pytest.mark.parametrize("case,error", [
    ("ends_before", "must end after it starts"),
    ("other_team_service", "Select a valid choice"),
    ("no_services", "This field is required"),
])
def test_bad_maintenance_windows(login, manager, team_a, service_a, service_b, case, error):
    data = {
        "ends_before": window_data(team_a, [service_a], ends="2026-01-01 09:00:00"),
        "other_team_service": window_data(team_a, [service_b]),
        "no_services": window_data(team_a, []),
    }[case]
    response = login(manager).post("/admin/incidents/maintenancewindow/add/", data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


def test_dual_role_user_cannot_edit_the_other_teams_rules_from_the_list(
        login, django_user_model, team_a, team_b, service_b, make_integration):
    boss = django_user_model.objects.create_user("boss", password="pw", is_staff=True)
    team_a.memberships.create(user=boss, role="manager")
    team_b.memberships.create(user=boss, role="responder")
    rule_b = TriageRule.objects.create(team=team_b, name="b rule", position=10, set_severity="SEV1")
    client = login(boss)
    data = {"form-TOTAL_FORMS": 1, "form-INITIAL_FORMS": 1, "form-MIN_NUM_FORMS": 0,
            "form-MAX_NUM_FORMS": 1000, "_save": "Save",
            "form-0-id": rule_b.pk, "form-0-position": 99}
    assert client.post("/admin/incidents/triagerule/", data).status_code == 403
    rule_b.refresh_from_db()
    assert rule_b.position == 10 and rule_b.enabled
    integration_b = make_integration(service_b)
    response = client.post("/admin/incidents/integration/", {
        "action": "send_test_alert", "_selected_action": [integration_b.pk]})
    assert "Only a manager of its team" in messages_of(response)[-1]
    assert not Alert.objects.exists()


def test_add_forms_preselect_the_only_team(login, manager, team_a):
    for url in ("/admin/incidents/triagerule/add/", "/admin/incidents/service/add/",
                "/admin/incidents/maintenancewindow/add/"):
        form = login(manager).get(url).context["adminform"].form
        assert form.initial.get("team") == team_a.pk, url
