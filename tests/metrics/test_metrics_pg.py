"""The PostgreSQL path of the metrics: medians with PERCENTILE_CONT in the database,
same figures as the hand-computed ones (and as the SQLite fallback in test_metrics)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.models import Incident
from tests.metrics.test_metrics import compute, march  # noqa: F401 - fixture

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_median_uses_percentile_cont_and_matches_hand_computed(march, team_a):  # noqa: F811
    with CaptureQueriesContext(connection) as queries:
        m = compute(Incident.objects.filter(team=team_a))
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "PERCENTILE_CONT(0.5) WITHIN GROUP" in sql
    assert m["mtta"]["median"] == pytest.approx(300, abs=0.01)
    assert m["mttr"]["median"] == pytest.approx(7200, abs=0.01)
    assert m["mttr"]["mean"] == pytest.approx(665000, abs=0.01)
    assert len(queries.captured_queries) == 4  # one grouped scan, medians, service and team names


def test_outside_a_transaction_the_medians_run_on_a_second_connection(transactional_db, march, team_a):  # noqa: F811
    with CaptureQueriesContext(connection) as queries:
        m = compute(Incident.objects.filter(team=team_a))
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "PERCENTILE_CONT" not in sql and len(queries.captured_queries) == 3
    assert (m["mtta"]["median"], m["mttr"]["median"]) == (
        pytest.approx(300, abs=0.01),
        pytest.approx(7200, abs=0.01),
    )
    assert m["incidents"] == 4 and m["open"] == 1
