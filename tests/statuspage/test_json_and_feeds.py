"""Statuspage v2 compatible JSON (checked against JSON schemas) and the Atom/RSS feeds."""

import json
from datetime import timedelta
from pathlib import Path

import feedparser
import jsonschema
import pytest
from django.utils import timezone

from statuspage import services

SCHEMAS = Path(__file__).parent / "schemas"


def schema(name):
    return json.loads((SCHEMAS / name).read_text())


@pytest.fixture
def busy_page(page, group, api_component, web_component):
    incident = services.public_incident_create(
        page=page,
        name="API errors",
        body="Looking.",
        impact="major",
        component_statuses={api_component.pk: "partial_outage"},
    )
    services.public_incident_post_update(incident=incident, status="monitoring", body="Fixed, watching.")
    old = services.public_incident_create(page=page, name="Old one", body="x", impact="minor")
    services.public_incident_post_update(incident=old, status="resolved", body="Done.")
    start = timezone.now() + timedelta(days=2)
    services.maintenance_create(
        page=page,
        name="Upgrade",
        body="Planned.",
        scheduled_for=start,
        scheduled_until=start + timedelta(hours=1),
        component_ids=[web_component.pk],
    )
    now = timezone.now() - timedelta(minutes=5)
    active = services.maintenance_create(
        page=page,
        name="Network work",
        body="Planned.",
        scheduled_for=now,
        scheduled_until=now + timedelta(hours=1),
    )
    services.maintenance_post_update(maintenance=active, status="in_progress", body="Started.")
    return page


@pytest.mark.parametrize(
    ("path", "schema_name", "key", "count"),
    [
        ("summary.json", "summary.json", "incidents", 1),
        ("status.json", "status.json", None, None),
        ("components.json", "components.json", "components", 3),
        ("incidents.json", "incidents.json", "incidents", 2),
        ("incidents/unresolved.json", "incidents.json", "incidents", 1),
        ("scheduled-maintenances.json", "scheduled-maintenances.json", "scheduled_maintenances", 2),
        ("scheduled-maintenances/upcoming.json", "scheduled-maintenances.json", "scheduled_maintenances", 1),
        ("scheduled-maintenances/active.json", "scheduled-maintenances.json", "scheduled_maintenances", 1),
    ],
)
def test_v2_endpoints_match_schema(client, busy_page, path, schema_name, key, count):
    response = client.get(f"/status/acme/api/v2/{path}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"
    data = response.json()
    jsonschema.validate(data, schema(schema_name))
    if key:
        assert len(data[key]) == count


def test_summary_content(client, busy_page, group, api_component):
    data = client.get("/status/acme/api/v2/summary.json").json()
    assert data["page"]["id"] == "acme" and data["page"]["time_zone"] == "Europe/Berlin"
    assert data["status"] == {"indicator": "major", "description": "Partial System Outage"}
    group_json = next(c for c in data["components"] if c["group"])
    assert group_json["components"] == [str(api_component.pk)]
    assert group_json["status"] == "partial_outage"
    member = next(c for c in data["components"] if c["id"] == str(api_component.pk))
    assert member["group_id"] == group_json["id"]
    (incident,) = data["incidents"]
    assert [u["status"] for u in incident["incident_updates"]] == ["monitoring", "investigating"]
    assert incident["monitoring_at"] is not None
    assert {m["name"] for m in data["scheduled_maintenances"]} == {"Upgrade", "Network work"}


def test_schema_rejects_wrong_values(client, busy_page):
    """The schemas are strict enough to catch a wrong value set."""
    data = client.get("/status/acme/api/v2/status.json").json()
    data["status"]["indicator"] = "red"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema("status.json"))


def test_json_conditional_get(client, busy_page):
    first = client.get("/status/acme/api/v2/summary.json")
    assert client.get("/status/acme/api/v2/summary.json", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304


def test_atom_and_rss_parse(client, busy_page):
    for path, version in (("feed.atom", "atom10"), ("feed.rss", "rss20")):
        response = client.get(f"/status/acme/{path}")
        assert response.status_code == 200
        feed = feedparser.parse(response.content)
        assert not feed.bozo, feed.get("bozo_exception")
        assert feed.version == version
        titles = {e.title for e in feed.entries}
        assert {"API errors", "Old one", "Upgrade", "Network work"} <= titles
        entry = next(e for e in feed.entries if e.title == "API errors")
        assert "Fixed, watching." in entry.summary
        assert entry.link.startswith("http") and "/status/acme/incidents/" in entry.link


def test_draft_not_in_json_or_feeds(client, page):
    services.public_incident_create(page=page, name="Hidden draft", body="x", published=False)
    assert "Hidden draft" not in client.get("/status/acme/api/v2/incidents.json").content.decode()
    assert "Hidden draft" not in client.get("/status/acme/feed.atom").content.decode()
