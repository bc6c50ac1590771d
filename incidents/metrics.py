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
rows (weeks x severities x services) and fills empty weeks for the charts.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connections
from django.db.models import (
    Aggregate,
    Count,
    DateField,
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

from incidents.models import Incident, Service, Severity
from ircore.models import Team

PERIODS = {"week": 7, "month": 30, "quarter": 90}
MAX_RANGE = timedelta(days=3 * 366)
SEVERITIES = [s.value for s in Severity]


class Seconds(Func):
    """Seconds from the second expression to the first, as a float, NULL if either is."""

    arity = 2
    output_field = FloatField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # date_part is double precision; EXTRACT is numeric since PostgreSQL 14, which
        # makes the sums and the median sort several times slower.
        return super().as_sql(
            compiler, connection, template="date_part('epoch', %(expressions)s)",
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


class SqliteWeekStart(Func):
    """Monday of the (UTC) week, in SQLite's own date functions. Django's TruncWeek on
    SQLite calls a Python function per row, which is most of the time of a year's
    metrics; used only when the current time zone is UTC (SQLite has no named zones)."""

    arity = 1
    output_field = DateField()
    template = "date(%(expressions)s, '-6 days', 'weekday 1')"


def _week(connection: Any) -> Func:
    if connection.vendor == "sqlite" and timezone.get_current_timezone_name() == "UTC":
        return SqliteWeekStart(F("triggered_at"))
    return TruncWeek("triggered_at", output_field=DateField())


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


def _pg_medians(queryset: QuerySet[Incident]) -> tuple[float | None, float | None]:
    row = queryset.aggregate(mtta=PercentileCont(TTA), mttr=PercentileCont(TTR))
    return row["mtta"], row["mttr"]


def _pg_medians_in_thread(queryset: QuerySet[Incident]) -> Future:
    """The medians sort every incident of the range (two PERCENTILE_CONTs) while the
    grouped query hashes them: on their own connection both run at once, on two cores.
    Only outside a transaction: another connection would not see uncommitted rows."""

    def run() -> tuple[float | None, float | None]:
        try:
            return _pg_medians(queryset)
        finally:
            connections.close_all()  # this thread's connections only

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-median")
    future = executor.submit(run)
    executor.shutdown(wait=False)
    return future


def _medians(
    queryset: QuerySet[Incident], acked: int, resolved: int, pending: Future | None = None
) -> tuple[float | None, float | None]:
    if pending is not None:
        return pending.result()
    if connections[queryset.db].vendor == "postgresql":
        return _pg_medians(queryset)
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


_COUNTS = ("count", "open", "acked", "resolved")
_FIELDS = (*_COUNTS, "tta_sum", "ttr_sum")


def _add(bucket: list[Any], values: tuple[Any, ...]) -> None:
    """Add one grouped row's counts and sums into a bucket (a list, in _FIELDS order);
    sums stay None until a non-null one arrives, as SQL's SUM does."""
    for i, value in enumerate(values):
        if value is not None:
            bucket[i] = value if bucket[i] is None else bucket[i] + value


def _new_bucket() -> list[Any]:
    return [0, 0, 0, 0, None, None]


def _bucket_dict(bucket: list[Any] | None) -> dict[str, Any]:
    return dict(zip(_FIELDS, bucket or _new_bucket(), strict=True))


def metrics_compute(*, queryset: QuerySet[Incident], start: datetime, end: datetime) -> dict[str, Any]:
    """Metrics of the incidents of ``queryset`` (already scoped to the caller's teams and
    filters) triggered in ``[start, end)``. JSON-ready: times in seconds."""
    qs = queryset.filter(triggered_at__gte=start, triggered_at__lt=end).order_by()
    # One scan, grouped by week x severity x service: at most a few thousand rows from
    # which the totals, the weekly chart and the per-severity/service/team tables are
    # summed up. Three separate GROUP BYs would read the incidents three times.
    connection = connections[qs.db]
    pending = (
        _pg_medians_in_thread(qs)
        if connection.vendor == "postgresql" and not connection.in_atomic_block
        else None
    )
    cells = (
        qs.annotate(week=_week(connection))
        .values("week", "severity", "service_id", "team_id")
        .annotate(**_SUMS)
        .values_list("week", "severity", "service_id", "team_id", *_FIELDS)
    )
    # Two levels of roll-up keep the Python side small: cells -> (week, severity) and
    # service; then those few hundred rows -> weeks, severities, teams and the total.
    by_week_sev: dict[tuple[date, str], list[Any]] = {}
    by_service: dict[int, list[Any]] = {}
    team_of: dict[int, int] = {}
    for week, severity, service_id, team_id, *values in cells:
        for groups, key in ((by_week_sev, (week, severity)), (by_service, service_id)):
            bucket = groups.get(key)
            if bucket is None:
                bucket = groups[key] = _new_bucket()
            _add(bucket, values)
        team_of[service_id] = team_id
    totals = _new_bucket()
    by_sev: dict[str, list[Any]] = {}
    weekly: dict[date, list[Any]] = {}
    for (week, severity), values in by_week_sev.items():
        _add(by_sev.setdefault(severity, _new_bucket()), values)
        _add(weekly.setdefault(week, _new_bucket()), values)
        _add(totals, values)
    by_team: dict[int, list[Any]] = {}
    for service_id, values in by_service.items():
        _add(by_team.setdefault(team_of[service_id], _new_bucket()), values)
    totals = _bucket_dict(totals)
    mtta_median, mttr_median = _medians(qs, totals["acked"], totals["resolved"], pending)
    names = {
        "service": dict(Service.objects.filter(pk__in=list(by_service)).order_by().values_list("pk", "name")),
        "team": dict(Team.objects.filter(pk__in=list(by_team)).order_by().values_list("pk", "name")),
    }

    def table(groups: dict[int, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
        rows = [{f"{kind}_id": pk, kind: names[kind].get(pk, ""), **_group_row(_bucket_dict(group))}
                for pk, group in groups.items()]
        return sorted(rows, key=lambda row: (-row["count"], row[kind]))

    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "incidents": totals["count"],
        "open": totals["open"],
        "acknowledged": totals["acked"],
        "resolved": totals["resolved"],
        "mtta": {"mean": _mean(totals["tta_sum"], totals["acked"]), "median": _round(mtta_median),
                 "count": totals["acked"]},
        "mttr": {"mean": _mean(totals["ttr_sum"], totals["resolved"]), "median": _round(mttr_median),
                 "count": totals["resolved"]},
        "by_severity": [
            {"severity": sev, **_group_row(_bucket_dict(by_sev.get(sev)))} for sev in SEVERITIES
        ],
        "by_service": table(by_service, "service"),
        "by_team": table(by_team, "team"),
        "weekly": [
            {
                "week": week.isoformat(),
                "severity": {sev: (by_week_sev.get((week, sev)) or [0])[0] for sev in SEVERITIES},
                **_group_row(_bucket_dict(weekly.get(week))),
            }
            for week in _weeks(start, end)
        ],
    }


__all__ = ["MetricsInputError", "MetricsRange", "Seconds", "metrics_compute", "metrics_range"]
