"""A page served at the root of its own host name (STATUSPAGE_HOSTS)."""

import pytest
from django.test import Client


@pytest.fixture
def status_host(settings):
    settings.STATUSPAGE_HOSTS = ["status.example.com=acme", "broken-entry"]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "status.example.com"]
    return Client(HTTP_HOST="status.example.com")


def test_root_of_the_status_host_is_the_page(status_host, page, api_component):
    response = status_host.get("/")
    assert response.status_code == 200 and "Acme Status" in response.content.decode()
    assert status_host.get("/api/v2/status.json").json()["page"]["id"] == "acme"
    assert status_host.get("/feed.atom").status_code == 200
    # Links on the page keep their /status/<slug>/ form and work on this host too.
    assert status_host.get("/status/acme/history/").status_code == 200


def test_other_hosts_are_unchanged(status_host, client, page):
    assert client.get("/").status_code == 302  # the console's redirect
    assert status_host.get("/admin/").status_code == 404  # no console on the status host
