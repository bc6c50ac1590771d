#!/usr/bin/env python
"""On-call schedule speed (issue 3 targets), standalone:

    .venv/bin/python bench/schedules.py [--schedules 1000] [--repeat 5]

1. "Who is on call now" for a 3-layer schedule with 50 overrides (pure engine): mean
   per call over many random instants. Target < 1 ms.
2. The 90-day final schedule of the same schedule (pure engine). Target < 20 ms.
3. Who is on call across N schedules (3 layers, 4 members, 50 overrides each) from the
   database, queries included (``oncall.selectors.schedules_oncall_at``). Target < 1 s
   for 1,000.

Uses a throwaway SQLite file unless DATABASE_URL is set (it must then be a scratch
PostgreSQL database: the script migrates it and fills it). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_NOW_MS, TARGET_90D_MS, TARGET_MANY_S = 1.0, 20.0, 1.0
NOW = datetime(2024, 3, 27, 10, tzinfo=UTC)


def engine_spec():
    from oncall.schedule_engine import Layer, MemberPeriod, OverrideSpec, ScheduleSpec, Window

    rng = random.Random(3)
    business = tuple(
        Window(d, datetime.min.time().replace(hour=9), datetime.min.time().replace(hour=17)) for d in range(5)
    )
    layers = (
        Layer(1, 3, datetime(2024, 1, 1, 9), 1, "days", (MemberPeriod((1, 2, 3, 4)),), business, "Business"),
        Layer(
            2,
            2,
            datetime(2024, 1, 1, 9),
            1,
            "weeks",
            (MemberPeriod((5, 6, 7), None, NOW), MemberPeriod((5, 6, 7, 8), NOW, None)),
            (),
            "Weekly",
        ),
        Layer(3, 1, datetime(2024, 1, 1, 0), 12, "hours", (MemberPeriod((9, 10)),), (), "Backstop"),
    )
    overrides = []
    for i in range(50):
        start = NOW + timedelta(hours=rng.randint(-24 * 30, 24 * 90))
        kind = rng.choice(["add", "remove", "replace"])
        overrides.append(
            OverrideSpec(
                i + 1,
                start,
                start + timedelta(hours=rng.randint(1, 48)),
                kind,
                rng.randint(1, 10),
                rng.choice([None, rng.randint(1, 10)]) if kind == "replace" else None,
            )
        )
    return ScheduleSpec(1, "Europe/Berlin", layers, tuple(overrides))


def bench_engine(repeat: int) -> tuple[float, float]:
    from oncall.schedule_engine import final_schedule, oncall_at

    spec = engine_spec()
    rng = random.Random(7)
    instants = [NOW + timedelta(seconds=rng.randint(-86400 * 30, 86400 * 90)) for _ in range(20_000)]
    started = time.perf_counter()
    for at in instants:
        oncall_at(spec, at)
    now_ms = (time.perf_counter() - started) / len(instants) * 1000
    runs = []
    for _ in range(repeat * 4):
        started = time.perf_counter()
        final_schedule(spec, NOW, NOW + timedelta(days=90))
        runs.append((time.perf_counter() - started) * 1000)
    return now_ms, statistics.median(runs)


def bench_database(n: int, repeat: int) -> tuple[float, int, str]:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from ircore.models import Team, TeamMembership
    from oncall import selectors
    from oncall.models import Override, Rotation, RotationMember, Schedule

    user_model = get_user_model()
    team = Team.objects.create(name=f"bench {time.time_ns()}", slug=f"bench-{time.time_ns()}")
    users = user_model.objects.bulk_create([user_model(username=f"bench-{team.pk}-{i}") for i in range(12)])
    TeamMembership.objects.bulk_create([TeamMembership(team=team, user=u) for u in users])
    schedules = Schedule.objects.bulk_create(
        [
            Schedule(team=team, name=f"s{i}", timezone="Europe/Berlin", ical_token=f"b{team.pk}-{i}")
            for i in range(n)
        ]
    )
    rotations = Rotation.objects.bulk_create(
        [
            Rotation(
                schedule=s,
                name=name,
                priority=p,
                shift_amount=amount,
                shift_unit=unit,
                handoff_date=date(2024, 1, 1),
                restrictions=restr,
            )
            for s in schedules
            for name, p, amount, unit, restr in [
                (
                    "Business",
                    3,
                    1,
                    "days",
                    [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
                ),
                ("Weekly", 2, 1, "weeks", []),
                ("Backstop", 1, 12, "hours", []),
            ]
        ]
    )
    rng = random.Random(11)
    RotationMember.objects.bulk_create(
        [
            RotationMember(rotation=r, user=u, position=i)
            for r in rotations
            for i, u in enumerate(rng.sample(users, 4))
        ]
    )
    overrides = []
    for s in schedules:
        for _ in range(50):
            start = NOW + timedelta(hours=rng.randint(-24 * 30, 24 * 90))
            overrides.append(
                Override(
                    schedule=s,
                    kind="add",
                    start=start,
                    end=start + timedelta(hours=rng.randint(1, 48)),
                    user=rng.choice(users),
                )
            )
    Override.objects.bulk_create(overrides, batch_size=5000)
    runs = []
    queries = 0
    for _ in range(repeat):
        reset_queries()
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            result = selectors.schedules_oncall_at(schedules=Schedule.objects.filter(team=team), at=NOW)
            runs.append(time.perf_counter() - started)
        queries = len(ctx.captured_queries)
        assert len(result) == n
    return statistics.median(runs), queries, connection.vendor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("IRCORE_LOCAL_RUN", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ircore.settings")
    scratch = None
    if not os.environ.get("DATABASE_URL"):
        scratch = tempfile.NamedTemporaryFile(
            prefix="ircore-bench-schedules-", suffix=".sqlite3", delete=False
        )
        os.environ["DATABASE_URL"] = f"sqlite:///{scratch.name}"
    try:
        now_ms, final_ms = bench_engine(args.repeat)
        many_s, queries, vendor = bench_database(args.schedules, args.repeat)
    finally:
        if scratch is not None:
            Path(scratch.name).unlink(missing_ok=True)

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print("| measurement | result | target | |")
    print("|---|---|---|---|")
    print(
        f"| on call now, 3 layers + 50 overrides (mean of 20,000) | {now_ms:.3f} ms | < {TARGET_NOW_MS:g} ms "
        f"| {verdict(now_ms < TARGET_NOW_MS)} |"
    )
    print(
        f"| 90-day final schedule, same schedule (median) | {final_ms:.2f} ms | < {TARGET_90D_MS:g} ms "
        f"| {verdict(final_ms < TARGET_90D_MS)} |"
    )
    print(
        f"| on call now across {args.schedules:,} schedules from {vendor} ({queries} queries, median) "
        f"| {many_s * 1000:.0f} ms | < {TARGET_MANY_S * 1000:g} ms | {verdict(many_s < TARGET_MANY_S)} |"
    )


if __name__ == "__main__":
    main()
