"""REST API for escalation: team scoping, bad input, and the incident endpoints."""

from __future__ import annotations

import pytest
from django.core import mail
from rest_framework.test import APIClient

from oncall.models import ContactMethod, EscalationChain, Notification, NotificationRule, Schedule

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_manager_builds_a_chain_with_steps_and_a_route(
    clock, team_a, manager, responder, outsider, service_a
):
    client = api(manager)
    chain = client.post("/api/v1/escalation-chains/", {"team": team_a.pk, "name": "Main", "repeat": 1},
                        format="json")
    assert chain.status_code == 201, chain.content
    chain_id = chain.json()["id"]
    step = client.post("/api/v1/escalation-steps/", {"chain": chain_id, "users": [responder.pk],
                                                     "delay_minutes": 5}, format="json")
    assert step.status_code == 201, step.content
    foreign = client.post("/api/v1/escalation-steps/", {"chain": chain_id, "users": [outsider.pk]},
                          format="json")
    assert foreign.status_code == 400 and "users" in foreign.json()
    route = client.post("/api/v1/escalation-routes/", {
        "team": team_a.pk, "name": "SEV1", "chain": chain_id, "services": [service_a.pk],
        "severities": ["SEV1"], "start_time": "09:00", "end_time": "17:00", "timezone": "Europe/Berlin",
    }, format="json")
    assert route.status_code == 201, route.content
    got = client.get(f"/api/v1/escalation-chains/{chain_id}/").json()
    assert [s["users"] for s in got["steps"]] == [[responder.pk]]


@pytest.mark.parametrize("body,field", [
    ({"severities": ["SEV9"]}, "severities"),
    ({"days": ["someday"]}, "days"),
    ({"start_time": "09:00"}, "end_time"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
])
def test_route_bad_input_is_a_400_naming_the_field(clock, team_a, manager, body, field):
    chain = EscalationChain.objects.create(team=team_a, name="Main")
    response = api(manager).post("/api/v1/escalation-routes/", {
        "team": team_a.pk, "name": "r", "chain": chain.pk, **body}, format="json")
    assert response.status_code == 400 and field in response.json(), response.content


def test_other_teams_cannot_see_or_change(clock, team_a, team_b, manager, responder, outsider):
    chain = EscalationChain.objects.create(team=team_a, name="Main")
    assert api(outsider).get(f"/api/v1/escalation-chains/{chain.pk}/").status_code == 404
    assert api(outsider).get("/api/v1/escalation-chains/").json()["count"] == 0
    # A responder sees but may not change the team's configuration.
    assert api(responder).get(f"/api/v1/escalation-chains/{chain.pk}/").status_code == 200
    assert api(responder).patch(f"/api/v1/escalation-chains/{chain.pk}/", {"repeat": 3},
                                format="json").status_code == 403
    made = api(outsider).post("/api/v1/escalation-chains/", {"team": team_a.pk, "name": "x"}, format="json")
    assert made.status_code == 400  # team A is not a choice for them
    assert EscalationChain.objects.count() == 1


def test_chain_from_template(clock, team_a, manager):
    primary = Schedule.objects.create(team=team_a, name="Primary")
    secondary = Schedule.objects.create(team=team_a, name="Secondary")
    client = api(manager)
    response = client.post("/api/v1/escalation-chains/from-template/", {
        "team": team_a.pk, "template": "standard", "primary_schedule": primary.pk,
        "secondary_schedule": secondary.pk, "is_default": True}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["repeat"] == 2 and body["is_default"]
    assert [(s["schedules"], s["team_managers"]) for s in body["steps"]] == [
        ([primary.pk], False), ([secondary.pk], False), ([], True)]
    missing = client.post("/api/v1/escalation-chains/from-template/", {
        "team": team_a.pk, "template": "standard", "primary_schedule": primary.pk}, format="json")
    assert missing.status_code == 400 and "secondary" in str(missing.json())
    unknown = client.post("/api/v1/escalation-chains/from-template/", {
        "team": team_a.pk, "template": "nope", "primary_schedule": primary.pk}, format="json")
    assert unknown.status_code == 400 and "template" in unknown.json()


def test_contact_methods_verification_and_rules(clock, responder, secondary):
    client = api(responder)
    url = "/api/v1/contact-methods/"
    bad = client.post(url, {"kind": "email", "address": "not-an-address"}, format="json")
    assert bad.status_code == 400 and "address" in bad.json()
    bad_url = client.post(url, {"kind": "webhook", "address": "ftp://x"}, format="json")
    assert bad_url.status_code == 400
    created = client.post("/api/v1/contact-methods/", {"kind": "email", "address": "rita.p@example.com"},
                          format="json")
    assert created.status_code == 201 and created.json()["verified"] is False
    method_id = created.json()["id"]
    sent = client.post(f"/api/v1/contact-methods/{method_id}/send-verification/")
    assert sent.status_code == 200 and sent.json()["status"] == "sent"
    code = ContactMethod.objects.get(pk=method_id).verification_code
    wrong = client.post(f"/api/v1/contact-methods/{method_id}/verify/", {"code": "x"}, format="json")
    assert wrong.status_code == 400 and "code" in wrong.json()
    right = client.post(f"/api/v1/contact-methods/{method_id}/verify/", {"code": code}, format="json")
    assert right.status_code == 200 and right.json()["verified"] is True
    test = client.post(f"/api/v1/contact-methods/{method_id}/send-test/")
    assert test.status_code == 200 and mail.outbox[-1].to == ["rita.p@example.com"]
    # Someone else's method: invisible, and not usable in a rule.
    theirs = ContactMethod.objects.create(user=secondary, kind="email", address="sam@example.com")
    assert client.get(f"/api/v1/contact-methods/{theirs.pk}/").status_code == 404
    rule = client.post("/api/v1/notification-rules/", {"contact_method": theirs.pk}, format="json")
    assert rule.status_code == 400
    rule = client.post("/api/v1/notification-rules/", {"contact_method": method_id, "delay_minutes": 2,
                                                       "urgency": "urgent"}, format="json")
    assert rule.status_code == 400 and "urgency" in rule.json()
    rule = client.post("/api/v1/notification-rules/", {"contact_method": method_id, "delay_minutes": 2},
                       format="json")
    assert rule.status_code == 201 and NotificationRule.objects.get().user == responder


def test_escalate_and_notification_endpoints(clock, chain, trigger, responder, outsider):
    incident = trigger()
    client = api(responder)
    response = clock.run(client.post, f"/api/v1/incidents/{incident.pk}/escalate/")
    assert response.status_code == 200, response.content
    listed = client.get(f"/api/v1/incidents/{incident.pk}/notifications/").json()
    assert [(n["address"], n["step"], n["status"]) for n in listed["results"]] == [
        ("rita@example.com", 1, "sent"), ("sam@example.com", 2, "sent")]
    state = client.get(f"/api/v1/incidents/{incident.pk}/escalation/").json()
    assert state["state"] == "exhausted" and state["steps"] == 2 and state["chain"] == "Default"
    log = client.get("/api/v1/notifications/", {"status": "sent"}).json()
    assert log["count"] == 2
    assert api(outsider).get(f"/api/v1/incidents/{incident.pk}/notifications/").status_code == 404
    assert api(outsider).get(f"/api/v1/incidents/{incident.pk}/escalation/").status_code == 404
    assert api(outsider).get("/api/v1/notifications/").json()["count"] == 0
    assert Notification.objects.count() == 2


def test_contact_methods_and_rules_are_seen_by_their_owner_and_team_managers(
    client, responder, secondary, manager, outsider, admin_user
):
    rita = ContactMethod.objects.create(user=responder, kind="email", address="rita@example.com")
    sam = ContactMethod.objects.create(user=secondary, kind="email", address="sam@example.com")
    otto = ContactMethod.objects.create(user=outsider, kind="email", address="otto@example.com")
    for method in (rita, sam, otto):
        NotificationRule.objects.create(user=method.user, contact_method=method)
    expected = {
        responder: {"rita@example.com"},
        manager: {"rita@example.com", "sam@example.com"},
        outsider: {"otto@example.com"},
        admin_user: {"rita@example.com", "sam@example.com", "otto@example.com"},
    }
    for user, addresses in expected.items():
        listed = api(user).get("/api/v1/contact-methods/").json()["results"]
        assert {m["address"] for m in listed} == addresses, user
        rules = api(user).get("/api/v1/notification-rules/").json()["results"]
        assert {r["contact_method"] for r in rules} == set(
            ContactMethod.objects.filter(address__in=addresses).values_list("pk", flat=True)), user
        client.force_login(user)
        page = client.get("/admin/oncall/contactmethod/")
        assert {m.address for m in page.context["cl"].result_list} == addresses, user
