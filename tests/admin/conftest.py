"""Helpers for the console tests: incidents made by the real ingestion pipeline."""

from __future__ import annotations

import pytest


@pytest.fixture
def raise_alert(make_integration):
    """``raise_alert(service, summary, key=..., severity=...)`` -> the incident it opened or joined."""
    from incidents.events import AlertEvent
    from incidents.services import alert_ingest

    integrations: dict[int, object] = {}

    def send(service, summary: str, *, key: str = "", severity: str = "SEV3", action: str = "trigger",
             labels: dict | None = None):
        if service.pk not in integrations:
            integrations[service.pk] = make_integration(service, "generic")
        event = AlertEvent(summary=summary, dedup_key=key or summary, severity=severity, action=action,
                           labels=labels or {}, source="tests")
        return alert_ingest(integration=integrations[service.pk], event=event).incident

    return send


@pytest.fixture
def login(client):
    def do(user):
        client.force_login(user)
        return client

    return do
