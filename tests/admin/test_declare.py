"""Declaring an incident by hand from the console (incidents.services.incident_declare)."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from incidents.models import Incident
from incidents.services import incident_declare

ADD = "/admin/incidents/incident/add/"


def test_declare_from_the_console(login, responder, service_a):
    client = login(responder)
    page = client.get("/admin/incidents/incident/").content.decode()
    assert "Declare incident" in page
    form = client.get(ADD)
    assert form.status_code == 200 and "payments-api (Payments)" in form.content.decode()
    response = client.post(ADD, {"service": service_a.pk, "title": "  Customers report failed payments ",
                                 "severity": "SEV1", "priority": "", "description": "Zendesk #1234"})
    incident = Incident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/incidents/incident/{incident.pk}/change/"
    assert (incident.title, incident.severity, incident.priority) == ("Customers report failed payments",
                                                                      "SEV1", "P1")
    assert incident.status == "triggered" and incident.team_id == service_a.team_id
    assert incident.alert_count == 0 and incident.dedup_key.startswith("declared-")
    entry = incident.timeline.get()
    assert entry.kind == "triggered" and entry.actor == responder and "Declared by Rita" in entry.message
    assert [str(m) for m in get_messages(response.wsgi_request)] == [f"{incident.ref} declared."]


@pytest.mark.parametrize("data,error", [
    ({"title": ""}, "This field is required"),
    ({"title": "   "}, "This field is required"),
    ({"severity": "SEV0"}, "Select a valid choice"),
    ({"priority": "P9"}, "Select a valid choice"),
    ({"service": "other"}, "Select a valid choice"),
    ({"service": ""}, "This field is required"),
])
def test_declare_bad_input(login, responder, service_a, service_b, data, error):
    post = {"service": service_a.pk, "title": "x", "severity": "SEV2", "priority": "", **data}
    if post["service"] == "other":
        post["service"] = service_b.pk
    response = login(responder).post(ADD, post)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Incident.objects.exists()


def test_other_teams_service_is_not_offered(login, responder, service_a, service_b):
    assert "search-api" not in login(responder).get(ADD).content.decode()


def test_declare_service_validates(service_a):
    with pytest.raises(ValueError, match="needs a title"):
        incident_declare(service=service_a, title=" ", severity="SEV1", user=None, via="web")
    with pytest.raises(ValueError, match="Unknown severity"):
        incident_declare(service=service_a, title="x", severity="bad", user=None, via="web")
    with pytest.raises(ValueError, match="Unknown priority"):
        incident_declare(service=service_a, title="x", severity="SEV1", priority="P0", user=None, via="web")
    assert not Incident.objects.exists()


def test_declared_incidents_are_numbered_with_the_rest(service_a, raise_alert):
    first = raise_alert(service_a, "from an alert")
    declared = incident_declare(service=service_a, title="by hand", severity="SEV3", user=None, via="web")
    assert declared.number == first.number + 1
