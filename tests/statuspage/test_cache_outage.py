"""The status page with REDIS_URL set and Redis unreachable (ircore.cache): the page is
served, subscriptions are still rate limited (per process), and edits that invalidate
the page's cache entries succeed, in the admin and from incidents."""

from __future__ import annotations

import logging

import pytest

from incidents import services as incident_services
from incidents.events import AlertEvent
from ircore.testing import unreachable_redis_url
from statuspage.models import ComponentServiceLink, ComponentStatusChange, Subscriber
from tests.statuspage.test_admin import post_component_change


@pytest.fixture(autouse=True)
def redis_down(settings, redis_cache_fresh):
    """REDIS_URL pointing at a port nothing listens on."""
    settings.CACHES = {"default": {"BACKEND": "ircore.cache.ResilientRedisCache",
                                   "LOCATION": unreachable_redis_url(),
                                   "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}


def outage_warnings(caplog) -> int:
    # The fixtures' StatusPage.save() already met the outage (its cache invalidation).
    records = caplog.get_records("setup") + caplog.get_records("call")
    return sum(r.name == "ircore.cache" and r.levelno == logging.WARNING for r in records)


def test_public_page_is_served(client, page, group, api_component, web_component, caplog):
    for url in ["/status/acme/", "/status/acme/", "/status/acme/history/"]:
        response = client.get(url)
        assert response.status_code == 200, url
    assert "All Systems Operational" in client.get("/status/acme/").content.decode()
    assert outage_warnings(caplog) == 1


def test_subscribe_is_still_rate_limited_per_process(client, page):
    codes = [
        client.post("/status/acme/subscribe/", {"email": f"u{i}@example.com"}).status_code for i in range(7)
    ]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
    assert Subscriber.objects.count() == 5


def test_admin_component_edit_succeeds_and_the_page_shows_it(
    client, manager, page, api_component, django_capture_on_commit_callbacks
):
    assert "All Systems Operational" in client.get("/status/acme/").content.decode()
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=True):  # the invalidation after commit too
        response = post_component_change(client, api_component, status="major_outage")
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ComponentStatusChange.objects.get().new_status == "major_outage"
    client.logout()
    html = client.get("/status/acme/").content.decode()
    assert "All Systems Operational" not in html and "Major outage" in html


def test_incident_that_drives_the_page_is_recorded(
    page, api_component, service_a, make_integration, django_capture_on_commit_callbacks
):
    ComponentServiceLink.objects.create(component=api_component, service=service_a, mode="automatic")
    integration = make_integration(service_a, "generic")
    with django_capture_on_commit_callbacks(execute=True):
        incident = incident_services.alert_ingest(
            integration=integration, event=AlertEvent(summary="db-7 disk full", severity="SEV1")
        ).incident
    api_component.refresh_from_db()
    assert incident.pk and api_component.status == "major_outage"
