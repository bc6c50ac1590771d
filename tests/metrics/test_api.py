"""GET /api/v1/metrics/: scoping, filters and 400s."""

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from incidents.models import Service
from tests.metrics.test_metrics import make


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def data(service_a, service_b, team_a):
    ledger = Service.objects.create(team=team_a, name="ledger")
    make(service_a, datetime(2026, 3, 2, tzinfo=UTC), ack=60, resolve=600)
    make(ledger, datetime(2026, 3, 3, tzinfo=UTC), ack=120)
    make(service_b, datetime(2026, 3, 4, tzinfo=UTC), ack=5, resolve=10)
    return ledger


def get(user, **params):
    return client_for(user).get("/api/v1/metrics/", params)


def test_scoped_to_callers_teams(data, responder, admin_user, team_a, outsider):
    res = get(responder, **{"from": "2026-03-01", "to": "2026-03-31"})
    assert res.status_code == 200
    assert res.data["incidents"] == 2 and res.data["mtta"]["mean"] == pytest.approx(90, abs=0.01)
    assert res.data["period"] == "custom"
    assert get(outsider, **{"from": "2026-03-01", "to": "2026-03-31"}).data["incidents"] == 1
    assert get(admin_user, **{"from": "2026-03-01"}).data["incidents"] == 3


def test_team_and_service_filters(data, responder, team_a):
    res = get(responder, **{"from": "2026-03-01", "to": "2026-03-31", "service": data.pk})
    assert res.data["incidents"] == 1 and res.data["filters"] == {"team": None, "service": data.pk}
    assert res.data["mttr"]["count"] == 0
    res = get(responder, **{"from": "2026-03-01", "to": "2026-03-31", "team": team_a.pk})
    assert res.data["incidents"] == 2


@pytest.mark.parametrize(
    "params, key",
    [
        ({"from": "yesterday"}, "detail"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "detail"),
        ({"period": "year"}, "period"),
        ({"team": "abc"}, "team"),
        ({"service": "-1"}, "service"),
    ],
)
def test_bad_input_is_400(data, responder, params, key):
    res = get(responder, **params)
    assert res.status_code == 400 and key in res.data, res.data


def test_other_teams_ids_look_unknown(data, responder, team_b, service_b):
    res = get(responder, team=team_b.pk)
    assert res.status_code == 400 and res.data["team"] == [f"No team with id {team_b.pk}."]
    assert get(responder, service=service_b.pk).status_code == 400


def test_requires_authentication(client):
    assert client.get("/api/v1/metrics/").status_code in (401, 403)
