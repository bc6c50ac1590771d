"""Console: chains with inline steps, templates, the incident page's escalation panel,
the notification log, contact methods (test, verify) and the dashboard warning."""

from __future__ import annotations

import pytest
from django.core import mail

from oncall.models import ContactMethod, Escalation, EscalationChain, Notification, Schedule

pytestmark = pytest.mark.django_db


def _step_form(prefix: str, rows: list[dict]) -> dict:
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{i}-{key}"] = value
    return data


def test_manager_adds_a_chain_with_inline_steps(
    client, clock, team_a, manager, responder, secondary, outsider
):
    client.force_login(manager)
    base = {"team": team_a.pk, "name": "Main", "repeat": "1", "description": ""}
    bad = client.post("/admin/oncall/escalationchain/add/", {**base, **_step_form("steps", [
        {"position": "0", "users": [str(outsider.pk)], "delay_minutes": "5"}])})
    assert bad.status_code == 200 and not EscalationChain.objects.exists()
    response = client.post("/admin/oncall/escalationchain/add/", {**base, **_step_form("steps", [
        {"position": "1", "users": [str(secondary.pk)], "delay_minutes": "10"},
        {"position": "0", "users": [str(responder.pk)], "delay_minutes": "5"}])})
    assert response.status_code == 302, response.content[:2000]
    chain = EscalationChain.objects.get()
    assert [list(s.users.values_list("username", flat=True)) for s in chain.steps.order_by("position")] == [
        ["rita"], ["sam"]]
    client.force_login(outsider)
    assert client.get(f"/admin/oncall/escalationchain/{chain.pk}/change/").status_code == 302  # not theirs


def test_chain_page_reads_the_steps_targets_in_a_fixed_number_of_queries(client, chain, manager, responder):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from oncall.models import EscalationStep

    def targets_queries() -> tuple[int, list]:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(f"/admin/oncall/escalationchain/{chain.pk}/change/")
        through = ("escalationstep_users", "escalationstep_schedules", "escalationstep_webhooks")
        count = sum(1 for q in ctx.captured_queries if any(t in q["sql"] for t in through))
        forms = response.context["inline_admin_formsets"][0].formset.forms
        return count, [list(f.initial.get("users", [])) for f in forms if f.instance.pk]

    client.force_login(manager)
    few, initial = targets_queries()
    assert initial == [[responder], [chain.steps.get(position=1).users.get()]]
    for i in range(2, 6):
        EscalationStep.objects.create(chain=chain, position=i).users.set([responder])
    many, initial = targets_queries()
    assert len(initial) == 6 and initial[-1] == [responder]
    assert many == few


def test_chain_from_template_page(client, clock, team_a, manager):
    primary = Schedule.objects.create(team=team_a, name="Primary")
    secondary = Schedule.objects.create(team=team_a, name="Secondary")
    client.force_login(manager)
    assert client.get("/admin/oncall/escalationchain/from-template/").status_code == 200
    response = client.post("/admin/oncall/escalationchain/from-template/", {
        "team": team_a.pk, "template": "standard", "primary_schedule": primary.pk,
        "secondary_schedule": secondary.pk})
    assert response.status_code == 302
    assert EscalationChain.objects.get().steps.count() == 3


def test_incident_page_shows_the_escalation_and_the_log(client, clock, chain, trigger, responder, outsider):
    incident = trigger()
    client.force_login(responder)
    page = client.get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()
    assert 'id="escalation"' in page and "next: step 2 of 2" in page and "in 5 min 0 s" in page
    assert "rita@example.com" in page and "Sent" in page
    log = client.get("/admin/oncall/notification/", {"status__exact": "sent"})
    assert log.status_code == 200 and f"INC-{incident.number}" in log.content.decode()
    client.force_login(outsider)
    assert f"INC-{incident.number}" not in client.get("/admin/oncall/notification/").content.decode()


def test_dashboard_warns_about_an_incident_that_paged_no_one(client, clock, team_a, trigger, responder):
    chain = EscalationChain.objects.create(team=team_a, name="Empty", is_default=True)
    chain.steps.create()
    incident = trigger()
    assert Escalation.objects.get(incident=incident).warning
    client.force_login(responder)
    page = client.get("/admin/").content.decode()
    assert "Open incidents that paged no one" in page and incident.ref in page


def test_contact_method_actions_and_verification(client, clock, responder, secondary):
    client.force_login(responder)
    response = client.post("/admin/oncall/contactmethod/add/", {
        "kind": "email", "address": "rita.p@example.com", "label": "", "secret": "s", "send_updates": "on"})
    assert response.status_code == 302
    method = ContactMethod.objects.get(address="rita.p@example.com")
    assert method.user == responder and not method.verified
    client.post("/admin/oncall/contactmethod/", {"action": "send_verification",
                                                  "_selected_action": [method.pk]})
    method.refresh_from_db()
    assert mail.outbox[-1].to == ["rita.p@example.com"] and method.verification_code
    form = {"kind": "email", "address": "rita.p@example.com", "label": "", "secret": "s",
            "send_updates": "on"}
    wrong = client.post(f"/admin/oncall/contactmethod/{method.pk}/change/", {**form, "code": "nope"})
    assert wrong.status_code == 200 and "Wrong code" in wrong.content.decode()
    url = f"/admin/oncall/contactmethod/{method.pk}/change/"
    ok = client.post(url, {**form, "code": method.verification_code})
    assert ok.status_code == 302
    method.refresh_from_db()
    assert method.verified
    client.post("/admin/oncall/contactmethod/", {"action": "send_test", "_selected_action": [method.pk]})
    assert mail.outbox[-1].subject == "ircore test notification"
    assert Notification.objects.filter(kind="test", status="sent").count() == 1
    theirs = ContactMethod.objects.create(user=secondary, kind="email", address="sam@example.com")
    assert client.get(f"/admin/oncall/contactmethod/{theirs.pk}/change/").status_code == 302


def test_notification_log_and_escalations_are_read_only(client, clock, chain, trigger, manager):
    incident = trigger()
    note = Notification.objects.filter(incident=incident).first()
    escalation = Escalation.objects.get(incident=incident)
    client.force_login(manager)
    for model, obj in (("notification", note), ("escalation", escalation)):
        assert client.get(f"/admin/oncall/{model}/").status_code == 200
        assert client.get(f"/admin/oncall/{model}/add/").status_code == 403
        page = client.get(f"/admin/oncall/{model}/{obj.pk}/change/")
        assert page.status_code == 200 and not page.context["has_change_permission"]
        assert client.post(f"/admin/oncall/{model}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
        assert type(obj).objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize(("kind", "address", "message"), [
    ("email", "not-an-address", "Enter a valid email address."),
    ("webhook", "ftp://example.com/hook", "Enter a valid http(s) URL."),
    ("webhook", "rita@example.com", "Enter a valid http(s) URL."),
    ("sms", "+4912345", "Select a valid choice."),
])
def test_contact_method_form_rejects_a_bad_address(client, responder, kind, address, message):
    client.force_login(responder)
    response = client.post("/admin/oncall/contactmethod/add/", {
        "kind": kind, "address": address, "label": "", "secret": "s", "send_updates": "on"})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ContactMethod.objects.exists()


def test_chain_from_template_page_rejects_bad_input(client, clock, team_a, team_b, manager):
    primary = Schedule.objects.create(team=team_a, name="Primary")
    foreign = Schedule.objects.create(team=team_b, name="Theirs")
    client.force_login(manager)
    url = "/admin/oncall/escalationchain/from-template/"
    ok = {"team": team_a.pk, "template": "standard", "primary_schedule": primary.pk}
    cases = [
        ({}, "__all__", "This template needs a secondary schedule."),
        ({"template": "nonsense"}, "template", "Select a valid choice."),
        ({"primary_schedule": foreign.pk}, "primary_schedule", "Select a valid choice."),
        ({"team": team_b.pk}, "team", "Select a valid choice."),
    ]
    for change, field, message in cases:
        response = client.post(url, {**ok, **change})
        assert response.status_code == 200, change
        assert message in " ".join(response.context["form"].errors[field]), change
    assert not EscalationChain.objects.exists()


@pytest.mark.parametrize(("change", "message"), [
    ({"days": '["funday"]'}, "Days must be a list of"),
    ({"severities": '["SEV9"]'}, "Must be a list of SEV1"),
    ({"timezone": "Mars/Olympus"}, "Unknown time zone"),
    ({"days": "not json"}, "Enter a valid JSON."),
])
def test_route_form_rejects_bad_input(client, chain, manager, team_a, change, message):
    from oncall.models import EscalationRoute

    client.force_login(manager)
    ok = {"team": team_a.pk, "name": "Night", "position": "0", "chain": chain.pk, "severities": "[]",
          "priorities": "[]", "days": "[]", "timezone": "UTC"}
    assert client.post("/admin/oncall/escalationroute/add/", {**ok, "name": "Fine"}).status_code == 302
    response = client.post("/admin/oncall/escalationroute/add/", {**ok, **change})
    assert response.status_code == 200
    (field,) = change
    assert message in " ".join(response.context["adminform"].form.errors[field])
    assert list(EscalationRoute.objects.values_list("name", flat=True)) == ["Fine"]


def test_rule_form_refuses_another_persons_contact_method(client, admin_user, responder, secondary):
    from oncall.models import NotificationRule

    theirs = ContactMethod.objects.create(user=secondary, kind="email", address="sam@example.com")
    mine = ContactMethod.objects.create(user=responder, kind="email", address="rita@example.com")
    client.force_login(admin_user)
    form = {"user": responder.pk, "delay_minutes": "0", "urgency": "any"}
    response = client.post("/admin/oncall/notificationrule/add/", {**form, "contact_method": theirs.pk})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["contact_method"] == [
        "This contact method belongs to someone else."]
    assert not NotificationRule.objects.exists()
    response = client.post("/admin/oncall/notificationrule/add/", {**form, "contact_method": mine.pk})
    assert response.status_code == 302
    assert NotificationRule.objects.get().contact_method == mine
    # Non-superusers: the person is themselves, the choices their own methods.
    client.force_login(responder)
    response = client.post("/admin/oncall/notificationrule/add/", {**form, "contact_method": mine.pk})
    assert response.status_code == 302 and NotificationRule.objects.count() == 2
