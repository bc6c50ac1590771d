"""The console's metrics page: charts without JavaScript, CSV, bad input, scoping."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.test import Client

from postmortems.charts import incidents_per_week_svg, mtta_mttr_trend_svg
from tests.metrics.test_metrics import make

RANGE = {"period": "custom", "start": "2026-03-01", "end": "2026-03-31"}


@pytest.fixture
def data(service_a, service_b):
    make(service_a, datetime(2026, 3, 2, tzinfo=UTC), severity="SEV1", ack=60, resolve=3600)
    make(service_a, datetime(2026, 3, 12, tzinfo=UTC), severity="SEV2", ack=180)
    make(service_b, datetime(2026, 3, 4, tzinfo=UTC), severity="SEV4", ack=5, resolve=10)


def page(user, **params):
    client = Client()
    client.force_login(user)
    return client.get("/admin/metrics/", params)


def test_page_shows_totals_and_svg_charts(data, responder):
    res = page(responder, **RANGE)
    html = res.content.decode()
    assert res.status_code == 200
    assert '<span class="n" id="kpi-incidents">2</span>' in html
    assert '<span class="n" id="kpi-mtta">2m 0s</span>' in html  # mean of 60 s and 180 s
    assert html.count("<svg") >= 2 and "Incidents per week by severity" in html
    assert "<script" not in html.split('id="content-main"')[1].split("</svg>")[0]
    assert "search-api" not in html  # other team's service


def test_csv_export(data, responder):
    res = page(responder, **RANGE, export="csv")
    assert res["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(res.content.decode())))
    total = next(r for r in rows if r[0] == "total")
    assert total[2:4] == ["2", "1"] and float(total[4]) == pytest.approx(120, abs=0.01)
    assert ["severity", "SEV1", "1", "0", "60.0", "3600.0"] in rows


@pytest.mark.parametrize(
    "params",
    [
        {"period": "custom", "start": "nonsense"},
        {"period": "custom", "start": "2026-03-05", "end": "2026-03-01"},
        {"period": "decade"},
    ],
)
def test_bad_input_is_400_with_message(data, responder, params):
    res = page(responder, **params)
    assert res.status_code == 400
    assert "errornote" in res.content.decode()


def test_other_teams_filter_is_refused(data, responder, team_b, service_b):
    assert page(responder, team=team_b.pk).status_code == 400
    assert page(responder, service=service_b.pk).status_code == 400


def test_anonymous_is_sent_to_login(client):
    res = client.get("/admin/metrics/")
    assert res.status_code == 302 and "/admin/login/" in res["Location"]


def test_charts_escape_and_handle_gaps():
    weekly = [
        {
            "week": "2026-03-02",
            "count": 3,
            "severity": {"SEV1": 1, "SEV2": 2},
            "mtta_mean": 60.0,
            "mttr_mean": None,
        },
        {"week": "2026-03-09", "count": 0, "severity": {}, "mtta_mean": None, "mttr_mean": None},
        {"week": "2026-03-16", "count": 1, "severity": {"SEV4": 1}, "mtta_mean": 120.0, "mttr_mean": 7200.0},
    ]
    bars = incidents_per_week_svg(weekly)
    assert bars.count("<rect") == 3 + 4  # three bar segments + four legend swatches
    trend = mtta_mttr_trend_svg(weekly)
    assert "hours" in trend and "<polyline" not in trend  # no two consecutive points: no line
    assert trend.count("<circle") == 3
