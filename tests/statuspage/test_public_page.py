"""The server-rendered public page, its permanent incident pages, access and caching."""

from datetime import timedelta

import pytest
from django.utils import timezone

from statuspage import services


def test_all_operational_page(client, page, group, api_component, web_component):
    response = client.get("/status/acme/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Acme Status</title>" in html
    assert "All Systems Operational" in html
    assert '<details class="group" open>' in html and "Payments API" in html and "Website" in html
    # Bars: 90 days, a tooltip per day, the percentage and the rule.
    assert html.count("<rect ") == 180
    assert "100% uptime" in html
    assert "partial outage at 30%" in html
    assert "Times are shown in Europe/Berlin" in html


def test_partial_outage_with_incident_updates_newest_first(client, page, api_component):
    incident = services.public_incident_create(
        page=page,
        name="Card payments failing",
        body="Investigating the first thing.",
        impact="major",
        component_statuses={api_component.pk: "partial_outage"},
        at=timezone.now() - timedelta(minutes=30),
    )
    services.public_incident_post_update(
        incident=incident, status="identified", body="Found the second thing."
    )
    html = client.get("/status/acme/").content.decode()
    assert "Partial System Outage" in html
    assert "Card payments failing" in html
    assert html.index("Found the second thing") < html.index("Investigating the first thing")
    assert "Partial outage" in html
    # The permanent page shows all updates and the affected component.
    detail = client.get(f"/status/acme/incidents/{incident.pk}/").content.decode()
    assert "Found the second thing" in detail and "Investigating the first thing" in detail
    assert "Affected components: Payments API" in detail


def test_drafts_are_not_shown(client, page, api_component):
    draft = services.public_incident_create(page=page, name="Secret draft", body="x", published=False)
    assert "Secret draft" not in client.get("/status/acme/").content.decode()
    assert client.get(f"/status/acme/incidents/{draft.pk}/").status_code == 404


def test_xss_in_update_body_is_inert_on_the_page(client, page):
    services.public_incident_create(
        page=page,
        name="<script>alert('name')</script>",
        body="<script>alert(1)</script><b onmouseover=x()>hi</b>",
    )
    html = client.get("/status/acme/").content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in html
    assert "onmouseover" not in html


def test_maintenance_active_and_upcoming(client, page, api_component):
    start = timezone.now() + timedelta(days=1)
    upcoming = services.maintenance_create(
        page=page,
        name="Database upgrade",
        body="Planned.",
        scheduled_for=start,
        scheduled_until=start + timedelta(hours=2),
        component_ids=[api_component.pk],
    )
    html = client.get("/status/acme/").content.decode()
    assert "Scheduled maintenance" in html and "Database upgrade" in html
    services.maintenance_post_update(maintenance=upcoming, status="in_progress", body="Started now.")
    html = client.get("/status/acme/").content.decode()
    assert "Maintenance in progress" in html and "Service Under Maintenance" in html
    assert client.get(f"/status/acme/maintenance/{upcoming.pk}/").status_code == 200


def test_history_by_month(client, page):
    incident = services.public_incident_create(page=page, name="Old outage", body="x")
    services.public_incident_post_update(incident=incident, status="resolved", body="Fixed it.")
    html = client.get("/status/acme/history/").content.decode()
    month = timezone.now().astimezone(page.tz).strftime("%B %Y")
    assert month in html and "Old outage" in html
    assert "No incidents reported." in html  # earlier months


def test_login_only_page_refuses_anonymous_and_outsiders(client, private_page, responder, outsider):
    response = client.get("/status/internal/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert client.get("/status/internal/api/v2/summary.json").status_code == 302
    assert client.get("/status/internal/feed.atom").status_code == 302
    client.force_login(outsider)
    assert client.get("/status/internal/").status_code == 404
    client.force_login(responder)
    response = client.get("/status/internal/")
    assert response.status_code == 200 and "private" in response["Cache-Control"]


def test_unknown_page_is_404(client, db):
    assert client.get("/status/nope/").status_code == 404


def test_conditional_get_and_cache_invalidated_on_change(client, page, api_component):
    first = client.get("/status/acme/")
    etag, modified = first["ETag"], first["Last-Modified"]
    assert client.get("/status/acme/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert client.get("/status/acme/", HTTP_IF_MODIFIED_SINCE=modified).status_code == 304
    services.component_set_status(component=api_component, status="major_outage")
    second = client.get("/status/acme/", HTTP_IF_NONE_MATCH=etag)
    assert second.status_code == 200 and second["ETag"] != etag
    assert "Major System Outage" in second.content.decode()


def test_admin_style_edit_also_invalidates(client, page, web_component):
    etag = client.get("/status/acme/")["ETag"]
    web_component.name = "Renamed website"
    web_component.save()
    response = client.get("/status/acme/", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200 and "Renamed website" in response.content.decode()


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_page_is_read_only(client, page, method):
    assert getattr(client, method)("/status/acme/").status_code == 405


def test_gzip_variant_has_its_own_etag(client, page, api_component):
    import gzip

    plain = client.get("/status/acme/")
    packed = client.get("/status/acme/", HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert packed["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed["Vary"]
    assert gzip.decompress(packed.content) == plain.content
    assert packed["ETag"] != plain["ETag"]
    assert len(packed.content) < len(plain.content) / 3
    again = client.get("/status/acme/", HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=packed["ETag"])
    assert again.status_code == 304


def test_recent_past_incidents_on_the_page(client, page):
    incident = services.public_incident_create(page=page, name="Yesterday's blip", body="x")
    services.public_incident_post_update(incident=incident, status="resolved", body="All fine again.")
    html = client.get("/status/acme/").content.decode()
    past = html[html.index("Past incidents") :]
    assert "Yesterday&#x27;s blip" in past and "All fine again." in past
    assert "No incidents reported." in past  # the days before


def test_page_settings_change_is_seen_at_once(client, page, django_assert_num_queries):
    client.get("/status/acme/")
    # A cached page is served without a database query.
    with django_assert_num_queries(0):
        assert client.get("/status/acme/").status_code == 200
    page.title = "Renamed Status"
    page.visibility = "login_only"
    page.save()
    assert client.get("/status/acme/").status_code == 302


def test_team_members_preview_drafts(client, page, responder, outsider):
    draft = services.public_incident_create(
        page=page, name="Draft text", body="Not public yet.", published=False
    )
    url = f"/status/acme/incidents/{draft.pk}/"
    assert client.get(url).status_code == 404
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(responder)
    response = client.get(url)
    assert response.status_code == 200 and "Draft preview" in response.content.decode()
    assert response["Cache-Control"] == "private, no-store"
    # The console's "View on site" goes there.
    assert draft.get_absolute_url() == url
