"""Metrics against hand-computed values: incidents spanning months, still open,
resolved without acknowledgement, out of range, other teams."""

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from incidents.metrics import MetricsInputError, metrics_compute, metrics_range
from incidents.models import Incident, Service

_numbers = count(1)


def make(service, triggered, *, severity="SEV3", ack=None, resolve=None):
    status = "resolved" if resolve is not None else ("acknowledged" if ack is not None else "triggered")
    return Incident.objects.create(
        number=next(_numbers), team=service.team, service=service, title="t", dedup_key=f"k{next(_numbers)}",
        severity=severity, status=status, triggered_at=triggered,
        acknowledged_at=triggered + timedelta(seconds=ack) if ack is not None else None,
        resolved_at=triggered + timedelta(seconds=resolve) if resolve is not None else None,
    )


def at(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def march(service_a, service_b, team_a):
    ledger = Service.objects.create(team=team_a, name="ledger")
    make(service_a, at(2026, 3, 2, 10), severity="SEV1", ack=300, resolve=7200)
    # Triggered in March, resolved on 2 April: counts in March with its whole duration.
    make(service_a, at(2026, 3, 10), severity="SEV2", ack=900, resolve=23 * 86400)
    make(ledger, at(2026, 3, 31, 23, 59, 59), severity="SEV3", ack=60)  # still open
    make(service_a, at(2026, 3, 20), severity="SEV1", resolve=600)  # resolved, never acked
    make(service_a, at(2026, 2, 28, 23, 59), severity="SEV1", ack=10, resolve=120)  # February
    make(service_b, at(2026, 3, 5), severity="SEV4", ack=5, resolve=50)  # other team
    return ledger


def compute(qs, start="2026-03-01", end="2026-03-31"):
    rng = metrics_range(start=start, end=end)
    return metrics_compute(queryset=qs, start=rng.start, end=rng.end)


def test_team_metrics_match_hand_computed_values(march, team_a):
    m = compute(Incident.objects.filter(team=team_a))
    assert (m["incidents"], m["open"], m["acknowledged"], m["resolved"]) == (4, 1, 3, 3)
    # MTTA over [300, 900, 60]; MTTR over [7200, 1987200, 600].
    assert m["mtta"] == {"mean": pytest.approx(420, abs=0.01), "median": pytest.approx(300, abs=0.01),
                         "count": 3}
    assert m["mttr"] == {"mean": pytest.approx(665000, abs=0.01), "median": pytest.approx(7200, abs=0.01),
                         "count": 3}
    sev = {row["severity"]: row for row in m["by_severity"]}
    assert {k: v["count"] for k, v in sev.items()} == {"SEV1": 2, "SEV2": 1, "SEV3": 1, "SEV4": 0}
    assert sev["SEV1"]["mtta_mean"] == pytest.approx(300, abs=0.01)
    assert sev["SEV1"]["mttr_mean"] == pytest.approx(3900, abs=0.01)
    assert sev["SEV3"]["mttr_mean"] is None and sev["SEV3"]["open"] == 1
    assert [(r["service"], r["count"]) for r in m["by_service"]] == [("payments-api", 3), ("ledger", 1)]
    assert [(r["team"], r["count"]) for r in m["by_team"]] == [("Payments", 4)]


def test_weekly_buckets_cover_the_range_with_zero_weeks(march, team_a):
    m = compute(Incident.objects.filter(team=team_a))
    weeks = [w["week"] for w in m["weekly"]]
    # 1 March 2026 is a Sunday: its week starts Monday 23 February; 31 March is in the week of 30 March.
    assert weeks == ["2026-02-23", "2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23", "2026-03-30"]
    by_week = {w["week"]: w for w in m["weekly"]}
    assert by_week["2026-03-02"]["severity"] == {"SEV1": 1, "SEV2": 0, "SEV3": 0, "SEV4": 0}
    assert by_week["2026-03-02"]["mttr_mean"] == pytest.approx(7200, abs=0.01)
    assert by_week["2026-02-23"]["count"] == 0 and by_week["2026-02-23"]["mtta_mean"] is None
    assert by_week["2026-03-30"]["open"] == 1
    assert sum(w["count"] for w in m["weekly"]) == 4


def test_even_count_median_is_mean_of_middle_values(service_a):
    for seconds in (100, 200, 400, 1000):
        make(service_a, at(2026, 5, 4), ack=seconds, resolve=seconds * 2)
    m = compute(Incident.objects.all(), "2026-05-01", "2026-05-31")
    assert m["mtta"]["median"] == pytest.approx(300, abs=0.01)
    assert m["mttr"]["median"] == pytest.approx(600, abs=0.01)


def test_all_teams_and_empty_range(march):
    assert compute(Incident.objects.all())["incidents"] == 5
    empty = compute(Incident.objects.all(), "2025-01-01", "2025-01-31")
    assert empty["incidents"] == 0 and empty["mtta"] == {"mean": None, "median": None, "count": 0}
    assert all(w["count"] == 0 for w in empty["weekly"])


def test_periods_are_rolling_windows():
    now = at(2026, 6, 15, 12)
    assert metrics_range(period="week", now=now).start == now - timedelta(days=7)
    assert metrics_range(now=now).start == now - timedelta(days=30)
    assert metrics_range(period="quarter", now=now).end == now
    custom = metrics_range(start="2026-01-01T06:00:00+00:00", now=now)
    assert (custom.start, custom.end) == (at(2026, 1, 1, 6), now)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"period": "year"}, "Unknown period"),
        ({"period": "week", "start": "2026-01-01"}, "either a period"),
        ({"period": "custom"}, "needs 'from'"),
        ({"start": "yesterday"}, "'from' must be a date"),
        ({"start": "2026-02-30"}, "'from' must be a date"),
        ({"start": "2026-03-01", "end": "2026-02-01"}, "after 'from'"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, "at most 3 years"),
    ],
)
def test_bad_ranges_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(MetricsInputError, match=message):
        metrics_range(now=at(2026, 6, 1), **kwargs)


@pytest.mark.parametrize("zone, week", [("UTC", "2026-02-23"), ("Europe/Paris", "2026-03-02")])
def test_weeks_start_on_monday_in_the_current_time_zone(service_a, zone, week):
    from django.utils import timezone

    # Sunday 23:30 UTC is already Monday 00:30 in Paris.
    make(service_a, at(2026, 3, 1, 23, 30), ack=60)
    with timezone.override(zone):
        m = compute(Incident.objects.all(), "2026-02-20", "2026-03-10")
    counts = {w["week"]: w["count"] for w in m["weekly"] if w["count"]}
    assert counts == {week: 1}
