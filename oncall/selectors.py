"""Reads: load schedules into the engine's plain data (a fixed number of queries for
any number of schedules) and answer who is on call."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from ircore import permissions
from ircore.models import TeamMembership
from oncall import schedule_engine as engine
from oncall.models import Override, Rotation, RotationMember, Schedule, parse_hhmm

# Restrictions hold a handful of distinct times; parse each once.
_parse_hhmm = lru_cache(maxsize=2048)(parse_hhmm)
_WEEKDAY_INDEX = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def restrictions_to_windows(restrictions: list[dict]) -> tuple[engine.Window, ...]:
    if not restrictions:
        return ()
    # Many layers share the same few restriction sets (templates): build each set once.
    return _windows(tuple((tuple(item["days"]), item["start"], item["end"]) for item in restrictions))


@lru_cache(maxsize=1024)
def _windows(items: tuple[tuple[tuple[str, ...], str, str], ...]) -> tuple[engine.Window, ...]:
    return tuple(
        engine.Window(_WEEKDAY_INDEX[day], _parse_hhmm(start), _parse_hhmm(end))
        for days, start, end in items
        for day in days
    )


def member_periods(rows: Iterable[RotationMember]) -> tuple[engine.MemberPeriod, ...]:
    """Turn versioned member rows (models or rows with the same attribute names) into
    consecutive periods with the ordered list in force."""
    rows = list(rows)
    if all(r.effective_from is None and r.effective_until is None for r in rows):
        # The common case: a list that never changed.
        ordered = sorted(rows, key=lambda r: (r.position, r.id))
        return (engine.MemberPeriod(tuple(r.user_id for r in ordered)),) if rows else ()
    cuts = sorted(
        {r.effective_from for r in rows if r.effective_from is not None}
        | {r.effective_until for r in rows if r.effective_until is not None}
    )
    bounds: list[datetime | None] = [None, *cuts, None]
    periods: list[engine.MemberPeriod] = []
    for start, end in zip(bounds, bounds[1:], strict=False):

        def active(r: RotationMember, start: datetime | None = start) -> bool:
            began = r.effective_from is None or (start is not None and r.effective_from <= start)
            ongoing = r.effective_until is None or start is None or r.effective_until > start
            return began and ongoing

        in_force = sorted((r for r in rows if active(r)), key=lambda r: (r.position, r.id))
        users = tuple(r.user_id for r in in_force)
        if periods and periods[-1].user_ids == users:
            periods[-1] = engine.MemberPeriod(users, periods[-1].start, end)
        else:
            periods.append(engine.MemberPeriod(users, start, end))
    return tuple(p for p in periods if p.user_ids)


def rotation_to_layer(rotation: Rotation, members: Iterable[RotationMember]) -> engine.Layer:
    """``rotation``: a model or a row with the same attribute names."""
    return engine.Layer(
        id=rotation.id,
        priority=rotation.priority,
        name=rotation.name,
        anchor=datetime.combine(rotation.handoff_date, rotation.handoff_time),
        shift_amount=rotation.shift_amount,
        shift_unit=rotation.shift_unit,
        members=member_periods(members),
        windows=restrictions_to_windows(rotation.restrictions),
        timezone=rotation.timezone or None,
    )


_ROTATION_FIELDS = (
    "id",
    "schedule_id",
    "name",
    "priority",
    "shift_amount",
    "shift_unit",
    "handoff_date",
    "handoff_time",
    "timezone",
    "restrictions",
)
_MEMBER_FIELDS = ("id", "rotation_id", "user_id", "position", "effective_from", "effective_until")


def schedule_specs(
    *,
    schedules: Iterable[Schedule] | QuerySet[Schedule],
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[engine.ScheduleSpec]:
    """Engine specs for ``schedules`` in three queries (rotations, members, overrides).
    Only overrides overlapping [start, end) are loaded when a span is given."""
    schedules = list(schedules)
    ids = [s.pk for s in schedules]
    # Plain rows, not model instances: building 10,000s of models dominates otherwise.
    rotations: dict[int, list] = defaultdict(list)
    for rotation in Rotation.objects.filter(schedule_id__in=ids).values_list(*_ROTATION_FIELDS, named=True):
        rotations[rotation.schedule_id].append(rotation)
    members: dict[int, list] = defaultdict(list)
    for row in RotationMember.objects.filter(rotation__schedule_id__in=ids).values_list(
        *_MEMBER_FIELDS, named=True
    ):
        members[row.rotation_id].append(row)
    overrides: dict[int, list[engine.OverrideSpec]] = defaultdict(list)
    qs = Override.objects.filter(schedule_id__in=ids)
    if start is not None:
        qs = qs.filter(end__gt=start)
    if end is not None:
        qs = qs.filter(start__lt=end)
    for o in qs.values_list("id", "schedule_id", "start", "end", "kind", "user_id", "replaced_user_id"):
        overrides[o[1]].append(engine.OverrideSpec(o[0], o[2], o[3], o[4], o[5], o[6]))
    return [
        engine.ScheduleSpec(
            id=s.pk,
            name=s.name,
            timezone=s.timezone,
            layers=tuple(rotation_to_layer(r, members[r.id]) for r in rotations[s.pk]),
            overrides=tuple(overrides[s.pk]),
        )
        for s in schedules
    ]


def schedule_spec(
    *, schedule: Schedule, start: datetime | None = None, end: datetime | None = None
) -> engine.ScheduleSpec:
    return schedule_specs(schedules=[schedule], start=start, end=end)[0]


def schedule_oncall_at(*, schedule: Schedule, at: datetime) -> tuple[engine.OnCall, ...]:
    spec = schedule_spec(schedule=schedule, start=at, end=at + timedelta(microseconds=1))
    return engine.oncall_at(spec, at)


def schedule_shifts(
    *, schedule: Schedule, start: datetime, end: datetime, include_gaps: bool = True
) -> list[engine.Shift]:
    spec = schedule_spec(schedule=schedule, start=start, end=end)
    return engine.final_schedule(spec, start, end, include_gaps=include_gaps)


@dataclass(frozen=True)
class ScheduleNow:
    schedule: Schedule
    oncall: tuple[engine.OnCall, ...]
    next_handoff: datetime | None


def schedules_oncall_at(
    *, schedules: Iterable[Schedule] | QuerySet[Schedule], at: datetime, with_next_handoff: bool = False
) -> list[ScheduleNow]:
    """Who is on call at ``at`` in each schedule (fixed number of queries)."""
    schedules = list(schedules)
    horizon = timedelta(days=60)
    specs = schedule_specs(
        schedules=schedules,
        start=at,
        end=at + horizon if with_next_handoff else at + timedelta(microseconds=1),
    )
    return [
        ScheduleNow(
            schedule,
            engine.oncall_at(spec, at),
            engine.next_handoff(spec, at, horizon=horizon) if with_next_handoff else None,
        )
        for schedule, spec in zip(schedules, specs, strict=True)
    ]


def schedules_of_user(
    *, user_id: int, start: datetime, schedules: QuerySet[Schedule] | None = None
) -> list[Schedule]:
    """Schedules where the person can appear: rotation member (any period) or in an
    override ending after ``start``."""
    if schedules is None:
        schedules = Schedule.objects.all()
    ids = set(RotationMember.objects.filter(user_id=user_id).values_list("rotation__schedule_id", flat=True))
    ids |= set(
        Override.objects.filter(Q(user_id=user_id) | Q(replaced_user_id=user_id), end__gt=start).values_list(
            "schedule_id", flat=True
        )
    )
    return list(schedules.filter(pk__in=ids).select_related("team"))


def user_shifts(
    *,
    user_id: int,
    start: datetime,
    end: datetime,
    schedules: QuerySet[Schedule] | None = None,
    merge: bool = False,
) -> list[engine.Shift]:
    """A person's final shifts across their schedules, sorted by start; ``schedule_id``
    says where. ``merge`` joins back-to-back shifts in the same schedule that come from
    different layers or overrides (what a person cares about: "on call until ...")."""
    found = schedules_of_user(user_id=user_id, start=start, schedules=schedules)
    shifts: list[engine.Shift] = []
    for spec in schedule_specs(schedules=found, start=start, end=end):
        mine = [
            s for s in engine.final_schedule(spec, start, end, include_gaps=False) if s.user_id == user_id
        ]
        if merge:
            joined: list[engine.Shift] = []
            for shift in mine:
                if joined and joined[-1].end == shift.start:
                    joined[-1] = replace(joined[-1], end=shift.end)
                else:
                    joined.append(shift)
            mine = joined
        shifts.extend(mine)
    shifts.sort(key=lambda s: (s.start, s.schedule_id or 0))
    return shifts


def users_by_id(ids: Iterable[int | None]) -> dict[int, object]:
    wanted = {i for i in ids if i is not None}
    return {u.pk: u for u in get_user_model().objects.filter(pk__in=wanted)} if wanted else {}


def people_scope(queryset: QuerySet, user: Any) -> QuerySet:
    """Contact methods and notification rules: your own; managers also see their teams'
    members'. Used by the admin and the API."""
    if permissions.sees_all_teams(user):
        return queryset
    managed = permissions.managed_team_ids(user) or set()
    members = TeamMembership.objects.filter(team_id__in=managed).values("user_id")
    return queryset.filter(Q(user=user) | Q(user__in=members))
