import pytest

from incidents import services
from incidents.events import AlertEvent


@pytest.fixture
def resolved_incident(service_a, make_integration, responder, django_capture_on_commit_callbacks):
    """A SEV2 incident with a full story: triggered, acknowledged, note, mitigated, resolved."""
    integration = make_integration(service_a)
    with django_capture_on_commit_callbacks(execute=True):
        incident = services.alert_ingest(
            integration=integration,
            event=AlertEvent(summary="Checkout errors > 5%", dedup_key="checkout", severity="SEV2"),
        ).incident
        again = AlertEvent(summary="again", dedup_key="checkout")
        services.alert_ingest(integration=integration, event=again)
        services.incident_acknowledge(incident=incident, user=responder, via="web")
        services.incident_add_note(incident=incident, user=responder, text="Rolled back deploy 42", via="web")
        services.incident_mitigate(incident=incident, user=responder, via="web")
        services.incident_resolve(incident=incident, user=responder, via="web")
    incident.refresh_from_db()
    return incident


@pytest.fixture
def make_resolved(service_a, make_integration, django_capture_on_commit_callbacks):
    def make(service=None, severity="SEV1", summary="boom", resolve=True):
        integration = make_integration(service or service_a)
        with django_capture_on_commit_callbacks(execute=True):
            incident = services.alert_ingest(
                integration=integration, event=AlertEvent(summary=summary, severity=severity)
            ).incident
            if resolve:
                services.incident_resolve(incident=incident, user=None, via="web")
        incident.refresh_from_db()
        return incident

    return make


@pytest.fixture
def api():
    from rest_framework.test import APIClient

    def client_for(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return client_for
