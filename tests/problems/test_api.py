"""/api/v1/problems/: create with match rule, link incidents, known-error search, isolation."""

import pytest
from rest_framework.test import APIClient

from incidents import services
from incidents.events import AlertEvent
from incidents.models import Problem


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def incident(service_a, make_integration):
    integration = make_integration(service_a)
    return services.alert_ingest(integration=integration, event=AlertEvent(summary="x")).incident


def test_create_link_and_search_known_errors(responder, service_a, team_a, incident):
    client = client_for(responder)
    payload = {"team": team_a.pk, "title": "Pool exhaustion", "status": "known_error",
               "workaround": "restart pgbouncer", "match_service": service_a.pk, "match_keywords": "too many"}
    res = client.post("/api/v1/problems/", payload, format="json")
    assert res.status_code == 201, res.data
    assert res.data["ref"] == "PRB-1"
    client.post("/api/v1/problems/", {"team": team_a.pk, "title": "Other"}, format="json")
    res = client.post(f"/api/v1/problems/{res.data['id']}/link/", {"incidents": [incident.pk]}, format="json")
    assert res.status_code == 200 and res.data["incidents"] == [incident.pk]
    found = client.get("/api/v1/problems/?status=known_error&search=pgbouncer").data["results"]
    assert [p["title"] for p in found] == ["Pool exhaustion"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"title": ""}, "title"),
        ({"title": "x", "status": "solved"}, "status"),
        ({"title": "x", "status": "known_error"}, "workaround"),
        ({"title": "x", "match_keywords": "a"}, "match_service"),
        ({"title": "x", "match_service": 99999}, "match_service"),
    ],
)
def test_bad_input_is_400_and_writes_nothing(responder, team_a, payload, field):
    res = client_for(responder).post("/api/v1/problems/", {"team": team_a.pk, **payload}, format="json")
    assert res.status_code == 400 and field in res.data, res.data
    assert not Problem.objects.exists()


def test_team_isolation(responder, outsider, team_a, team_b, service_a, incident):
    res = client_for(responder).post("/api/v1/problems/", {"team": team_a.pk, "title": "m"}, format="json")
    mine = res.data
    other = client_for(outsider)
    assert other.get("/api/v1/problems/").data["count"] == 0
    assert other.get(f"/api/v1/problems/{mine['id']}/").status_code == 404
    # Another team's ids are unknown ids: 400, nothing created or linked.
    res = other.post("/api/v1/problems/", {"team": team_a.pk, "title": "x"}, format="json")
    assert res.status_code == 400 and "team" in res.data
    res = other.post("/api/v1/problems/", {"team": team_b.pk, "title": "x", "match_service": service_a.pk,
                                           "match_keywords": "a"}, format="json")
    assert res.status_code == 400 and "match_service" in res.data
    theirs = other.post("/api/v1/problems/", {"team": team_b.pk, "title": "t"}, format="json").data
    res = other.post(f"/api/v1/problems/{theirs['id']}/link/", {"incidents": [incident.pk]}, format="json")
    assert res.status_code == 400
    assert Problem.objects.get(pk=theirs["id"]).incidents.count() == 0
    res = client_for(responder).patch(f"/api/v1/problems/{mine['id']}/", {"team": team_b.pk}, format="json")
    assert res.status_code == 400
