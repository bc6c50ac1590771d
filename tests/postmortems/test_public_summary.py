"""A published postmortem's summary posted on the linked status page incident."""

import pytest
from django.core.exceptions import ValidationError

from postmortems import services
from statuspage.models import PublicIncident, PublicUpdate, StatusPage
from statuspage.services import public_incident_create


@pytest.fixture
def public_incident(team_a, resolved_incident):
    page = StatusPage.objects.create(team=team_a, slug="payments", title="Payments status")
    return public_incident_create(
        page=page,
        name="Checkout errors",
        body="Investigating.",
        status="resolved",
        source_incident=resolved_incident,
    )


@pytest.fixture
def published(resolved_incident, responder, secondary):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    services.postmortem_submit_for_review(postmortem=pm, user=responder, reviewers=[secondary])
    services.postmortem_publish(postmortem=pm, user=secondary)
    return pm


def test_summary_posted_on_linked_public_incident_keeping_status(published, public_incident, secondary):
    (update,) = services.postmortem_publish_public_summary(
        postmortem=published, user=secondary, summary="A bad deploy; we added a canary. <script>x</script>"
    )
    assert update.incident == public_incident and update.status == "resolved"
    assert "<script" not in update.body_html and "canary" in update.body_html
    assert PublicIncident.objects.get().status == "resolved"
    assert published.changes.last().action == "public_summary"


def test_refusals(resolved_incident, responder, published, team_b, public_incident):
    draft_pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    with pytest.raises(services.TransitionRefused, match="Publish the postmortem"):
        services.postmortem_publish_public_summary(postmortem=draft_pm, user=responder, summary="x")
    with pytest.raises(ValidationError, match="summary"):
        services.postmortem_publish_public_summary(postmortem=published, user=responder, summary="  ")
    # A public incident on another team's page is not touched.
    public_incident.page.team = team_b
    public_incident.page.save()
    with pytest.raises(ValidationError, match="status page of this team"):
        services.postmortem_publish_public_summary(postmortem=published, user=responder, summary="x")
    assert PublicUpdate.objects.count() == 1  # only the original one


def test_api(api, published, public_incident, responder):
    url = f"/api/v1/postmortems/{published.pk}/publish-summary/"
    assert api(responder).post(url, {}, format="json").status_code == 400
    res = api(responder).post(url, {"summary": "Root cause: a bad deploy."}, format="json")
    assert res.status_code == 201 and res.data["posted"][0]["status_page"] == "payments"


def test_console_button(published, public_incident, responder):
    from django.test import Client

    client = Client()
    client.force_login(responder)
    page = client.get(f"/admin/postmortems/postmortem/{published.pk}/change/").content.decode()
    assert "Post summary on the status page" in page
    res = client.post(
        f"/admin/postmortems/postmortem/{published.pk}/do/summary/", {"summary": "Fixed."}, follow=True
    )
    assert "Summary posted on 1 status page incident(s)." in res.content.decode()
    assert PublicUpdate.objects.filter(body="Fixed.").exists()
