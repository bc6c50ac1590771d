"""API test helpers: a token-authenticated client per persona and incidents opened the
way production opens them (alert_ingest)."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from incidents import services
from incidents.events import AlertEvent


def _client_for(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    client.user = user
    return client


@pytest.fixture
def api_as():
    return _client_for


@pytest.fixture
def responder_api(responder):
    return _client_for(responder)


@pytest.fixture
def manager_api(manager):
    return _client_for(manager)


@pytest.fixture
def outsider_api(outsider):
    return _client_for(outsider)


@pytest.fixture
def admin_api(admin_user):
    return _client_for(admin_user)


@pytest.fixture
def integration_a(service_a, make_integration):
    return make_integration(service_a, "generic")


@pytest.fixture
def integration_b(service_b, make_integration):
    return make_integration(service_b, "generic")


@pytest.fixture
def open_incident():
    """``open_incident(integration, **event fields)`` -> Incident (new or grouped)."""

    def make(integration, **kw):
        kw.setdefault("summary", "checkout is failing")
        return services.alert_ingest(integration=integration, event=AlertEvent(**kw)).incident

    return make


@pytest.fixture
def incident_a(integration_a, open_incident):
    return open_incident(integration_a, dedup_key="a-1", summary="payments-api 500s", severity="SEV2")


@pytest.fixture
def incident_b(integration_b, open_incident):
    return open_incident(integration_b, dedup_key="b-1", summary="search index stale")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Personas are created with passwords in every test; PBKDF2 would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
