"""Route matching in local time: windows past midnight belong to the day they start."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from incidents.models import Incident
from oncall.escalation import route_matches, wait_until_next
from oncall.models import EscalationRoute


def _route(**kw) -> EscalationRoute:
    return EscalationRoute(name="r", timezone="Europe/Berlin", **kw)


def _incident(severity: str = "SEV3", priority: str = "P3", service_id: int = 1) -> Incident:
    return Incident(severity=severity, priority=priority, service_id=service_id)


@pytest.mark.parametrize("at,expected", [
    (datetime(2026, 3, 6, 17, 30, tzinfo=UTC), True),   # Fri 18:30 Berlin: Friday night
    (datetime(2026, 3, 7, 1, 0, tzinfo=UTC), True),     # Sat 02:00 Berlin: still Friday's night
    (datetime(2026, 3, 7, 17, 30, tzinfo=UTC), False),  # Sat 18:30: Saturday is not listed
    (datetime(2026, 3, 6, 12, 0, tzinfo=UTC), False),   # Fri 13:00: outside the window
    (datetime(2026, 3, 2, 7, 59, tzinfo=UTC), False),   # Mon 08:59: the end of Sunday's night
    (datetime(2026, 3, 3, 7, 59, tzinfo=UTC), True),    # Tue 08:59: the end of Monday's night
])
def test_night_window_on_weekdays(at, expected):
    route = _route(days=["mon", "tue", "wed", "thu", "fri"], start_time=time(18), end_time=time(9))
    assert route_matches(route, _incident(), at, set()) is expected


def test_severity_priority_and_service_conditions():
    at = datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert route_matches(_route(severities=["SEV1", "SEV2"]), _incident("SEV2"), at, set())
    assert not route_matches(_route(severities=["SEV1"]), _incident("SEV2"), at, set())
    assert not route_matches(_route(priorities=["P1"]), _incident(priority="P3"), at, set())
    assert route_matches(_route(), _incident(service_id=7), at, {7, 8})
    assert not route_matches(_route(), _incident(service_id=9), at, {7, 8})


def test_wait_until_the_next_weekday_morning():
    route = _route(wait_until=time(9))
    friday_night = datetime(2026, 3, 6, 21, tzinfo=UTC)  # Fri 22:00 Berlin
    assert wait_until_next(route, friday_night) == datetime(2026, 3, 9, 8, tzinfo=UTC)  # Mon 09:00 Berlin
    early = datetime(2026, 3, 3, 5, tzinfo=UTC)  # Tue 06:00 Berlin
    assert wait_until_next(route, early) == datetime(2026, 3, 3, 8, tzinfo=UTC)
