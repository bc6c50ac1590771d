"""/api/v1/incidents/: reads, filters, actions, PATCH through services, team isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents import services
from incidents.models import Incident, TimelineEntry

URL = "/api/v1/incidents/"


def url(incident, suffix=""):
    return f"{URL}{incident.pk}/{suffix}"


def kinds(incident):
    return list(TimelineEntry.objects.filter(incident=incident).values_list("kind", flat=True))


# --------------------------------------------------------------------------- reads


def test_detail_has_the_documented_fields(responder_api, responder, incident_a):
    services.incident_acknowledge(incident=incident_a, user=responder, via="web")
    data = responder_api.get(url(incident_a)).json()
    assert data["id"] == incident_a.pk
    assert data["number"] == incident_a.number and data["ref"] == f"INC-{incident_a.number}"
    assert data["title"] == "payments-api 500s"
    assert data["status"] == "acknowledged"
    assert data["severity"] == "SEV2" and data["priority"] == "P2"
    assert data["service"] == incident_a.service_id and data["team"] == incident_a.team_id
    assert data["service_name"] == "payments-api"
    assert data["dedup_key"] == "a-1" and data["alert_count"] == 1
    assert data["triggered_at"] and data["acknowledged_at"]
    assert data["resolved_at"] is None and data["mitigated_at"] is None
    assert data["acknowledged_by"] == "rita"
    assert data["commander"] is None and data["communication_lead"] is None
    assert data["responders"] == [] and data["stakeholders"] == []
    assert data["war_room_url"] == "" and data["in_maintenance"] is False


def test_list_is_scoped_to_the_callers_teams(responder_api, outsider_api, admin_api, incident_a, incident_b):
    assert [r["id"] for r in responder_api.get(URL).json()["results"]] == [incident_a.pk]
    assert [r["id"] for r in outsider_api.get(URL).json()["results"]] == [incident_b.pk]
    assert {r["id"] for r in admin_api.get(URL).json()["results"]} == {incident_a.pk, incident_b.pk}


@pytest.mark.parametrize("method,suffix", [
    ("get", ""), ("patch", ""), ("get", "timeline/"), ("post", "acknowledge/"), ("post", "resolve/"),
    ("post", "reopen/"), ("post", "mitigate/"), ("post", "escalate/"), ("post", "notes/"),
])
def test_other_teams_incident_is_404_and_untouched(responder_api, incident_b, method, suffix):
    response = getattr(responder_api, method)(url(incident_b, suffix), {"text": "hi", "severity": "SEV1"},
                                              format="json")
    assert response.status_code == 404
    incident_b.refresh_from_db()
    assert incident_b.status == "triggered" and incident_b.severity == "SEV3"
    assert kinds(incident_b) == ["triggered"]


def test_user_without_team_sees_nothing(api_as, django_user_model, incident_a):
    loner = django_user_model.objects.create_user("lonely", password="x")
    client = api_as(loner)
    assert client.get(URL).json()["count"] == 0
    assert client.get(url(incident_a)).status_code == 404
    assert client.post(url(incident_a, "acknowledge/")).status_code == 404


def test_put_is_not_allowed(responder_api, incident_a):
    assert responder_api.put(url(incident_a), {"severity": "SEV1"}, format="json").status_code == 405


def test_delete_is_not_a_route(admin_api, incident_a):
    assert admin_api.delete(url(incident_a)).status_code == 405
    assert Incident.objects.count() == 1


def test_responder_declares_an_incident(responder_api, service_a):
    body = {"service": service_a.pk, "title": "  Customers report failed refunds ", "severity": "SEV2",
            "description": "3 tickets in 10 minutes"}
    response = responder_api.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["title"] == "Customers report failed refunds" and data["status"] == "triggered"
    assert (data["severity"], data["priority"]) == ("SEV2", "P2")
    assert data["team"] == service_a.team_id and data["ref"].startswith("INC-")
    incident = Incident.objects.get(pk=data["id"])
    entry = TimelineEntry.objects.get(incident=incident)
    assert entry.kind == "triggered" and entry.actor.username == "rita" and entry.via == "api"
    body = {"service": service_a.pk, "title": "x", "priority": "P1"}
    response = responder_api.post(URL, body, format="json")
    assert (response.json()["severity"], response.json()["priority"]) == ("SEV3", "P1")


@pytest.mark.parametrize("body,field,message", [
    ({"title": "x"}, "service", "required"),
    ({"service": "SB", "title": "x"}, "service", "Incorrect type"),
    ({"service": "SA", "title": "   "}, "title", "blank"),
    ({"service": "SA"}, "title", "required"),
    ({"service": "SA", "title": "x", "severity": "SEV0"}, "severity", "not a valid severity"),
    ({"service": "SA", "title": "x", "priority": "P0"}, "priority", "not a valid priority"),
])
def test_bad_declare_is_400_and_opens_nothing(responder_api, service_a, body, field, message):
    body = {key: service_a.pk if value == "SA" else value for key, value in body.items()}
    response = responder_api.post(URL, body, format="json")
    assert response.status_code == 400
    assert message in str(response.json()[field])
    assert not Incident.objects.exists()


def test_cannot_declare_in_another_team(responder_api, service_b):
    response = responder_api.post(URL, {"service": service_b.pk, "title": "x"}, format="json")
    assert response.status_code == 400 and "does not exist" in response.json()["service"][0]
    assert not Incident.objects.exists()


# --------------------------------------------------------------------------- filters


@pytest.fixture
def several(integration_a, open_incident, responder):
    critical = open_incident(integration_a, dedup_key="db", summary="database down", severity="SEV1")
    acked = open_incident(integration_a, dedup_key="disk", summary="disk full", severity="SEV3")
    services.incident_acknowledge(incident=acked, user=responder, via="web")
    done = open_incident(integration_a, dedup_key="cpu", summary="cpu high", severity="SEV4")
    services.incident_resolve(incident=done, user=responder, via="web")
    Incident.objects.filter(pk=done.pk).update(triggered_at=timezone.now() - timedelta(days=3))
    return {"critical": critical, "acked": acked, "done": done}


def ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize("query,expected", [
    ("status=triggered", {"critical"}),
    ("status=triggered&status=acknowledged", {"critical", "acked"}),
    ("severity=SEV1", {"critical"}),
    ("priority=P4", {"done"}),
    ("dedup_key=disk", {"acked"}),
    ("open=true", {"critical", "acked"}),
    ("open=false", {"done"}),
    ("search=DATABASE", {"critical"}),
    ("search=full disk", {"acked"}),
])
def test_filters(responder_api, several, query, expected):
    assert ids(responder_api.get(f"{URL}?{query}")) == {several[name].pk for name in expected}


def test_search_by_reference(responder_api, several):
    ref = several["acked"].ref
    assert ids(responder_api.get(f"{URL}?search={ref}")) == {several["acked"].pk}
    assert ids(responder_api.get(f"{URL}?search={several['acked'].number}")) == {several["acked"].pk}


def test_triggered_at_range(responder_api, several):
    cutoff = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(responder_api.get(URL, {"triggered_before": cutoff})) == {several["done"].pk}
    assert ids(responder_api.get(URL, {"triggered_after": cutoff})) == {several["critical"].pk,
                                                                        several["acked"].pk}


def test_service_and_team_filters(admin_api, several, incident_b, service_a, service_b, team_b):
    assert ids(admin_api.get(URL, {"service": service_b.pk})) == {incident_b.pk}
    assert ids(admin_api.get(URL, {"team": team_b.pk})) == {incident_b.pk}
    assert len(ids(admin_api.get(URL, {"service": service_a.pk}))) == 3


def test_filter_by_other_teams_service_reveals_nothing(responder_api, several, service_b, incident_b):
    assert ids(responder_api.get(URL, {"service": service_b.pk})) == set()


def test_ordering(responder_api, several):
    rows = responder_api.get(URL, {"ordering": "severity"}).json()["results"]
    assert [r["severity"] for r in rows] == ["SEV1", "SEV3", "SEV4"]
    rows = responder_api.get(URL, {"ordering": "-number"}).json()["results"]
    assert [r["number"] for r in rows] == sorted((r["number"] for r in rows), reverse=True)


@pytest.mark.parametrize("query,field", [
    ("status=exploded", "status"),
    ("severity=SEV9", "severity"),
    ("triggered_after=yesterday", "triggered_after"),
    ("service=abc", "service"),
    ("open=maybe", "open"),
])
def test_bad_filter_values_are_400_naming_the_parameter(responder_api, several, query, field):
    response = responder_api.get(f"{URL}?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_pagination(responder_api, several):
    page = responder_api.get(URL, {"limit": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]


# --------------------------------------------------------------------------- actions


def test_acknowledge_then_resolve_then_reopen(responder_api, incident_a):
    response = responder_api.post(url(incident_a, "acknowledge/"))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "acknowledged" and response.json()["acknowledged_by"] == "rita"
    response = responder_api.post(url(incident_a, "resolve/"))
    assert response.json()["status"] == "resolved" and response.json()["resolved_at"]
    response = responder_api.post(url(incident_a, "reopen/"))
    assert response.status_code == 200 and response.json()["status"] == "triggered"
    assert response.json()["resolved_at"] is None and response.json()["acknowledged_by"] is None
    assert kinds(incident_a) == ["triggered", "acknowledged", "resolved", "reopened"]
    entry = TimelineEntry.objects.get(incident=incident_a, kind="acknowledged")
    assert entry.via == "api" and entry.actor.username == "rita"
    assert "via API" in entry.message


def test_unacknowledge(responder_api, incident_a):
    responder_api.post(url(incident_a, "acknowledge/"))
    response = responder_api.post(url(incident_a, "unacknowledge/"))
    assert response.status_code == 200 and response.json()["status"] == "triggered"
    assert responder_api.post(url(incident_a, "unacknowledge/")).status_code == 409


def test_mitigate_once(responder_api, incident_a):
    response = responder_api.post(url(incident_a, "mitigate/"))
    assert response.status_code == 200 and response.json()["mitigated_at"]
    assert response.json()["status"] == "triggered"
    again = responder_api.post(url(incident_a, "mitigate/"))
    assert again.status_code == 409
    assert "already marked mitigated" in again.json()["detail"]
    assert kinds(incident_a).count("mitigated") == 1


def test_escalate_sends_acknowledged_incident_back_to_triggered(responder_api, incident_a):
    responder_api.post(url(incident_a, "acknowledge/"))
    response = responder_api.post(url(incident_a, "escalate/"))
    assert response.status_code == 200 and response.json()["status"] == "triggered"
    assert kinds(incident_a)[-1] == "escalation"


@pytest.mark.parametrize("action,message", [
    ("acknowledge/", "is resolved; reopen it first"),
    ("resolve/", "is already resolved"),
    ("mitigate/", "nothing left to mitigate"),
    ("escalate/", "reopen it before escalating"),
    ("unacknowledge/", "is not acknowledged"),
])
def test_transition_on_resolved_incident_is_409(responder_api, responder, incident_a, action, message):
    services.incident_resolve(incident=incident_a, user=responder, via="web")
    before = kinds(incident_a)
    response = responder_api.post(url(incident_a, action))
    assert response.status_code == 409
    assert message in response.json()["detail"] and incident_a.ref in response.json()["detail"]
    assert kinds(incident_a) == before


def test_acknowledge_twice_is_409_naming_who(responder_api, secondary, api_as, incident_a):
    assert api_as(secondary).post(url(incident_a, "acknowledge/")).status_code == 200
    response = responder_api.post(url(incident_a, "acknowledge/"))
    assert response.status_code == 409
    assert "already acknowledged by sam" in response.json()["detail"]


def test_reopen_open_incident_is_409(responder_api, incident_a):
    response = responder_api.post(url(incident_a, "reopen/"))
    assert response.status_code == 409 and "is not resolved" in response.json()["detail"]


def test_reopen_conflicting_with_a_newer_open_incident_is_409(responder_api, responder, incident_a,
                                                              integration_a, open_incident):
    services.incident_resolve(incident=incident_a, user=responder, via="web")
    newer = open_incident(integration_a, dedup_key="a-1")
    assert newer.pk != incident_a.pk
    response = responder_api.post(url(incident_a, "reopen/"))
    assert response.status_code == 409
    assert "another incident with dedup key 'a-1' is open" in response.json()["detail"]
    incident_a.refresh_from_db()
    assert incident_a.status == "resolved" and kinds(incident_a)[-1] == "resolved"


def test_notes(responder_api, incident_a):
    response = responder_api.post(url(incident_a, "notes/"), {"text": "  rolled back deploy 42 "},
                                  format="json")
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "note" and response.json()["actor"] == "rita"
    assert response.json()["message"] == "rolled back deploy 42"
    note = TimelineEntry.objects.get(incident=incident_a, kind="note")
    assert note.via == "api"


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "   "}, {"text": "x" * 20001}, {"note": "hi"}])
def test_bad_notes_are_400_and_write_nothing(responder_api, incident_a, body):
    response = responder_api.post(url(incident_a, "notes/"), body, format="json")
    assert response.status_code == 400
    assert "text" in response.json()
    assert "note" not in kinds(incident_a)


def test_timeline_is_oldest_first_and_paginated(responder_api, incident_a):
    responder_api.post(url(incident_a, "acknowledge/"))
    responder_api.post(url(incident_a, "notes/"), {"text": "looking"}, format="json")
    data = responder_api.get(url(incident_a, "timeline/")).json()
    assert data["count"] == 3
    assert [e["kind"] for e in data["results"]] == ["triggered", "acknowledged", "note"]
    assert data["results"][1]["actor"] == "rita" and data["results"][1]["via"] == "api"
    assert len(responder_api.get(url(incident_a, "timeline/"), {"limit": 1}).json()["results"]) == 1


def test_timeline_ignores_incident_filters(responder_api, incident_a):
    response = responder_api.get(url(incident_a, "timeline/"), {"status": "resolved"})
    assert response.status_code == 200 and response.json()["count"] == 1


def test_responders_may_act_but_outsiders_may_not(outsider_api, incident_a):
    # outsider manages team B; team A's incident simply does not exist for them.
    assert outsider_api.post(url(incident_a, "resolve/")).status_code == 404


# --------------------------------------------------------------------------- PATCH


def test_patch_severity_and_priority_go_through_services(responder_api, incident_a):
    response = responder_api.patch(url(incident_a), {"severity": "SEV1", "priority": "P1"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["severity"] == "SEV1" and response.json()["priority"] == "P1"
    assert kinds(incident_a)[-2:] == ["severity", "priority"]
    sev = TimelineEntry.objects.get(incident=incident_a, kind="severity")
    assert sev.message.startswith("Severity changed from SEV2 to SEV1") and sev.via == "api"


def test_patch_same_value_writes_nothing(responder_api, incident_a):
    response = responder_api.patch(url(incident_a), {"severity": "SEV2"}, format="json")
    assert response.status_code == 200
    assert kinds(incident_a) == ["triggered"]


def test_patch_roles(responder_api, incident_a, responder, secondary, manager, outsider):
    body = {"commander": "maya", "communication_lead": "sam", "responders": ["rita", "sam"],
            "stakeholders": ["maya"], "war_room_url": "https://meet.example.com/inc"}
    response = responder_api.patch(url(incident_a), body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["commander"] == "maya" and data["communication_lead"] == "sam"
    assert data["responders"] == ["rita", "sam"] and data["stakeholders"] == ["maya"]
    assert data["war_room_url"] == "https://meet.example.com/inc"
    assert kinds(incident_a).count("role") == 5
    response = responder_api.patch(url(incident_a), {"commander": None, "responders": []}, format="json")
    assert response.json()["commander"] is None and response.json()["responders"] == []


@pytest.mark.parametrize("body,field,message", [
    ({"severity": "SEV9"}, "severity", '"SEV9" is not a valid severity; use one of SEV1, SEV2, SEV3, SEV4.'),
    ({"priority": "urgent"}, "priority", "not a valid priority"),
    ({"status": "resolved"}, "status", "/resolve/"),
    ({"title": "renamed"}, "title", "read-only"),
    ({"colour": "red"}, "colour", "Unknown field"),
    ({"commander": "nobody"}, "commander", "does not exist"),
    ({"commander": "otto"}, "commander", "does not exist"),  # team B's manager: invisible to rita
    ({"responders": ["rita", "ghost"]}, "responders", "does not exist"),
    ({"war_room_url": "not a url"}, "war_room_url", "valid URL"),
])
def test_bad_patch_is_400_and_changes_nothing(responder_api, incident_a, responder, outsider, body, field,
                                              message):
    response = responder_api.patch(url(incident_a), body, format="json")
    assert response.status_code == 400
    assert message in str(response.json()[field])
    incident_a.refresh_from_db()
    assert (incident_a.severity, incident_a.priority, incident_a.commander_id) == ("SEV2", "P2", None)
    assert kinds(incident_a) == ["triggered"]


def test_patch_is_all_or_nothing(responder_api, incident_a):
    response = responder_api.patch(url(incident_a), {"severity": "SEV1", "commander": "ghost"}, format="json")
    assert response.status_code == 400
    incident_a.refresh_from_db()
    assert incident_a.severity == "SEV2"


def test_commander_must_be_in_the_incidents_team(admin_api, incident_a, outsider):
    # The superuser sees otto, but otto is not in team A.
    body = {"commander": "otto", "stakeholders": ["otto"]}
    response = admin_api.patch(url(incident_a), body, format="json")
    assert response.status_code == 400
    assert response.json() == {"commander": ["otto: not a member of team Payments."]}
    response = admin_api.patch(url(incident_a), {"stakeholders": ["otto"]}, format="json")
    assert response.status_code == 200 and response.json()["stakeholders"] == ["otto"]


# --------------------------------------------------------------------------- query counts


def _queries(client, path):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries)


def test_list_query_count_does_not_grow_with_rows(responder_api, integration_a, open_incident, responder,
                                                  secondary, manager):
    def add(n):
        for i in range(n):
            incident = open_incident(integration_a, dedup_key=f"q{Incident.objects.count()}-{i}")
            services.incident_acknowledge(incident=incident, user=responder, via="web")
            services.incident_assign_roles(incident=incident, user=responder, via="web", commander=manager,
                                           communication_lead=secondary, responders=[responder, secondary],
                                           stakeholders=[manager])

    add(2)
    few = _queries(responder_api, URL)
    add(10)
    many = _queries(responder_api, URL)
    assert few == many, (few, many)
    assert many <= 8


def test_page_size_is_capped(responder_api, integration_a, open_incident, monkeypatch):
    from incidents.api.base import Pagination

    assert Pagination.max_limit == 500
    monkeypatch.setattr(Pagination, "max_limit", 2)
    for i in range(3):
        open_incident(integration_a, dedup_key=f"cap{i}")
    page = responder_api.get(URL, {"limit": 100000}).json()
    assert page["count"] == 3 and len(page["results"]) == 2


@pytest.mark.parametrize("raw", ["[1, 2]", '"SEV1"', "{not json"])
def test_patch_with_a_body_that_is_not_an_object_is_400(responder_api, incident_a, raw):
    response = responder_api.generic("PATCH", url(incident_a), raw, content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert "JSON parse error" in body.get("detail", "") or "Expected a dictionary" in str(body)
    assert kinds(incident_a) == ["triggered"]
