"""Incidents drive linked components and public incidents (receivers of incidents.signals)."""

import pytest

from incidents import services as incident_services
from incidents.events import AlertEvent
from incidents.models import TimelineEntry
from statuspage.models import ComponentServiceLink, PublicIncident, UpdateTemplate


@pytest.fixture
def integration(service_a, make_integration):
    return make_integration(service_a, "generic")


def trigger(integration, django_capture_on_commit_callbacks, **kw):
    kw.setdefault("summary", "db-7 disk full")
    with django_capture_on_commit_callbacks(execute=True):
        return incident_services.alert_ingest(integration=integration, event=AlertEvent(**kw)).incident


def test_shipped_templates_exist(db):
    events = set(UpdateTemplate.objects.filter(page=None).values_list("event", flat=True))
    assert {"triggered", "acknowledged", "resolved"} <= events


def test_automatic_link_publishes_and_follows_the_incident(
    page, api_component, service_a, integration, responder, django_capture_on_commit_callbacks
):
    ComponentServiceLink.objects.create(component=api_component, service=service_a, mode="automatic")
    incident = trigger(integration, django_capture_on_commit_callbacks, severity="SEV1")
    public = PublicIncident.objects.get(source_incident=incident)
    api_component.refresh_from_db()
    assert public.published and public.impact == "critical"
    assert public.name == "Service disruption: Payments API"
    # The internal alert text is not leaked by the shipped template.
    assert "db-7" not in public.updates.get().body
    assert api_component.status == "major_outage"
    assert TimelineEntry.objects.filter(incident=incident, kind="status_page").exists()

    with django_capture_on_commit_callbacks(execute=True):
        incident_services.incident_acknowledge(incident=incident, user=responder, via="web")
    public.refresh_from_db()
    assert public.status == "identified"

    with django_capture_on_commit_callbacks(execute=True):
        incident_services.incident_resolve(incident=incident, user=responder, via="web")
    public.refresh_from_db()
    api_component.refresh_from_db()
    assert public.status == "resolved"
    assert api_component.status == "operational"
    assert list(public.updates.values_list("status", flat=True)) == [
        "resolved",
        "identified",
        "investigating",
    ]


def test_draft_link_opens_an_unpublished_incident(
    page, api_component, service_a, integration, django_capture_on_commit_callbacks
):
    ComponentServiceLink.objects.create(component=api_component, service=service_a, mode="draft")
    incident = trigger(integration, django_capture_on_commit_callbacks, severity="SEV2")
    public = PublicIncident.objects.get(source_incident=incident)
    api_component.refresh_from_db()
    assert not public.published and public.impact == "major"
    assert api_component.status == "operational"


def test_page_template_overrides_shipped_one_and_severity_mapping_is_configurable(
    page, api_component, service_a, integration, django_capture_on_commit_callbacks
):
    ComponentServiceLink.objects.create(
        component=api_component, service=service_a, mode="automatic", sev3_status="partial_outage"
    )
    UpdateTemplate.objects.create(
        page=page,
        name="ours",
        event="triggered",
        update_status="identified",
        title="Trouble with {{ service }}",
        body="Severity {{ severity }} on {{ page }}.",
    )
    incident = trigger(integration, django_capture_on_commit_callbacks, severity="SEV3")
    public = PublicIncident.objects.get(source_incident=incident)
    api_component.refresh_from_db()
    assert public.name == "Trouble with payments-api"
    assert public.status == "identified"
    assert public.updates.get().body == "Severity SEV3 on Acme Status."
    assert api_component.status == "partial_outage"


def test_component_only_link_and_another_open_incident_holds_the_component(
    page, api_component, service_a, integration, django_capture_on_commit_callbacks
):
    ComponentServiceLink.objects.create(component=api_component, service=service_a, mode="component_only")
    first = trigger(integration, django_capture_on_commit_callbacks, severity="SEV2", dedup_key="a")
    trigger(integration, django_capture_on_commit_callbacks, severity="SEV2", dedup_key="b")
    assert PublicIncident.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        incident_services.incident_resolve(incident=first, user=None, via="system")
    api_component.refresh_from_db()
    assert api_component.status == "partial_outage"


def test_unlinked_service_changes_nothing(
    page, api_component, integration, django_capture_on_commit_callbacks
):
    trigger(integration, django_capture_on_commit_callbacks, severity="SEV1")
    api_component.refresh_from_db()
    assert api_component.status == "operational"
    assert PublicIncident.objects.count() == 0


def test_severity_raise_updates_component(
    page, api_component, service_a, integration, django_capture_on_commit_callbacks
):
    ComponentServiceLink.objects.create(component=api_component, service=service_a, mode="automatic")
    trigger(integration, django_capture_on_commit_callbacks, severity="SEV3", dedup_key="k")
    api_component.refresh_from_db()
    assert api_component.status == "degraded_performance"
    trigger(integration, django_capture_on_commit_callbacks, severity="SEV1", dedup_key="k")
    api_component.refresh_from_db()
    assert api_component.status == "major_outage"
    assert PublicIncident.objects.get().impact == "critical"
    assert TimelineEntry.objects.filter(
        kind="status_page", message="Status page 'Acme Status': updated for severity SEV1"
    ).exists()


def test_resolve_without_public_incident_notes_the_components_reset(
    page, api_component, service_a, integration, django_capture_on_commit_callbacks
):
    ComponentServiceLink.objects.create(component=api_component, service=service_a, mode="component_only")
    incident = trigger(integration, django_capture_on_commit_callbacks, severity="SEV2")
    with django_capture_on_commit_callbacks(execute=True):
        incident_services.incident_resolve(incident=incident, user=None, via="system")
    api_component.refresh_from_db()
    assert api_component.status == "operational"
    assert incident.timeline.filter(
        kind="status_page", message="Status page 'Acme Status': component status back to operational"
    ).exists()


def test_reopened_incident_reopens_the_public_incident(
    page, api_component, service_a, integration, responder, django_capture_on_commit_callbacks
):
    ComponentServiceLink.objects.create(component=api_component, service=service_a, mode="automatic")
    incident = trigger(integration, django_capture_on_commit_callbacks, severity="SEV2")
    with django_capture_on_commit_callbacks(execute=True):
        incident_services.incident_resolve(incident=incident, user=responder, via="web")
    with django_capture_on_commit_callbacks(execute=True):
        incident_services.incident_reopen(incident=incident, user=responder, via="web")
    public = PublicIncident.objects.get(source_incident=incident)
    api_component.refresh_from_db()
    assert public.status == "investigating" and public.resolved_at is None
    assert api_component.status == "partial_outage"
    assert PublicIncident.objects.count() == 1


def test_public_incident_whose_link_was_removed_is_resolved_and_noted(
    page, api_component, service_a, integration, responder, django_capture_on_commit_callbacks
):
    link = ComponentServiceLink.objects.create(component=api_component, service=service_a, mode="automatic")
    incident = trigger(integration, django_capture_on_commit_callbacks, severity="SEV1")
    public = PublicIncident.objects.get(source_incident=incident)
    link.delete()
    with django_capture_on_commit_callbacks(execute=True):
        incident_services.incident_resolve(incident=incident, user=responder, via="web")
    public.refresh_from_db()
    assert public.status == "resolved"
    assert incident.timeline.filter(
        kind="status_page", message=f"Status page 'Acme Status': public incident #{public.pk} resolved"
    ).exists()


def test_each_page_commits_its_change_with_its_note_and_a_failing_page_spares_the_others(
    page, private_page, api_component, service_a, integration, django_capture_on_commit_callbacks,
    monkeypatch,
):
    from statuspage import automation
    from statuspage.models import Component

    internal = Component.objects.create(page=private_page, name="Internal API", position=0)
    ComponentServiceLink.objects.create(component=api_component, service=service_a, mode="automatic")
    ComponentServiceLink.objects.create(component=internal, service=service_a, mode="automatic")
    note = automation._note

    def note_failing_on_the_public_page(incident, on_page, message):
        if on_page.pk == page.pk:
            raise RuntimeError("timeline unavailable")
        note(incident, on_page, message)

    monkeypatch.setattr(automation, "_note", note_failing_on_the_public_page)
    incident = trigger(integration, django_capture_on_commit_callbacks, severity="SEV1")

    # The page whose note failed is left as it was: no public incident, component untouched.
    assert not PublicIncident.objects.filter(page=page).exists()
    api_component.refresh_from_db()
    assert api_component.status == "operational"
    # The other page was updated, and says so on the timeline.
    assert PublicIncident.objects.get(page=private_page).source_incident == incident
    internal.refresh_from_db()
    assert internal.status == "major_outage"
    notes = TimelineEntry.objects.filter(incident=incident, kind="status_page")
    assert [n.data["status_page"] for n in notes] == ["internal"]
