"""Teams, services, integrations, triage rules, maintenance windows and alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents import services
from incidents.events import AlertEvent
from incidents.models import Alert, Integration, MaintenanceWindow, Service, TriageRule


def _queries(client, path):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries)


# --------------------------------------------------------------------------- teams


def test_teams_lists_own_teams_with_members(responder_api, manager, secondary, outsider, team_a):
    data = responder_api.get("/api/v1/teams/").json()
    assert data["count"] == 1
    team = data["results"][0]
    assert team["slug"] == "payments" and team["my_role"] == "responder"
    assert [(m["username"], m["role"]) for m in team["members"]] == [
        ("maya", "manager"), ("rita", "responder"), ("sam", "responder")]
    assert team["members"][0]["name"] == "Maya"


def test_other_team_is_404_and_teams_are_read_only(responder_api, admin_api, team_a, team_b, outsider):
    assert responder_api.get(f"/api/v1/teams/{team_b.pk}/").status_code == 404
    assert responder_api.get(f"/api/v1/teams/{team_a.pk}/").status_code == 200
    assert admin_api.post("/api/v1/teams/", {"name": "x", "slug": "x"}, format="json").status_code == 405
    assert admin_api.get("/api/v1/teams/").json()["count"] == 2
    assert admin_api.get(f"/api/v1/teams/{team_b.pk}/").json()["my_role"] is None


def test_teams_list_query_count_is_constant(admin_api, django_user_model, team_a, team_b, responder):
    few = _queries(admin_api, "/api/v1/teams/")
    from ircore.models import Team

    for i in range(5):
        team = Team.objects.create(name=f"T{i}", slug=f"t{i}")
        for j in range(3):
            user = django_user_model.objects.create_user(f"u{i}-{j}")
            team.memberships.create(user=user)
    assert _queries(admin_api, "/api/v1/teams/") == few


# --------------------------------------------------------------------------- services


def test_manager_creates_updates_and_deletes_a_service(manager_api, team_a):
    response = manager_api.post("/api/v1/services/", {"team": team_a.pk, "name": "ledger", "ack_timeout": 30},
                                format="json")
    assert response.status_code == 201, response.content
    sid = response.json()["id"]
    response = manager_api.patch(f"/api/v1/services/{sid}/", {"description": "the books"}, format="json")
    assert response.status_code == 200 and response.json()["description"] == "the books"
    assert manager_api.delete(f"/api/v1/services/{sid}/").status_code == 204
    assert not Service.objects.filter(pk=sid).exists()


def test_responder_reads_services_but_cannot_change_them(responder_api, service_a, team_a):
    assert responder_api.get("/api/v1/services/").json()["count"] == 1
    response = responder_api.post("/api/v1/services/", {"team": team_a.pk, "name": "x"}, format="json")
    assert response.status_code == 403
    response = responder_api.patch(f"/api/v1/services/{service_a.pk}/", {"name": "y"}, format="json")
    assert response.status_code == 403 and "manager role" in response.json()["detail"]
    assert responder_api.delete(f"/api/v1/services/{service_a.pk}/").status_code == 403
    assert Service.objects.get().name == "payments-api"


def test_team_isolation_for_services(manager_api, service_b, team_b):
    assert manager_api.get(f"/api/v1/services/{service_b.pk}/").status_code == 404
    response = manager_api.patch(f"/api/v1/services/{service_b.pk}/", {"name": "x"}, format="json")
    assert response.status_code == 404
    assert manager_api.delete(f"/api/v1/services/{service_b.pk}/").status_code == 404
    response = manager_api.post("/api/v1/services/", {"team": team_b.pk, "name": "sneaky"}, format="json")
    assert response.status_code == 400
    assert "does not exist" in response.json()["team"][0]
    assert not Service.objects.filter(name="sneaky").exists()


def test_multi_team_responder_cannot_create_where_not_manager(api_as, manager, team_b, service_a):
    team_b.memberships.create(user=manager, role="responder")
    response = api_as(manager).post("/api/v1/services/", {"team": team_b.pk, "name": "x"}, format="json")
    assert response.status_code == 403
    assert not Service.objects.filter(name="x").exists()


TEAM_A = object()  # replaced by team A's id


@pytest.mark.parametrize("body,field", [
    ({"name": "x"}, "team"),
    ({"team": "TEAM", "name": "x"}, "team"),
    ({"team": None, "name": "y"}, "team"),
    ({"team": TEAM_A, "name": ""}, "name"),
    ({"team": TEAM_A, "name": "payments-api"}, "non_field_errors"),  # unique per team
    ({"team": TEAM_A, "name": "z", "ack_timeout": 0}, "ack_timeout"),
    ({"team": TEAM_A, "name": "z", "auto_resolve_timeout": "soon"}, "auto_resolve_timeout"),
])
def test_bad_service_input_is_400(manager_api, team_a, service_a, body, field):
    body = {key: team_a.pk if value is TEAM_A else value for key, value in body.items()}
    response = manager_api.post("/api/v1/services/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Service.objects.count() == 1


def test_service_cannot_move_team(admin_api, service_a, team_b):
    response = admin_api.patch(f"/api/v1/services/{service_a.pk}/", {"team": team_b.pk}, format="json")
    assert response.status_code == 400 and "cannot move" in response.json()["team"][0]


def test_service_with_incidents_cannot_be_deleted(manager_api, service_a, incident_a):
    response = manager_api.delete(f"/api/v1/services/{service_a.pk}/")
    assert response.status_code == 409
    assert "incidents" in response.json()["detail"]
    assert Service.objects.filter(pk=service_a.pk).exists()


def test_service_filters(admin_api, service_a, service_b, team_b):
    data = admin_api.get("/api/v1/services/", {"team": team_b.pk}).json()
    assert [s["id"] for s in data["results"]] == [service_b.pk]
    assert admin_api.get("/api/v1/services/", {"search": "payments"}).json()["count"] == 1


# --------------------------------------------------------------------------- integrations


def test_manager_creates_integration_with_generated_token_and_url(manager_api, service_a, settings):
    response = manager_api.post("/api/v1/integrations/", {
        "service": service_a.pk, "name": "prom", "kind": "alertmanager", "options": {"group_by": "group"},
        "token": "chosen-by-me", "url": "http://evil/"}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    integration = Integration.objects.get(pk=data["id"])
    assert data["token"] == integration.token != "chosen-by-me"
    assert data["url"] == f"{settings.PUBLIC_URL}/integrations/alertmanager/{integration.token}/"
    assert data["team"] == service_a.team_id and data["options"] == {"group_by": "group"}


def test_integration_token_is_read_only_on_update(manager_api, integration_a):
    token = integration_a.token
    response = manager_api.patch(f"/api/v1/integrations/{integration_a.pk}/",
                                 {"token": "new", "enabled": False}, format="json")
    assert response.status_code == 200
    integration_a.refresh_from_db()
    assert integration_a.token == token and integration_a.enabled is False


@pytest.mark.parametrize("body,field,message", [
    ({"kind": "carrier-pigeon"}, "kind", "not a valid integration kind"),
    ({"options": ["a"]}, "options", "JSON object"),
    ({"rate_limit_per_minute": 0}, "rate_limit_per_minute", "greater than or equal to 1"),
    ({"service": 999999}, "service", "does not exist"),
    ({"name": ""}, "name", "blank"),
    ({"kind": "alertmanager", "options": {"group_by": "grup"}}, "options", "options.group_by must be"),
    ({"kind": "email", "options": {"dedup": "regex"}}, "options", "dedup_regex is required"),
    ({"kind": "email", "options": {"resolve_pattern": "(unclosed"}}, "options", "resolve_pattern"),
    ({"kind": "heartbeat", "options": {"interval": 2}}, "options", "'interval' must be"),
])
def test_bad_integration_input_is_400(manager_api, service_a, body, field, message):
    body = {"service": service_a.pk, "name": "x", "kind": "generic", **body}
    response = manager_api.post("/api/v1/integrations/", body, format="json")
    assert response.status_code == 400
    assert message in str(response.json()[field])
    assert Integration.objects.count() == 0


def test_integration_kind_cannot_change(manager_api, integration_a):
    response = manager_api.patch(f"/api/v1/integrations/{integration_a.pk}/", {"kind": "grafana"},
                                 format="json")
    assert response.status_code == 400 and "cannot change" in response.json()["kind"][0]


def test_integration_isolation(manager_api, responder_api, outsider_api, service_b, integration_a,
                               integration_b):
    assert manager_api.get(f"/api/v1/integrations/{integration_b.pk}/").status_code == 404
    assert [i["id"] for i in manager_api.get("/api/v1/integrations/").json()["results"]] == [integration_a.pk]
    body = {"service": service_b.pk, "name": "x", "kind": "generic"}
    response = manager_api.post("/api/v1/integrations/", body, format="json")
    assert response.status_code == 400 and "does not exist" in response.json()["service"][0]
    response = responder_api.post("/api/v1/integrations/",
                                  {"service": integration_a.service_id, "name": "x", "kind": "generic"},
                                  format="json")
    assert response.status_code == 403
    assert outsider_api.delete(f"/api/v1/integrations/{integration_a.pk}/").status_code == 404
    assert Integration.objects.count() == 2


def test_integrations_query_count_is_constant(manager_api, service_a, make_integration):
    make_integration(service_a)
    few = _queries(manager_api, "/api/v1/integrations/")
    for kind in ["pagerduty", "email", "grafana", "heartbeat", "generic"]:
        make_integration(Service.objects.create(team=service_a.team, name=f"s-{kind}"), kind)
    assert _queries(manager_api, "/api/v1/integrations/") == few


# --------------------------------------------------------------------------- triage rules


def test_manager_creates_a_rule_that_then_applies(manager_api, team_a, integration_a):
    response = manager_api.post("/api/v1/triage-rules/", {
        "team": team_a.pk, "name": "db down is SEV1", "match_keywords": "database down",
        "set_severity": "SEV1", "set_priority": "P1"}, format="json")
    assert response.status_code == 201, response.content
    incident = services.alert_ingest(integration=integration_a,
                                     event=AlertEvent(summary="Database down on db-3")).incident
    assert (incident.severity, incident.priority) == ("SEV1", "P1")


def test_rule_routes_to_a_service_of_the_same_team(manager_api, team_a, service_a):
    other = Service.objects.create(team=team_a, name="ledger")
    response = manager_api.post("/api/v1/triage-rules/", {
        "team": team_a.pk, "name": "to ledger", "match_labels": {"app": "ledger*"},
        "route_to_service": other.pk, "match_service": service_a.pk}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["route_to_service"] == other.pk


@pytest.mark.parametrize("body,field,message", [
    ({"set_severity": "SEV0"}, "set_severity", "not a valid severity; use one of SEV1"),
    ({"match_severity": "critical"}, "match_severity", "not a valid severity"),
    ({"set_priority": "P9"}, "set_priority", "not a valid priority"),
    ({"match_labels": ["env"]}, "match_labels", "JSON object"),
    ({"match_labels": {"env": {"nested": 1}}}, "match_labels", "JSON object"),
    ({"name": ""}, "name", "blank"),
    ({"position": -1}, "position", "greater than or equal to 0"),
])
def test_bad_rule_input_is_400(manager_api, team_a, body, field, message):
    body = {"team": team_a.pk, "name": "r", **body}
    response = manager_api.post("/api/v1/triage-rules/", body, format="json")
    assert response.status_code == 400
    assert message in str(response.json()[field])
    assert TriageRule.objects.count() == 0


def test_rule_cannot_reference_other_teams_objects(manager_api, team_a, service_b, integration_b):
    for field, value in [("route_to_service", service_b.pk), ("match_service", service_b.pk),
                         ("match_integration", integration_b.pk)]:
        response = manager_api.post("/api/v1/triage-rules/", {"team": team_a.pk, "name": "r", field: value},
                                    format="json")
        assert response.status_code == 400
        assert "does not exist" in response.json()[field][0]
    assert TriageRule.objects.count() == 0


def test_multi_team_manager_cannot_mix_teams_in_a_rule(api_as, manager, team_a, team_b, service_b):
    team_b.memberships.create(user=manager, role="manager")
    response = api_as(manager).post("/api/v1/triage-rules/",
                                    {"team": team_a.pk, "name": "r", "route_to_service": service_b.pk},
                                    format="json")
    assert response.status_code == 400
    assert response.json()["route_to_service"] == ["search-api belongs to another team than Payments."]


def test_rule_isolation_and_responder_read_only(responder_api, outsider_api, team_a, team_b):
    rule = TriageRule.objects.create(team=team_a, name="mine")
    assert responder_api.get(f"/api/v1/triage-rules/{rule.pk}/").status_code == 200
    assert responder_api.patch(f"/api/v1/triage-rules/{rule.pk}/", {"enabled": False},
                               format="json").status_code == 403
    assert outsider_api.get(f"/api/v1/triage-rules/{rule.pk}/").status_code == 404
    response = outsider_api.post("/api/v1/triage-rules/", {"team": team_a.pk, "name": "x"}, format="json")
    assert response.status_code == 400
    assert TriageRule.objects.count() == 1


def test_rules_are_listed_in_position_order(manager_api, team_a):
    for position, name in [(20, "b"), (10, "a"), (30, "c")]:
        TriageRule.objects.create(team=team_a, name=name, position=position)
    rows = manager_api.get("/api/v1/triage-rules/").json()["results"]
    assert [r["name"] for r in rows] == ["a", "b", "c"]


# --------------------------------------------------------------------------- maintenance windows


def _window(client, **body):
    return client.post("/api/v1/maintenance-windows/", body, format="json")


def test_manager_creates_a_window_and_incidents_inside_are_marked(manager_api, manager, service_a,
                                                                  integration_a):
    now = timezone.now()
    response = _window(manager_api, services=[service_a.pk], reason="db upgrade",
                       starts_at=(now - timedelta(minutes=5)).isoformat(),
                       ends_at=(now + timedelta(hours=1)).isoformat())
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["team"] == service_a.team_id and data["created_by"] == "maya" and data["is_active"] is True
    incident = services.alert_ingest(integration=integration_a, event=AlertEvent(summary="x")).incident
    assert incident.in_maintenance is True


@pytest.mark.parametrize("shift,field,message", [
    ({"ends_at": -1}, "ends_at", "must end after it starts"),
    ({"ends_at": 0}, "ends_at", "must end after it starts"),
    ({"services": []}, "services", "may not be empty"),
    ({"services": None}, "services", "required"),
    ({"starts_at": "tomorrow"}, "starts_at", "Datetime has wrong format"),
])
def test_bad_window_input_is_400(manager_api, service_a, shift, field, message):
    start = timezone.now()
    body = {"services": [service_a.pk], "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat()}
    for key, value in shift.items():
        if key == "ends_at":
            body[key] = (start + timedelta(hours=value)).isoformat()
        elif value is None:
            body.pop(key)
        else:
            body[key] = value
    response = _window(manager_api, **body)
    assert response.status_code == 400
    assert message in str(response.json()[field])
    assert MaintenanceWindow.objects.count() == 0


def test_window_isolation(manager_api, responder_api, service_a, service_b, team_b):
    now = timezone.now()
    times = {"starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat()}
    response = _window(manager_api, services=[service_b.pk], **times)
    assert response.status_code == 400 and "does not exist" in str(response.json()["services"])
    response = _window(manager_api, services=[service_a.pk], team=team_b.pk, **times)
    assert response.status_code == 400 and "does not exist" in str(response.json()["team"])
    assert _window(responder_api, services=[service_a.pk], **times).status_code == 403
    other = MaintenanceWindow.objects.create(team=team_b, starts_at=now, ends_at=now + timedelta(hours=1))
    assert manager_api.get(f"/api/v1/maintenance-windows/{other.pk}/").status_code == 404
    assert MaintenanceWindow.objects.count() == 1


def test_window_update_checks_the_merged_times(manager_api, service_a, team_a):
    now = timezone.now()
    window = MaintenanceWindow.objects.create(team=team_a, starts_at=now, ends_at=now + timedelta(hours=1))
    window.services.set([service_a])
    response = manager_api.patch(f"/api/v1/maintenance-windows/{window.pk}/",
                                 {"starts_at": (now + timedelta(hours=2)).isoformat()}, format="json")
    assert response.status_code == 400 and "ends_at" in response.json()
    response = manager_api.patch(f"/api/v1/maintenance-windows/{window.pk}/",
                                 {"ends_at": (now + timedelta(hours=3)).isoformat(), "reason": "longer"},
                                 format="json")
    assert response.status_code == 200 and response.json()["reason"] == "longer"


def test_window_filters_and_query_count(manager_api, service_a, team_a):
    now = timezone.now()

    def make(start_h, end_h):
        window = MaintenanceWindow.objects.create(team=team_a, starts_at=now + timedelta(hours=start_h),
                                                  ends_at=now + timedelta(hours=end_h))
        window.services.set([service_a, Service.objects.create(team=team_a, name=f"s{start_h}{end_h}")])
        return window

    current, future = make(-1, 1), make(2, 3)
    rows = manager_api.get("/api/v1/maintenance-windows/", {"active": "true"}).json()["results"]
    assert [r["id"] for r in rows] == [current.pk]
    rows = manager_api.get("/api/v1/maintenance-windows/", {"active": "false"}).json()["results"]
    assert [r["id"] for r in rows] == [future.pk]
    assert manager_api.get("/api/v1/maintenance-windows/", {"active": "soon"}).status_code == 400
    few = _queries(manager_api, "/api/v1/maintenance-windows/")
    for i in range(5):
        make(4 + i, 5 + i)
    assert _queries(manager_api, "/api/v1/maintenance-windows/") == few


# --------------------------------------------------------------------------- alerts


def test_alerts_are_read_only_scoped_and_filterable(responder_api, incident_a, incident_b, integration_a):
    services.alert_ingest(integration=integration_a,
                          event=AlertEvent(summary="ack it", dedup_key="a-1", action="acknowledge"))
    services.alert_ingest(integration=integration_a, event=AlertEvent(summary="other", dedup_key="zzz",
                                                                      action="resolve"))
    data = responder_api.get("/api/v1/alerts/").json()
    assert data["count"] == 3
    assert "payload" not in data["results"][0]
    rows = responder_api.get("/api/v1/alerts/", {"incident": incident_a.pk}).json()["results"]
    assert [r["outcome"] for r in rows] == ["acknowledged", "opened"]
    rows = responder_api.get("/api/v1/alerts/", {"outcome": "no_open_incident"}).json()["results"]
    assert [r["summary"] for r in rows] == ["other"]
    first = Alert.objects.filter(incident=incident_a).earliest("received_at")
    detail = responder_api.get(f"/api/v1/alerts/{first.pk}/").json()
    assert detail["summary"] == "payments-api 500s" and "payload" in detail
    other = Alert.objects.get(incident=incident_b)
    assert responder_api.get(f"/api/v1/alerts/{other.pk}/").status_code == 404
    assert responder_api.get("/api/v1/alerts/", {"service": incident_b.service_id}).json()["count"] == 0
    assert responder_api.post("/api/v1/alerts/", {"summary": "x"}, format="json").status_code == 405
    assert responder_api.delete(f"/api/v1/alerts/{first.pk}/").status_code == 405
    assert responder_api.get("/api/v1/alerts/", {"outcome": "great"}).status_code == 400


def test_alerts_query_count_is_constant(responder_api, integration_a):
    def add(n):
        for i in range(n):
            services.alert_ingest(integration=integration_a, event=AlertEvent(summary=f"a{i}", dedup_key="k"))

    add(2)
    few = _queries(responder_api, "/api/v1/alerts/")
    add(10)
    assert _queries(responder_api, "/api/v1/alerts/") == few


def test_service_timeline_shows_change_events_and_incident_entries(responder_api, service_a, service_b,
                                                                   integration_a, integration_b, incident_a):
    services.change_event_record(integration=integration_a, summary="deployed v42", source="ci")
    services.change_event_record(integration=integration_b, summary="team B deploy")
    base = f"/api/v1/services/{service_a.pk}/timeline/"
    rows = responder_api.get(base).json()["results"]
    assert [(r["kind"], r["incident"]) for r in rows] == [("change", None), ("triggered", incident_a.pk)]
    assert rows[0]["message"] == "deployed v42"
    rows = responder_api.get(base, {"without_incident": "true"}).json()["results"]
    assert [r["message"] for r in rows] == ["deployed v42"]
    assert responder_api.get(base, {"kind": "triggered"}).json()["count"] == 1
    assert responder_api.get(base, {"kind": "bogus"}).status_code == 400
    assert responder_api.get(f"/api/v1/services/{service_b.pk}/timeline/").status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/services/", "/api/v1/triage-rules/"])
def test_config_list_query_counts_are_constant(manager_api, team_a, service_a, integration_a, path):
    def add(n):
        for _ in range(n):
            i = Service.objects.count()
            service = Service.objects.create(team=team_a, name=f"svc{i}")
            TriageRule.objects.create(team=team_a, name=f"r{i}", match_service=service,
                                      route_to_service=service, match_integration=integration_a)

    add(1)
    few = _queries(manager_api, path)
    add(6)
    assert _queries(manager_api, path) == few


def test_user_without_team_cannot_create_anything(api_as, django_user_model, team_a, service_a):
    client = api_as(django_user_model.objects.create_user("lonely"))
    response = client.post("/api/v1/services/", {"team": team_a.pk, "name": "x"}, format="json")
    assert response.status_code == 403
    assert client.get("/api/v1/services/").json()["count"] == 0
    assert client.get(f"/api/v1/services/{service_a.pk}/timeline/").status_code == 404


def test_malformed_json_is_400(manager_api, team_a):
    response = manager_api.generic("POST", "/api/v1/services/", '{"team": ', content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]
    assert not Service.objects.exists()


def test_alerts_found_by_the_key_the_sender_was_answered(responder_api, team_a, integration_a):
    """A triage rule grouped the alert under its own key; the sender only knows the key
    the 202 answered, and finds its alert (and so the outcome) by it."""
    TriageRule.objects.create(team=team_a, name="By source", set_dedup_key="src:{source}")
    services.alert_ingest(integration=integration_a,
                          event=AlertEvent(summary="disk full", source="db1", dedup_key="sent-1"))
    [row] = responder_api.get("/api/v1/alerts/", {"dedup_key": "sent-1"}).json()["results"]
    assert (row["dedup_key"], row["sent_dedup_key"], row["outcome"]) == ("src:db1", "sent-1", "opened")
    [same] = responder_api.get("/api/v1/alerts/", {"dedup_key": "src:db1"}).json()["results"]
    assert same["id"] == row["id"]
    assert responder_api.get("/api/v1/alerts/", {"dedup_key": "sent-2"}).json()["count"] == 0
