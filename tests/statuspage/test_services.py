"""Status page writes: status log in the same transaction, incidents, maintenance."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from statuspage import services
from statuspage.models import ComponentStatusChange, Maintenance, PublicIncident, StatusPage


def test_status_change_is_logged_and_touches_the_page(page, api_component):
    before = StatusPage.objects.get(pk=page.pk).changed_at
    change = services.component_set_status(component=api_component, status="partial_outage")
    assert (change.old_status, change.new_status) == ("operational", "partial_outage")
    api_component.refresh_from_db()
    assert api_component.status == "partial_outage"
    assert StatusPage.objects.get(pk=page.pk).changed_at > before
    # Same status again: no new log row.
    assert services.component_set_status(component=api_component, status="partial_outage") is None
    assert ComponentStatusChange.objects.count() == 1


def test_unknown_status_is_refused_and_nothing_written(api_component):
    with pytest.raises(ValidationError, match="Unknown component status 'broken'"):
        services.component_set_status(component=api_component, status="broken")
    assert ComponentStatusChange.objects.count() == 0


def test_bulk_status_change(api_component, web_component):
    count = services.components_bulk_set_status(
        components=[api_component, web_component], status="major_outage"
    )
    assert count == 2
    assert set(ComponentStatusChange.objects.values_list("new_status", flat=True)) == {"major_outage"}


def test_public_incident_lifecycle(page, api_component, manager):
    incident = services.public_incident_create(
        page=page,
        name="Payments failing",
        body="We are **looking** into it.",
        impact="major",
        component_statuses={api_component.pk: "major_outage"},
        author=manager,
    )
    api_component.refresh_from_db()
    assert api_component.status == "major_outage"
    first = incident.updates.get()
    assert first.body_html == "<p>We are <strong>looking</strong> into it.</p>"
    assert first.affected_components == [
        {
            "code": str(api_component.pk),
            "name": "Payments API",
            "old_status": "operational",
            "new_status": "major_outage",
        }
    ]
    services.public_incident_post_update(incident=incident, status="monitoring", body="Fix deployed.")
    incident.refresh_from_db()
    assert incident.monitoring_at is not None
    services.public_incident_post_update(incident=incident, status="resolved", body="All good.")
    incident.refresh_from_db()
    api_component.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_at is not None
    assert api_component.status == "operational"
    assert list(incident.updates.values_list("status", flat=True)) == [
        "resolved",
        "monitoring",
        "investigating",
    ]


def test_draft_changes_nothing_public_until_published(page, api_component):
    incident = services.public_incident_create(
        page=page,
        name="Draft",
        body="Investigating.",
        component_statuses={api_component.pk: "partial_outage"},
        published=False,
    )
    api_component.refresh_from_db()
    assert api_component.status == "operational"
    assert services.public_incident_publish(incident=incident) is True
    api_component.refresh_from_db()
    assert api_component.status == "partial_outage"
    assert services.public_incident_publish(incident=incident) is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "body": "x"}, "needs a name"),
        ({"name": "x", "body": "   "}, "message is empty"),
        ({"name": "x", "body": "x", "status": "exploded"}, "Unknown incident status"),
        ({"name": "x", "body": "x" * 20001}, "longer than"),
    ],
)
def test_bad_incident_input_is_refused_and_nothing_written(page, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        services.public_incident_create(page=page, **kwargs)
    assert PublicIncident.objects.count() == 0


def test_components_of_another_page_are_refused(page, team_b, api_component):
    from statuspage.models import Component

    other = StatusPage.objects.create(team=team_b, slug="other", title="Other")
    foreign = Component.objects.create(page=other, name="Foreign")
    with pytest.raises(ValidationError, match="not on the page"):
        services.public_incident_create(
            page=page, name="x", body="y", component_statuses={foreign.pk: "major_outage"}
        )
    assert PublicIncident.objects.count() == 0
    foreign.refresh_from_db()
    assert foreign.status == "operational"


def test_xss_in_update_body_is_rendered_inert(page):
    body = (
        "<script>alert(1)</script><img src=x onerror=alert(2)> [click](javascript:alert(3)) "
        '<a href="https://example.com" onclick="x()">ok</a>'
    )
    incident = services.public_incident_create(page=page, name="x", body=body)
    html = incident.updates.get().body_html
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html
    assert "onclick" not in html and "<img" not in html
    assert 'href="https://example.com"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_maintenance_moves_components_under_maintenance_and_back(page, api_component):
    start = timezone.now() + timedelta(hours=1)
    maintenance = services.maintenance_create(
        page=page,
        name="DB upgrade",
        body="Upgrading.",
        scheduled_for=start,
        scheduled_until=start + timedelta(hours=2),
        component_ids=[api_component.pk],
    )
    services.maintenance_post_update(maintenance=maintenance, status="in_progress", body="Started.")
    api_component.refresh_from_db()
    assert api_component.status == "under_maintenance"
    services.maintenance_post_update(maintenance=maintenance, status="completed", body="Done.")
    api_component.refresh_from_db()
    maintenance.refresh_from_db()
    assert api_component.status == "operational"
    assert maintenance.status == "completed" and maintenance.completed_at is not None
    sources = set(ComponentStatusChange.objects.values_list("source", flat=True))
    assert sources == {"maintenance"}


def test_maintenance_bad_window_is_refused(page):
    start = timezone.now()
    with pytest.raises(ValidationError, match="end after it starts"):
        services.maintenance_create(page=page, name="x", body="y", scheduled_for=start, scheduled_until=start)
    assert Maintenance.objects.count() == 0


def test_clock_starts_and_completes_maintenance_on_schedule(page, api_component):
    from ircore.clock import clock_jobs

    assert "statuspage_maintenance" in {job.name for job in clock_jobs()}
    start = timezone.now() + timedelta(hours=1)
    auto = services.maintenance_create(
        page=page,
        name="Auto",
        body="Planned.",
        scheduled_for=start,
        scheduled_until=start + timedelta(hours=2),
        component_ids=[api_component.pk],
    )
    manual = services.maintenance_create(
        page=page,
        name="Manual",
        body="Planned.",
        scheduled_for=start,
        scheduled_until=start + timedelta(hours=2),
        auto_transition=False,
    )
    assert services.maintenances_auto_advance(start - timedelta(seconds=1)) == 0
    assert services.maintenances_auto_advance(start) == 1
    assert services.maintenances_auto_advance(start + timedelta(minutes=1)) == 0  # no repeat
    auto.refresh_from_db()
    api_component.refresh_from_db()
    assert auto.status == "in_progress" and api_component.status == "under_maintenance"
    assert services.maintenances_auto_advance(start + timedelta(hours=2)) == 1
    auto.refresh_from_db()
    api_component.refresh_from_db()
    assert auto.status == "completed" and api_component.status == "operational"
    assert list(auto.updates.values_list("status", flat=True)) == ["completed", "in_progress", "scheduled"]
    manual.refresh_from_db()
    assert manual.status == "scheduled"


def test_overdue_scheduled_maintenance_completes_directly(page):
    start = timezone.now() - timedelta(hours=3)
    item = services.maintenance_create(
        page=page, name="Missed", body="x", scheduled_for=start, scheduled_until=start + timedelta(hours=1)
    )
    assert services.maintenances_auto_advance() == 1
    item.refresh_from_db()
    assert item.status == "completed"
