"""Authentication, the router, the OpenAPI schema and the offline docs page."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

RESOURCES = ["teams", "services", "integrations", "triage-rules", "maintenance-windows", "incidents",
             "alerts"]


@pytest.mark.parametrize("resource", RESOURCES)
def test_unauthenticated_is_401_with_token_challenge(db, resource):
    response = APIClient().get(f"/api/v1/{resource}/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_bad_token_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/v1/incidents/")
    assert response.status_code == 401
    assert "Invalid token" in response.json()["detail"]


def test_token_made_by_drf_create_token_authenticates(responder, incident_a):
    out = io.StringIO()
    call_command("drf_create_token", responder.username, stdout=out)
    key = Token.objects.get(user=responder).key
    assert key in out.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/v1/incidents/")
    assert response.status_code == 200
    assert [row["ref"] for row in response.json()["results"]] == [incident_a.ref]


def test_session_login_also_works(client, responder, incident_a):
    client.force_login(responder)
    assert client.get(f"/api/v1/incidents/{incident_a.pk}/").json()["ref"] == incident_a.ref


def test_api_root_lists_every_resource(responder_api):
    response = responder_api.get("/api/v1/")
    assert response.status_code == 200
    assert set(RESOURCES) <= set(response.json())


def test_schema_is_served_and_describes_the_resources(db):
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for resource in RESOURCES:
        assert f"/api/v1/{resource}/" in paths
    for name in ["acknowledge", "resolve", "reopen", "mitigate", "escalate", "notes"]:
        assert "post" in paths[f"/api/v1/incidents/{{id}}/{name}/"]
    assert "get" in paths["/api/v1/incidents/{id}/timeline/"]
    assert "put" not in paths["/api/v1/incidents/{id}/"]
    assert "delete" not in paths["/api/v1/incidents/{id}/"]
    declare = paths["/api/v1/incidents/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert declare == {"$ref": "#/components/schemas/IncidentDeclare"}
    params = {p["name"] for p in paths["/api/v1/incidents/"]["get"]["parameters"]}
    assert {"status", "severity", "priority", "service", "team", "dedup_key", "triggered_after",
            "triggered_before", "search", "ordering"} <= params
    incident = schema["components"]["schemas"]["Incident"]["properties"]
    assert {"ref", "acknowledged_by", "commander", "responders", "in_maintenance"} <= set(incident)
    assert schema["components"]["schemas"]["Integration"]["properties"]["token"]["readOnly"] is True


def test_schema_validates_without_warnings(db):
    # --fail-on-warn turns every schema warning (unknown types, enum clashes) into an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_docs_page_uses_only_local_assets(client, db, settings):
    settings.WHITENOISE_USE_FINDERS = True  # serve app static files without collectstatic
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assets = [ref for ref in refs if ref.endswith((".js", ".css", ".png"))]
    assert assets, html
    assert not [ref for ref in refs if ref.startswith(("http:", "https:", "//"))], refs
    assert any("swagger-ui-bundle.js" in ref for ref in assets)
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/"), asset
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert b"".join(served.streaming_content if served.streaming else [served.content])
