"""The API refuses text no database column can hold (NUL characters, unpaired
surrogates) with a 400 naming where it is; a JSON field used to pass it to PostgreSQL,
which answered 500."""

from __future__ import annotations

import pytest

from incidents.models import Service, TriageRule

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("body", "where"), [
    ('{"team": %d, "name": "r", "set_severity": "SEV1", "match_labels": {"env": "prod\\u0000"}}',
     "match_labels.env"),
    ('{"team": %d, "name": "r", "set_severity": "SEV1", "match_labels": {"e\\u0000nv": "prod"}}',
     "match_labels.e\ufffdnv"),
    ('{"team": %d, "name": "r\\ud800", "set_severity": "SEV1"}', "name"),
    ('{"team": %d, "name": "r", "set_severity": "SEV1", "match_labels": {"list": ["ok", "\\udc00"]}}',
     "match_labels.list[1]"),
])
def test_unstorable_text_is_a_400_naming_where(manager_api, team_a, body, where):
    response = manager_api.post("/api/v1/triage-rules/", body % team_a.pk, content_type="application/json")
    assert response.status_code == 400, response.content
    assert f"{where} contains a NUL character" in response.json()["detail"]
    assert not TriageRule.objects.exists()


def test_text_that_can_be_stored_still_passes(manager_api, team_a):
    body = ('{"team": TEAM, "name": "caf\\u00e9 \\ud83d\\ude00", "set_severity": "SEV1", '
            '"match_labels": {"env": "pr\\u00f6d"}}').replace("TEAM", str(team_a.pk))
    response = manager_api.post("/api/v1/triage-rules/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    rule = TriageRule.objects.get()
    assert (rule.name, rule.match_labels) == ("café \U0001F600", {"env": "pröd"})


def test_a_service_name_with_nul_is_a_400(manager_api, team_a):
    body = '{"team": TEAM, "name": "a\\u0000b"}'.replace("TEAM", str(team_a.pk))
    response = manager_api.post("/api/v1/services/", body, content_type="application/json")
    assert response.status_code == 400 and not Service.objects.exists()
