"""The incident page: every button and form goes through incidents.services, writes
the timeline, reports a message, and refuses bad input without changing anything."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from incidents.models import Incident, TimelineEntry


def act(client, incident, action, data=None):
    return client.post(f"/admin/incidents/incident/{incident.pk}/do/{action}/", data or {})


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def kinds(incident) -> list[str]:
    return list(incident.timeline.order_by("created_at", "id").values_list("kind", flat=True))


@pytest.fixture
def incident(service_a, raise_alert):
    return raise_alert(service_a, "payments latency above 2s", severity="SEV2")


def test_page_shows_facts_alerts_timeline_and_buttons(login, responder, incident):
    response = login(responder).get(f"/admin/incidents/incident/{incident.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert incident.ref in html and "payments latency above 2s" in html
    assert f"/admin/incidents/incident/{incident.pk}/do/acknowledge/" in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "Triggered by an alert from tests" in html  # the timeline
    assert 'id="alerts"' in html and "tests" in html
    # Resolved/reopen buttons are offered according to the state, not all at once.
    assert "/do/reopen/" not in html


def test_acknowledge_button_changes_state_and_writes_timeline(login, responder, incident):
    response = act(login(responder), incident, "acknowledge")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/incidents/incident/{incident.pk}/change/"
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.acknowledged_by == responder
    entry = incident.timeline.get(kind="acknowledged")
    assert entry.actor == responder and entry.via == "web"
    assert messages_of(response) == [f"{incident.ref} acknowledged."]


def test_second_acknowledge_says_so_and_writes_nothing(login, responder, incident):
    client = login(responder)
    act(client, incident, "acknowledge")
    response = act(client, incident, "acknowledge")
    assert "nothing to acknowledge" in messages_of(response)[-1]
    assert kinds(incident).count("acknowledged") == 1


@pytest.mark.parametrize("action,status,kind", [
    ("resolve", "resolved", "resolved"),
    ("escalate", "triggered", "escalation"),
    ("mitigate", "triggered", "mitigated"),
])
def test_transition_buttons(login, responder, incident, action, status, kind):
    response = act(login(responder), incident, action)
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == status
    assert kinds(incident)[-1] == kind


def test_unacknowledge_and_reopen(login, responder, incident):
    client = login(responder)
    act(client, incident, "acknowledge")
    act(client, incident, "unacknowledge")
    incident.refresh_from_db()
    assert incident.status == "triggered" and incident.acknowledged_by is None
    act(client, incident, "resolve")
    response = act(client, incident, "reopen")
    incident.refresh_from_db()
    assert incident.status == "triggered" and incident.resolved_at is None
    assert kinds(incident)[-4:] == ["acknowledged", "unacknowledged", "resolved", "reopened"]
    assert messages_of(response)[-1] == f"{incident.ref} reopened."


def test_reopen_conflict_is_an_error_message(login, responder, service_a, raise_alert, incident):
    client = login(responder)
    act(client, incident, "resolve")
    newer = raise_alert(service_a, "payments latency above 2s", severity="SEV2")  # same dedup key
    assert newer.pk != incident.pk
    response = act(client, incident, "reopen")
    assert "another incident with dedup key" in messages_of(response)[-1]
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_note(login, responder, incident):
    response = act(login(responder), incident, "note", {"text": "  Rolling back deploy 42  "})
    entry = incident.timeline.get(kind="note")
    assert entry.message == "Rolling back deploy 42" and entry.actor == responder
    assert messages_of(response) == [f"Note added to {incident.ref}."]


@pytest.mark.parametrize("data", [{}, {"text": ""}, {"text": "   "}])
def test_empty_note_is_refused(login, responder, incident, data):
    response = act(login(responder), incident, "note", data)
    assert response.status_code == 302
    assert messages_of(response)[0].startswith("Note not added")
    assert not incident.timeline.filter(kind="note").exists()


def test_severity_and_priority(login, responder, incident):
    client = login(responder)
    act(client, incident, "severity", {"severity": "SEV1"})
    act(client, incident, "priority", {"priority": "P1"})
    incident.refresh_from_db()
    assert (incident.severity, incident.priority) == ("SEV1", "P1")
    assert kinds(incident)[-2:] == ["severity", "priority"]
    response = act(client, incident, "severity", {"severity": "SEV1"})
    assert "already is SEV1" in messages_of(response)[-1]


@pytest.mark.parametrize("action,data", [
    ("severity", {"severity": "SEV9"}), ("severity", {}), ("priority", {"priority": "urgent"}),
])
def test_bad_severity_or_priority_is_refused(login, responder, incident, action, data):
    before = kinds(incident)
    response = act(login(responder), incident, action, data)
    assert "not changed" in messages_of(response)[0]
    assert "valid choice" in messages_of(response)[0] or "required" in messages_of(response)[0]
    incident.refresh_from_db()
    assert (incident.severity, incident.priority) == ("SEV2", "P2")
    assert kinds(incident) == before


def test_assign_roles(login, responder, secondary, manager, incident):
    response = act(login(manager), incident, "roles", {
        "commander": manager.pk, "communication_lead": secondary.pk,
        "responders": [responder.pk, secondary.pk], "war_room_url": "https://meet.example.com/inc",
    })
    assert "updated" in messages_of(response)[0]
    incident.refresh_from_db()
    assert incident.commander == manager and incident.communication_lead == secondary
    assert set(incident.responders.all()) == {responder, secondary}
    assert incident.war_room_url == "https://meet.example.com/inc"
    assert incident.timeline.filter(kind="role").count() >= 4


@pytest.mark.parametrize("bad", [
    {"commander": "outsider"},  # a user of another team
    {"responders": ["outsider"]},
    {"war_room_url": "not a url with spaces"},
    {"commander": "999999"},
])
def test_bad_roles_are_refused(login, responder, outsider, incident, bad):
    data = {k: (outsider.pk if v == "outsider" else [outsider.pk] if v == ["outsider"] else v)
            for k, v in bad.items()}
    response = act(login(responder), incident, "roles", data)
    assert messages_of(response)[0].startswith("Roles not changed")
    incident.refresh_from_db()
    assert incident.commander is None and not incident.responders.exists() and incident.war_room_url == ""
    assert not incident.timeline.filter(kind="role").exists()


def test_get_is_405_and_unknown_action_404(login, responder, incident):
    client = login(responder)
    assert client.get(f"/admin/incidents/incident/{incident.pk}/do/acknowledge/").status_code == 405
    assert act(client, incident, "explode").status_code == 404
    assert act(client, incident, "delete").status_code == 404
    incident.refresh_from_db()
    assert incident.status == "triggered"


def test_post_without_csrf_token_is_refused(responder, incident):
    client = Client(enforce_csrf_checks=True)
    client.force_login(responder)
    response = act(client, incident, "acknowledge")
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.status == "triggered"


def test_anonymous_is_sent_to_login(client, incident):
    response = act(client, incident, "acknowledge")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    incident.refresh_from_db()
    assert incident.status == "triggered"


def test_model_form_cannot_change_an_incident(login, manager, incident):
    client = login(manager)
    response = client.post(f"/admin/incidents/incident/{incident.pk}/change/",
                           {"title": "hacked", "status": "resolved", "severity": "SEV4"})
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.title == "payments latency above 2s" and incident.status == "triggered"
    assert client.get(f"/admin/incidents/incident/{incident.pk}/delete/").status_code == 403


def test_bulk_acknowledge_and_resolve(login, responder, service_a, raise_alert):
    first, second, third = (raise_alert(service_a, f"disk {n}") for n in range(3))
    client = login(responder)
    act(client, first, "acknowledge")
    response = client.post("/admin/incidents/incident/", {
        "action": "acknowledge_selected", "_selected_action": [first.pk, second.pk, third.pk]})
    assert response.status_code == 302
    assert "Acknowledged 2 incident(s); 1 already" in messages_of(response)[-1]
    assert set(Incident.objects.values_list("status", flat=True)) == {"acknowledged"}
    response = client.post("/admin/incidents/incident/", {
        "action": "resolve_selected", "_selected_action": [first.pk, second.pk]})
    assert Incident.objects.get(pk=third.pk).status == "acknowledged"
    assert set(Incident.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", flat=True)) == {
        "resolved"}
    assert TimelineEntry.objects.filter(kind="resolved", actor=responder).count() == 2


def test_recent_changes_on_the_service_are_shown(login, responder, service_a, service_b, make_integration,
                                                 raise_alert):
    from datetime import timedelta

    from django.utils import timezone

    from incidents.services import change_event_record

    integration = make_integration(service_a, "pagerduty")
    now = timezone.now()
    change_event_record(integration=integration, summary="Deployed payments-api v2.3.1", source="ci",
                        links=[{"href": "https://ci.example.com/123", "text": "build"},
                               {"href": "javascript:alert(1)", "text": "evil"}],
                        at=now - timedelta(minutes=20))
    change_event_record(integration=integration, summary="Old deploy v1", at=now - timedelta(days=2))
    change_event_record(integration=make_integration(service_b, "pagerduty"), summary="Search deploy",
                        at=now - timedelta(minutes=5))
    incident = raise_alert(service_a, "error rate up")
    html = login(responder).get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()
    assert "Deployed payments-api v2.3.1" in html and 'href="https://ci.example.com/123"' in html
    assert "Old deploy v1" not in html and "Search deploy" not in html
    assert "javascript:" not in html
