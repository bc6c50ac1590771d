"""The status page console: scoping, bulk status change, post update inline, export."""

import pytest

from statuspage import services
from statuspage.models import Component, ComponentStatusChange, PublicIncident, StatusPage, Subscriber


def mgmt(prefix, total=0, initial=0):
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def post_component_change(client, component, *, status, **extra):
    """The component's change form as the console posts it, with ``status`` and extra fields."""
    return client.post(
        f"/admin/statuspage/component/{component.pk}/change/",
        {
            "page": component.page_id,
            "group": component.group_id,
            "name": component.name,
            "description": "",
            "position": component.position,
            "status": status,
            "show_uptime": "on",
            **mgmt("service_links"),
            **extra,
        },
    )


def test_changelists_are_team_scoped(client, page, api_component, outsider, manager, team_b):
    other = StatusPage.objects.create(team=team_b, slug="other", title="Other Team Page")
    Component.objects.create(page=other, name="Other component")
    client.force_login(manager)
    html = client.get("/admin/statuspage/statuspage/").content.decode()
    assert "Acme Status" in html and "Other Team Page" not in html and "Open page" in html
    html = client.get("/admin/statuspage/component/").content.decode()
    assert "Payments API" in html and "Other component" not in html
    assert client.get(f"/admin/statuspage/statuspage/{other.pk}/change/").status_code in (302, 404)
    client.force_login(outsider)
    assert "Payments API" not in client.get("/admin/statuspage/component/").content.decode()


def test_bulk_status_change_logs_every_component(client, manager, api_component, web_component):
    client.force_login(manager)
    response = client.post(
        "/admin/statuspage/component/",
        {
            "action": "set_partial_outage",
            "_selected_action": [api_component.pk, web_component.pk],
        },
    )
    assert response.status_code == 302
    assert ComponentStatusChange.objects.filter(new_status="partial_outage").count() == 2


def test_responder_cannot_bulk_change_components(client, responder, api_component):
    client.force_login(responder)
    client.post(
        "/admin/statuspage/component/", {"action": "set_major_outage", "_selected_action": [api_component.pk]}
    )
    api_component.refresh_from_db()
    assert api_component.status == "operational"


def test_component_status_edit_is_logged(client, manager, page, api_component):
    client.force_login(manager)
    response = post_component_change(client, api_component, status="degraded_performance")
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ComponentStatusChange.objects.get().new_status == "degraded_performance"


def test_create_incident_and_post_update_from_the_console(client, responder, page, api_component):
    client.force_login(responder)
    response = client.post(
        "/admin/statuspage/publicincident/add/",
        {
            "page": page.pk,
            "name": "Slow checkout",
            "impact": "minor",
            "published": "on",
            "components": [api_component.pk],
            "update_status": "investigating",
            "update_body": "Looking into it.",
            **mgmt("updates"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    incident = PublicIncident.objects.get()
    assert list(incident.components.all()) == [api_component]
    response = client.post(
        f"/admin/statuspage/publicincident/{incident.pk}/change/",
        {
            "name": "Slow checkout",
            "impact": "minor",
            "published": "on",
            "components": [api_component.pk],
            "update_status": "",
            "update_template": "",
            "update_body": "",
            **mgmt("updates", 1, 1),
            "updates-0-id": incident.updates.get().pk,
            "updates-0-incident": incident.pk,
        },
    )
    assert response.status_code == 302
    assert incident.updates.count() == 1  # nothing posted without a message
    from statuspage.models import UpdateTemplate

    monitoring = UpdateTemplate.objects.get(page=None, name="Monitoring a fix")
    response = client.post(
        f"/admin/statuspage/publicincident/{incident.pk}/change/",
        {
            "name": "Slow checkout",
            "impact": "minor",
            "published": "on",
            "components": [api_component.pk],
            "update_status": "",
            "update_template": monitoring.pk,
            "update_body": "",
            **mgmt("updates", 1, 1),
            "updates-0-id": incident.updates.get().pk,
            "updates-0-incident": incident.pk,
        },
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == "monitoring"
    assert incident.updates.first().body == monitoring.body


def test_incident_add_without_message_is_refused(client, responder, page):
    client.force_login(responder)
    response = client.post(
        "/admin/statuspage/publicincident/add/",
        {
            "page": page.pk,
            "name": "x",
            "impact": "minor",
            "update_status": "",
            "update_body": "",
            **mgmt("updates"),
        },
    )
    assert response.status_code == 200
    assert "Write the first update" in response.content.decode()
    assert PublicIncident.objects.count() == 0


def test_publish_drafts_action(client, responder, page, api_component):
    draft = services.public_incident_create(
        page=page,
        name="Draft",
        body="x",
        published=False,
        component_statuses={api_component.pk: "major_outage"},
    )
    client.force_login(responder)
    client.post(
        "/admin/statuspage/publicincident/", {"action": "publish_drafts", "_selected_action": [draft.pk]}
    )
    draft.refresh_from_db()
    api_component.refresh_from_db()
    assert draft.published and api_component.status == "major_outage"


def test_subscriber_export(client, manager, page):
    Subscriber.objects.create(page=page, email="ann@example.com")
    client.force_login(manager)
    response = client.post(
        "/admin/statuspage/subscriber/",
        {
            "action": "export_csv",
            "_selected_action": list(Subscriber.objects.values_list("pk", flat=True)),
        },
    )
    assert response["Content-Type"].startswith("text/csv")
    assert "acme,email,ann@example.com" in response.content.decode()


@pytest.mark.parametrize("body", ["{% if %}", "{{ components|nosuchfilter }}"])
def test_template_syntax_errors_are_reported(client, manager, page, body):
    client.force_login(manager)
    response = client.post(
        "/admin/statuspage/updatetemplate/add/",
        {
            "page": page.pk,
            "name": "Broken",
            "event": "",
            "update_status": "investigating",
            "title": "",
            "body": body,
        },
    )
    assert response.status_code == 200 and "Template error" in response.content.decode()


def test_shipped_templates_visible_but_not_editable_by_managers(client, manager):
    from statuspage.models import UpdateTemplate

    shipped = UpdateTemplate.objects.filter(page=None).first()
    client.force_login(manager)
    assert shipped.name in client.get("/admin/statuspage/updatetemplate/").content.decode()
    response = client.post(
        f"/admin/statuspage/updatetemplate/{shipped.pk}/change/",
        {
            "name": "hacked",
            "update_status": "investigating",
            "body": "x",
        },
    )
    assert response.status_code == 403


def test_dashboard_panel_shows_status_and_drafts(client, responder, outsider, page, api_component):
    services.public_incident_create(page=page, name="Draft for comms", body="x", published=False)
    services.component_set_status(component=api_component, status="major_outage")
    client.force_login(responder)
    html = client.get("/admin/").content.decode()
    assert 'id="status-pages"' in html and "Major System Outage" in html
    assert "Draft waiting to be published" in html and "Draft for comms" in html
    client.force_login(outsider)
    assert 'id="status-pages"' not in client.get("/admin/").content.decode()


def test_service_link_to_another_teams_service_is_refused(client, admin_user, page, api_component, service_b):
    client.force_login(admin_user)
    response = post_component_change(
        client,
        api_component,
        status="operational",
        **mgmt("service_links", total=1),
        **{
            "service_links-0-service": service_b.pk,
            "service_links-0-mode": "automatic",
            "service_links-0-sev1_status": "major_outage",
            "service_links-0-sev2_status": "partial_outage",
            "service_links-0-sev3_status": "degraded_performance",
            "service_links-0-sev4_status": "",
        },
    )
    assert response.status_code == 200
    assert "belongs to another team" in response.content.decode()
    assert not api_component.service_links.exists()


def _changelist_queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    "url", ["/admin/statuspage/updatetemplate/", "/admin/statuspage/componentstatuschange/"]
)
def test_changelist_queries_do_not_grow_with_rows(client, manager, page, url):
    from statuspage.models import UpdateTemplate

    def add_rows(tag: str, count: int) -> None:
        for i in range(count):
            component = Component.objects.create(page=page, name=f"{tag}{i}")
            services.component_set_status(component=component, status="major_outage", actor=manager)
            UpdateTemplate.objects.create(
                page=page, name=f"{tag}{i}", event="triggered", update_status="investigating",
                title="t", body="b",
            )

    client.force_login(manager)
    add_rows("first", 1)
    before = _changelist_queries(client, url)
    add_rows("more", 5)
    assert _changelist_queries(client, url) == before


def test_dashboard_panel_queries_do_not_grow_with_pages(client, responder, team_a):
    def add_page(slug: str) -> None:
        page = StatusPage.objects.create(team=team_a, slug=slug, title=slug)
        Component.objects.create(page=page, name=f"{slug} API")
        services.public_incident_create(page=page, name=f"Open {slug}", body="x", published=True)
        for i in range(7):
            services.public_incident_create(page=page, name=f"Draft {slug} {i}", body="x", published=False)

    client.force_login(responder)
    add_page("first")
    before = _changelist_queries(client, "/admin/")
    for slug in ("second", "third", "fourth"):
        add_page(slug)
    assert _changelist_queries(client, "/admin/") == before
    html = client.get("/admin/").content.decode()
    # Each page lists its five newest drafts.
    assert html.count("Draft waiting to be published") == 4 * 5
    assert "Draft fourth 6" in html and "Draft fourth 1" not in html


def _maintenance_form(page, component, *, start: str, end: str, body: str = "Upgrading the db.") -> dict:
    return {
        "page": page.pk,
        "name": "Database upgrade",
        "impact": "minor",
        "published": "on",
        "components": [component.pk],
        "scheduled_for_0": start.split()[0],
        "scheduled_for_1": start.split()[1],
        "scheduled_until_0": end.split()[0],
        "scheduled_until_1": end.split()[1],
        "auto_transition": "on",
        "update_status": "scheduled",
        "update_template": "",
        "update_body": body,
        **mgmt("updates"),
    }


def test_schedule_maintenance_from_the_console(client, manager, page, api_component):
    from statuspage.models import Maintenance

    client.force_login(manager)
    response = client.post(
        "/admin/statuspage/maintenance/add/",
        _maintenance_form(page, api_component, start="2030-01-01 10:00:00", end="2030-01-01 12:00:00"),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    maintenance = Maintenance.objects.get()
    assert list(maintenance.components.all()) == [api_component]
    assert maintenance.updates.get().body == "Upgrading the db."


@pytest.mark.parametrize(
    ("start", "end", "body", "error"),
    [
        ("2030-01-01 12:00:00", "2030-01-01 10:00:00", "x", "must end after it starts"),
        ("2030-01-01 10:00:00", "2030-01-01 10:00:00", "x", "must end after it starts"),
        ("2030-01-01 10:00:00", "2030-01-01 12:00:00", "x" * (services.MAX_BODY + 1), "at most 20000"),
    ],
)
def test_bad_maintenance_is_refused_by_the_form(client, manager, page, api_component, start, end, body,
                                                error):
    from statuspage.models import Maintenance

    client.force_login(manager)
    form = _maintenance_form(page, api_component, start=start, end=end, body=body)
    response = client.post("/admin/statuspage/maintenance/add/", form)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Maintenance.objects.exists()


def test_too_long_incident_update_is_refused_by_the_form(client, responder, page, api_component):
    client.force_login(responder)
    incident = services.public_incident_create(page=page, name="Slow checkout", body="x")
    response = client.post(
        f"/admin/statuspage/publicincident/{incident.pk}/change/",
        {
            "name": "Slow checkout",
            "impact": "none",
            "published": "on",
            "components": [],
            "update_status": "identified",
            "update_template": "",
            "update_body": "x" * (services.MAX_BODY + 1),
            **mgmt("updates", total=1, initial=1),
        },
    )
    assert response.status_code == 200
    assert "at most 20000" in response.content.decode()
    assert incident.updates.count() == 1
