"""Team isolation in the console: a user of team A cannot find, open or act on team B's
objects, nor pick them in forms. Superusers see everything."""

from __future__ import annotations

import pytest

from incidents.models import Integration, TriageRule


@pytest.fixture
def incidents_ab(service_a, service_b, raise_alert):
    return (raise_alert(service_a, "payments: card auth failing"),
            raise_alert(service_b, "search: index corrupted"))


def test_changelist_lists_only_own_team(login, responder, incidents_ab):
    mine, theirs = incidents_ab
    html = login(responder).get("/admin/incidents/incident/").content.decode()
    assert "card auth failing" in html
    assert "index corrupted" not in html
    # The sidebar filters must not leak the other team's names either.
    assert "search-api" not in html and ">Search<" not in html


def test_search_does_not_reach_other_team(login, responder, incidents_ab):
    _, theirs = incidents_ab
    client = login(responder)
    for term in (theirs.ref, str(theirs.number), "index corrupted"):
        response = client.get("/admin/incidents/incident/", {"q": term})
        assert list(response.context["cl"].result_list) == [], term


def test_other_teams_incident_page_is_not_reachable(login, responder, incidents_ab):
    _, theirs = incidents_ab
    response = login(responder).get(f"/admin/incidents/incident/{theirs.pk}/change/")
    # Django's admin answers "does not exist" (redirect to the index) for objects outside
    # get_queryset: nothing of the incident is shown.
    assert response.status_code == 302 and response["Location"] == "/admin/"
    follow = login(responder).get(response["Location"])
    assert "index corrupted" not in follow.content.decode()


@pytest.mark.parametrize("action", ["acknowledge", "resolve", "note", "severity", "roles", "escalate"])
def test_actions_on_other_teams_incident_are_404(login, responder, incidents_ab, action):
    _, theirs = incidents_ab
    before = list(theirs.timeline.values_list("pk", flat=True))
    response = login(responder).post(f"/admin/incidents/incident/{theirs.pk}/do/{action}/",
                                     {"text": "x", "severity": "SEV1"})
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "triggered" and theirs.severity == "SEV3"
    assert list(theirs.timeline.values_list("pk", flat=True)) == before


def test_bulk_action_ignores_other_teams_ids(login, responder, incidents_ab):
    mine, theirs = incidents_ab
    login(responder).post("/admin/incidents/incident/", {
        "action": "resolve_selected", "_selected_action": [mine.pk, theirs.pk]})
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.status == "resolved" and theirs.status == "triggered"


def test_superuser_sees_both_teams(login, admin_user, incidents_ab):
    html = login(admin_user).get("/admin/incidents/incident/").content.decode()
    assert "card auth failing" in html and "index corrupted" in html


@pytest.mark.parametrize("url", [
    "/admin/incidents/alert/", "/admin/incidents/timelineentry/", "/admin/incidents/service/",
    "/admin/incidents/integration/", "/admin/", "/admin/ircore/team/",
])
def test_other_lists_are_scoped(login, manager, incidents_ab, make_integration, service_b, url):
    make_integration(service_b, "pagerduty")
    html = login(manager).get(url).content.decode()
    assert "index corrupted" not in html and "search-api" not in html and ">Search<" not in html


def test_other_teams_service_and_integration_pages_unreachable(login, manager, service_b, make_integration):
    client = login(manager)
    integration = make_integration(service_b)
    assert client.get(f"/admin/incidents/service/{service_b.pk}/change/").status_code == 302
    assert client.get(f"/admin/incidents/integration/{integration.pk}/change/").status_code == 302
    response = client.post(f"/admin/incidents/integration/{integration.pk}/send-test/")
    assert response.status_code == 404
    assert not integration.alerts.exists()


def test_forms_offer_only_own_teams_objects(login, manager, service_a, service_b):
    client = login(manager)
    html = client.get("/admin/incidents/integration/add/").content.decode()
    assert "payments-api" in html and "search-api" not in html
    html = client.get("/admin/incidents/triagerule/add/").content.decode()
    assert "search-api" not in html and ">Search<" not in html


def test_posting_another_teams_service_is_refused(login, manager, service_b):
    response = login(manager).post("/admin/incidents/integration/add/", {
        "service": service_b.pk, "name": "sneaky", "kind": "generic", "enabled": "on", "options": "{}"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Integration.objects.exists()


def test_posting_another_teams_team_is_refused(login, manager, team_b):
    response = login(manager).post("/admin/incidents/triagerule/add/", {
        "team": team_b.pk, "name": "x", "position": 0, "match_labels": "{}", "set_severity": "SEV1"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not TriageRule.objects.exists()


def test_responders_read_configuration_but_cannot_change_it(login, responder, service_a):
    client = login(responder)
    assert client.get("/admin/incidents/service/").status_code == 200
    assert client.get("/admin/incidents/service/add/").status_code == 403
    response = client.post(f"/admin/incidents/service/{service_a.pk}/change/",
                           {"team": service_a.team_id, "name": "renamed"})
    assert response.status_code == 403
    service_a.refresh_from_db()
    assert service_a.name == "payments-api"


def test_staff_without_team_cannot_enter(client, django_user_model, db):
    user = django_user_model.objects.create_user("loner", password="pw", is_staff=True)
    client.force_login(user)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_manager_can_search_users_for_membership_but_not_browse(login, manager, responder, django_user_model):
    django_user_model.objects.create_user("zed", password="pw", is_staff=True, first_name="Zed")
    client = login(manager)
    response = client.get("/admin/autocomplete/", {
        "app_label": "ircore", "model_name": "teammembership", "field_name": "user", "term": "zed"})
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["zed"]
    assert client.get("/admin/auth/user/").status_code == 403
    team_page = client.get(f"/admin/ircore/team/{manager.team_memberships.get().team_id}/change/")
    assert "/admin/auth/user/" not in team_page.content.decode()  # no "view user" links that 403
    assert client.get(f"/admin/auth/user/{responder.pk}/change/").status_code == 403


def test_responder_cannot_search_users(login, responder):
    response = login(responder).get("/admin/autocomplete/", {
        "app_label": "ircore", "model_name": "teammembership", "field_name": "user", "term": "a"})
    assert response.status_code == 403


def test_manager_adds_member_through_team_inline(login, manager, team_a, django_user_model):
    newcomer = django_user_model.objects.create_user("nina", password="pw", is_staff=True)
    memberships = list(team_a.memberships.order_by("pk"))
    data = {"name": team_a.name, "slug": team_a.slug, "description": "",
            "memberships-TOTAL_FORMS": len(memberships) + 1,
            "memberships-INITIAL_FORMS": len(memberships), "memberships-MIN_NUM_FORMS": 0,
            "memberships-MAX_NUM_FORMS": 1000}
    for i, m in enumerate(memberships):
        data.update({f"memberships-{i}-id": m.pk, f"memberships-{i}-team": team_a.pk,
                     f"memberships-{i}-user": m.user_id, f"memberships-{i}-role": m.role})
    n = len(memberships)
    data.update({f"memberships-{n}-team": team_a.pk, f"memberships-{n}-user": newcomer.pk,
                 f"memberships-{n}-role": "responder"})
    response = login(manager).post(f"/admin/ircore/team/{team_a.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert team_a.memberships.filter(user=newcomer, role="responder").exists()


def test_responder_cannot_change_team(login, responder, team_a):
    response = login(responder).post(f"/admin/ircore/team/{team_a.pk}/change/",
                                     {"name": "renamed", "slug": "renamed"})
    assert response.status_code == 403
    team_a.refresh_from_db()
    assert team_a.name == "Payments"
