"""/api/v1/status-pages/ and the nested resources, with team scoping."""

import pytest
from django.core import mail
from rest_framework.test import APIClient

from statuspage.models import ComponentStatusChange, PublicIncident, StatusPage, Subscriber


@pytest.fixture
def api():
    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


def base(page):
    return f"/api/v1/status-pages/{page.pk}"


def test_pages_are_team_scoped(api, page, outsider, responder, admin_user):
    assert [p["slug"] for p in api(responder).get("/api/v1/status-pages/").json()["results"]] == ["acme"]
    assert api(outsider).get("/api/v1/status-pages/").json()["results"] == []
    assert api(outsider).get(f"{base(page)}/").status_code == 404
    assert api(outsider).get(f"{base(page)}/components/").status_code == 404
    assert api(outsider).post(f"{base(page)}/incidents/", {"name": "x", "body": "y"}).status_code == 404
    assert len(api(admin_user).get("/api/v1/status-pages/").json()["results"]) == 1
    assert APIClient().get("/api/v1/status-pages/").status_code in (401, 403)


def test_manager_creates_page_responder_cannot(api, manager, responder, team_a, team_b):
    data = {"team": team_a.pk, "slug": "new", "title": "New page", "time_zone": "America/New_York"}
    assert api(responder).post("/api/v1/status-pages/", data).status_code == 403
    response = api(manager).post("/api/v1/status-pages/", data)
    assert response.status_code == 201, response.json()
    assert response.json()["url"].endswith("/status/new/")
    bad = api(manager).post("/api/v1/status-pages/", {**data, "slug": "x2", "time_zone": "Mars/Base"})
    assert bad.status_code == 400 and "not a known time zone" in str(bad.json())
    other_team = api(manager).post("/api/v1/status-pages/", {**data, "slug": "x3", "team": team_b.pk})
    assert other_team.status_code == 400
    assert StatusPage.objects.filter(slug__in=["x2", "x3"]).count() == 0


def test_component_status_change_through_api_is_logged(api, page, manager, responder, group):
    response = api(manager).post(f"{base(page)}/components/", {"name": "API", "group": group.pk})
    assert response.status_code == 201
    pk = response.json()["id"]
    assert (
        api(responder).patch(f"{base(page)}/components/{pk}/", {"status": "major_outage"}).status_code == 403
    )
    response = api(manager).patch(f"{base(page)}/components/{pk}/", {"status": "major_outage"})
    assert response.status_code == 200 and response.json()["status"] == "major_outage"
    change = ComponentStatusChange.objects.get()
    assert (change.new_status, change.actor) == ("major_outage", manager)
    bad = api(manager).patch(f"{base(page)}/components/{pk}/", {"status": "on_fire"})
    assert bad.status_code == 400 and "status" in bad.json()


def test_incident_create_update_publish(api, page, responder, api_component):
    client = api(responder)
    response = client.post(
        f"{base(page)}/incidents/",
        {
            "name": "Checkout errors",
            "body": "Investigating.",
            "impact": "major",
            "published": False,
            "component_statuses": {str(api_component.pk): "partial_outage"},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    pk = response.json()["id"]
    assert response.json()["published"] is False
    assert client.post(f"{base(page)}/incidents/{pk}/publish/").status_code == 200
    assert client.post(f"{base(page)}/incidents/{pk}/publish/").status_code == 409
    api_component.refresh_from_db()
    assert api_component.status == "partial_outage"
    response = client.post(f"{base(page)}/incidents/{pk}/updates/", {"status": "resolved", "body": "Fixed."})
    assert response.status_code == 201 and response.json()["status"] == "resolved"
    api_component.refresh_from_db()
    assert api_component.status == "operational"
    bad = client.post(f"{base(page)}/incidents/{pk}/updates/", {"status": "done", "body": "x"})
    assert bad.status_code == 400 and "Unknown incident status" in bad.json()["detail"]
    detail = client.get(f"{base(page)}/incidents/{pk}/").json()
    assert [u["status"] for u in detail["updates"]] == ["resolved", "investigating"]


def test_incident_bad_input_writes_nothing(api, page, responder, team_b):
    from statuspage.models import Component

    other = Component.objects.create(
        page=StatusPage.objects.create(team=team_b, slug="o", title="O"), name="x"
    )
    client = api(responder)
    for payload in [
        {"name": "", "body": "x"},
        {"name": "x", "body": ""},
        {"name": "x", "body": "y", "component_statuses": {str(other.pk): "major_outage"}},
        {"name": "x", "body": "y", "component_statuses": {"abc": "major_outage"}},
        {"name": "x", "body": "y", "impact": "apocalyptic"},
    ]:
        response = client.post(f"{base(page)}/incidents/", payload, format="json")
        assert response.status_code == 400, payload
    assert PublicIncident.objects.count() == 0


def test_maintenance_via_api(api, page, responder, api_component):
    client = api(responder)
    response = client.post(
        f"{base(page)}/maintenance/",
        {
            "name": "DB upgrade",
            "body": "Planned.",
            "scheduled_for": "2030-01-01T10:00:00Z",
            "scheduled_until": "2030-01-01T12:00:00Z",
            "components": [api_component.pk],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    pk = response.json()["id"]
    response = client.post(
        f"{base(page)}/maintenance/{pk}/updates/", {"status": "in_progress", "body": "Go."}
    )
    assert response.status_code == 201
    api_component.refresh_from_db()
    assert api_component.status == "under_maintenance"
    bad = client.post(
        f"{base(page)}/maintenance/",
        {
            "name": "x",
            "body": "y",
            "scheduled_for": "2030-01-01T12:00:00Z",
            "scheduled_until": "2030-01-01T10:00:00Z",
        },
        format="json",
    )
    assert bad.status_code == 400 and "end after it starts" in bad.json()["detail"]


def test_service_link_must_be_same_team(api, page, manager, api_component, service_a, service_b):
    client = api(manager)
    ok = client.post(
        f"{base(page)}/service-links/",
        {"component": api_component.pk, "service": service_a.pk, "mode": "automatic"},
    )
    assert ok.status_code == 201, ok.json()
    bad = client.post(
        f"{base(page)}/service-links/", {"component": api_component.pk, "service": service_b.pk}
    )
    assert bad.status_code == 400 and "another team" in str(bad.json())


def test_subscribers_via_api(api, page, manager, run_tasks_inline, django_capture_on_commit_callbacks):
    client = api(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{base(page)}/subscribers/", {"kind": "email", "email": "ann@example.com"})
    assert response.status_code == 201 and response.json()["confirmed_at"] is None
    assert mail.outbox[0].to == ["ann@example.com"]
    hook = client.post(
        f"{base(page)}/subscribers/", {"kind": "webhook", "webhook_url": "https://h.example.com/x"}
    )
    assert hook.status_code == 201 and hook.json()["confirmed_at"] is not None
    bad = client.post(f"{base(page)}/subscribers/", {"kind": "email", "email": "nope"})
    assert bad.status_code == 400
    assert Subscriber.objects.count() == 2
    assert client.delete(f"{base(page)}/subscribers/{hook.json()['id']}/").status_code == 204
