"""Incident metrics, computed in the database.

Definitions (also in the README):

- The incidents of a range are those TRIGGERED in it: ``from <= triggered_at < to``. An
  incident triggered in March and resolved in April counts in March, with its full
  resolution time.
- MTTA (time to acknowledge) of one incident = ``acknowledged_at - triggered_at``; only
  incidents that were acknowledged count (one resolved without an acknowledgement has no
  MTTA).
- MTTR (time to resolve) of one incident = ``resolved_at - triggered_at``; only resolved
  incidents count: incidents still open are counted (``open``) but have no MTTR yet.
- Mean and median are over those per-incident durations, in seconds. The median is
  PostgreSQL's ``PERCENTILE_CONT(0.5)`` (the mean of the two middle values for an even
  count); the SQLite fallback computes the same value with an ordered LIMIT/OFFSET query.
- A reopened incident starts over: reopening clears its acknowledged/resolved times.

All sums, counts and medians are SQL aggregates; Python only adds up the few grouped
rows (weeks x severities) and fills empty weeks for the charts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connections
from django.db.models import (
    Aggregate,
    Count,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import TruncWeek
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from incidents.models import Incident, Severity

PERIODS = {"week": 7, "month": 30, "quarter": 90}
MAX_RANGE = timedelta(days=3 * 366)
SEVERITIES = [s.value for s in Severity]


class Seconds(Func):
    """Seconds from the second expression to the first, as a float, NULL if either is."""

    arity = 2
    output_field = FloatField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))::double precision",
            arg_joiner=" - ", **extra,
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(
            compiler, connection, template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(", **extra,
        )


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate; NULL inputs are ignored."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, percentile: float = 0.5, **extra: Any) -> None:
        super().__init__(expression, percentile=float(percentile), **extra)


TTA = Seconds(F("acknowledged_at"), F("triggered_at"))
TTR = Seconds(F("resolved_at"), F("triggered_at"))


class MetricsInputError(ValueError):
    """A range or filter the caller must fix; the message says how."""


@dataclass(frozen=True)
class MetricsRange:
    start: datetime
    end: datetime
    period: str


def _parse_bound(value: str, name: str, *, is_end: bool) -> datetime:
    value = value.strip()
    try:
        # parse_datetime also accepts a bare date (as midnight), so try the date first.
        parsed_d = parse_date(value) if len(value) == 10 else None
        parsed_dt = None if parsed_d else parse_datetime(value)
    except ValueError:
        parsed_d = parsed_dt = None
    if parsed_dt is not None:
        return parsed_dt if timezone.is_aware(parsed_dt) else timezone.make_aware(parsed_dt)
    if parsed_d is None:
        raise MetricsInputError(
            f"{name!r} must be a date (YYYY-MM-DD) or an ISO 8601 date-time, not {value[:40]!r}."
        )
    # A date ``to`` is inclusive: the whole day counts.
    day = parsed_d + timedelta(days=1) if is_end else parsed_d
    return timezone.make_aware(datetime.combine(day, time.min))


def metrics_range(
    *, period: str = "", start: str = "", end: str = "", now: datetime | None = None
) -> MetricsRange:
    """``period`` week/month/quarter = the last 7/30/90 days up to now; ``custom`` (or
    any ``start``) = from ``start`` to ``end`` (default now). Default: month."""
    now = now or timezone.now()
    period = (period or ("custom" if start or end else "month")).strip().lower()
    if period in PERIODS:
        if start or end:
            raise MetricsInputError("Give either a period or from/to, not both.")
        return MetricsRange(now - timedelta(days=PERIODS[period]), now, period)
    if period != "custom":
        raise MetricsInputError(f"Unknown period {period[:20]!r}: use week, month, quarter or custom.")
    if not start:
        raise MetricsInputError("A custom range needs 'from'.")
    begin = _parse_bound(start, "from", is_end=False)
    finish = _parse_bound(end, "to", is_end=True) if end else now
    if finish <= begin:
        raise MetricsInputError("'to' must be after 'from'.")
    if finish - begin > MAX_RANGE:
        raise MetricsInputError("The range may span at most 3 years.")
    return MetricsRange(begin, finish, "custom")


def _median_sqlite(queryset: QuerySet[Incident], expr: Any, count: int) -> float | None:
    if not count:
        return None
    values = list(
        queryset.annotate(_d=expr).filter(_d__isnull=False).order_by("_d")
        .values_list("_d", flat=True)[(count - 1) // 2: count // 2 + 1]
    )
    return sum(values) / len(values) if values else None


def _medians(queryset: QuerySet[Incident], acked: int, resolved: int) -> tuple[float | None, float | None]:
    if connections[queryset.db].vendor == "postgresql":
        row = queryset.aggregate(mtta=PercentileCont(TTA), mttr=PercentileCont(TTR))
        return row["mtta"], row["mttr"]
    return _median_sqlite(queryset, TTA, acked), _median_sqlite(queryset, TTR, resolved)


def _mean(total: float | None, count: int) -> float | None:
    return round(total / count, 3) if count and total is not None else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


_SUMS = {
    "count": Count("pk"),
    "open": Count("pk", filter=~Q(status=Incident.Status.RESOLVED)),
    "acked": Count("acknowledged_at"),
    "resolved": Count("resolved_at"),
    "tta_sum": Sum(TTA),
    "ttr_sum": Sum(TTR),
}


def _group_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "count": row["count"],
        "open": row["open"],
        "mtta_mean": _mean(row["tta_sum"], row["acked"]),
        "mttr_mean": _mean(row["ttr_sum"], row["resolved"]),
    }


def _weeks(start: datetime, end: datetime) -> list[date]:
    local = timezone.localtime(start).date()
    week = local - timedelta(days=local.weekday())
    last = timezone.localtime(end - timedelta(microseconds=1)).date()
    weeks = []
    while week <= last:
        weeks.append(week)
        week += timedelta(days=7)
    return weeks


def metrics_compute(*, queryset: QuerySet[Incident], start: datetime, end: datetime) -> dict[str, Any]:
    """Metrics of the incidents of ``queryset`` (already scoped to the caller's teams and
    filters) triggered in ``[start, end)``. JSON-ready: times in seconds."""
    qs = queryset.filter(triggered_at__gte=start, triggered_at__lt=end).order_by()
    # One grouped query gives the weekly chart, the per-severity table and the totals.
    cells = list(
        qs.annotate(week=TruncWeek("triggered_at")).values("week", "severity").annotate(**_SUMS)
    )
    totals = {key: 0 for key in ("count", "open", "acked", "resolved")}
    tta_sum = ttr_sum = 0.0
    by_sev: dict[str, dict[str, Any]] = {}
    weekly: dict[date, dict[str, Any]] = {}
    for cell in cells:
        for key in totals:
            totals[key] += cell[key]
        tta_sum += cell["tta_sum"] or 0.0
        ttr_sum += cell["ttr_sum"] or 0.0
        for bucket in (by_sev.setdefault(cell["severity"], {}),
                       weekly.setdefault(_as_date(cell["week"]), {})):
            for key in ("count", "open", "acked", "resolved"):
                bucket[key] = bucket.get(key, 0) + cell[key]
            for key in ("tta_sum", "ttr_sum"):
                bucket[key] = (bucket.get(key) or 0.0) + (cell[key] or 0.0)
        weekly[_as_date(cell["week"])].setdefault("severity", {})[cell["severity"]] = cell["count"]
    mtta_median, mttr_median = _medians(qs, totals["acked"], totals["resolved"])
    by_service = (
        qs.values("service_id", "service__name").annotate(**_SUMS).order_by("-count", "service__name")
    )
    by_team = qs.values("team_id", "team__name").annotate(**_SUMS).order_by("-count", "team__name")
    empty = {"count": 0, "open": 0, "acked": 0, "resolved": 0, "tta_sum": None, "ttr_sum": None}
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "incidents": totals["count"],
        "open": totals["open"],
        "acknowledged": totals["acked"],
        "resolved": totals["resolved"],
        "mtta": {"mean": _mean(tta_sum, totals["acked"]), "median": _round(mtta_median),
                 "count": totals["acked"]},
        "mttr": {"mean": _mean(ttr_sum, totals["resolved"]), "median": _round(mttr_median),
                 "count": totals["resolved"]},
        "by_severity": [
            {"severity": sev, **_group_row(by_sev.get(sev, empty))} for sev in SEVERITIES
        ],
        "by_service": [
            {"service_id": row["service_id"], "service": row["service__name"], **_group_row(row)}
            for row in by_service
        ],
        "by_team": [
            {"team_id": row["team_id"], "team": row["team__name"], **_group_row(row)} for row in by_team
        ],
        "weekly": [
            {
                "week": week.isoformat(),
                "severity": {sev: weekly.get(week, {}).get("severity", {}).get(sev, 0) for sev in SEVERITIES},
                **_group_row(weekly.get(week, empty)),
            }
            for week in _weeks(start, end)
        ],
    }


def _as_date(value: datetime | date) -> date:
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


__all__ = ["MetricsInputError", "MetricsRange", "Seconds", "metrics_compute", "metrics_range"]
