from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from oncall import selectors
from oncall.models import Override, Rotation, RotationMember, Schedule
from oncall.services import override_create, rotation_members_set, schedule_ical_token_regenerate


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_unknown_timezone_is_rejected(team_a):
    schedule = Schedule(team=team_a, name="x", timezone="Mars/Olympus")
    with pytest.raises(ValidationError) as exc:
        schedule.full_clean()
    assert "Unknown time zone" in str(exc.value)


@pytest.mark.parametrize(
    "value, message",
    [
        ({"days": ["mon"]}, "must be a list"),
        ([{"days": ["funday"], "start": "09:00", "end": "17:00"}], "days must be"),
        ([{"days": ["mon"], "start": "9am", "end": "17:00"}], "HH:MM"),
        ([{"days": ["mon"], "start": "09:00", "end": "24:00"}], "HH:MM"),
        ([{"days": ["mon"], "start": "09:00", "end": "17:00", "tz": "x"}], "expected an object"),
    ],
)
def test_bad_restrictions_are_rejected(schedule, value, message):
    rotation = Rotation(schedule=schedule, name="x", handoff_date=date(2024, 1, 1), restrictions=value)
    with pytest.raises(ValidationError) as exc:
        rotation.full_clean()
    assert message in str(exc.value)


def test_member_change_keeps_past_shifts(weekly, responder, secondary, manager, outsider):
    schedule = weekly.schedule
    cut = utc(2024, 1, 17, 12)
    past = selectors.schedule_shifts(schedule=schedule, start=utc(2024, 1, 1), end=cut)
    with time_machine.travel(cut, tick=False):
        assert rotation_members_set(rotation=weekly, user_ids=[responder.pk, manager.pk])
        assert not rotation_members_set(rotation=weekly, user_ids=[responder.pk, manager.pk])
    assert selectors.schedule_shifts(schedule=schedule, start=utc(2024, 1, 1), end=cut) == past
    after = selectors.schedule_shifts(schedule=schedule, start=cut, end=utc(2024, 2, 1))
    assert [s.user_id for s in after] == [responder.pk, manager.pk, responder.pk]
    # Week 2 (Jan 15) was maya's; from the change on it is [rita, maya][2 % 2] = rita.
    assert (
        selectors.schedule_oncall_at(schedule=schedule, at=cut - timedelta(seconds=1))[0].user_id
        == manager.pk
    )
    assert selectors.schedule_oncall_at(schedule=schedule, at=cut)[0].user_id == responder.pk
    assert RotationMember.objects.filter(rotation=weekly).count() == 5  # 3 closed + 2 open


def test_member_set_refuses_outsiders_and_duplicates(weekly, responder, outsider):
    with pytest.raises(ValidationError, match="Not members"):
        rotation_members_set(rotation=weekly, user_ids=[responder.pk, outsider.pk])
    with pytest.raises(ValidationError, match="only once"):
        rotation_members_set(rotation=weekly, user_ids=[responder.pk, responder.pk])
    assert RotationMember.objects.filter(rotation=weekly, effective_until__isnull=True).count() == 3


def test_override_validation(schedule, responder, secondary, outsider):
    start = utc(2024, 1, 1, 10)
    with pytest.raises(ValidationError) as exc:
        override_create(schedule=schedule, kind="replace", start=start, end=start, user_id=responder.pk)
    assert "end" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        override_create(
            schedule=schedule, kind="add", start=start, end=start + timedelta(hours=1), user_id=outsider.pk
        )
    assert "not a member" in exc.value.message_dict["user"][0]
    with pytest.raises(ValidationError):
        override_create(
            schedule=schedule,
            kind="add",
            start=start,
            end=start + timedelta(hours=1),
            user_id=responder.pk,
            replaced_user_id=secondary.pk,
        )
    assert not Override.objects.exists()


def test_selector_matches_engine_with_overrides_and_few_queries(weekly, responder, secondary, manager):
    schedule = weekly.schedule
    override_create(
        schedule=schedule,
        kind="replace",
        start=utc(2024, 1, 2, 10),
        end=utc(2024, 1, 2, 20),
        user_id=secondary.pk,
        replaced_user_id=responder.pk,
    )
    Rotation.objects.create(
        schedule=schedule,
        name="Business",
        priority=2,
        shift_unit="days",
        handoff_date=date(2024, 1, 1),
        handoff_time=time(9),
        restrictions=[{"days": ["mon", "tue"], "start": "09:00", "end": "17:00"}],
    )
    with CaptureQueriesContext(connection) as ctx:
        shifts = selectors.schedule_shifts(schedule=schedule, start=utc(2024, 1, 1), end=utc(2024, 1, 8))
    assert len(ctx.captured_queries) == 3
    assert [(s.start, s.user_id) for s in shifts] == [
        (utc(2024, 1, 1), manager.pk),  # the week before the anchor (3rd member)
        (utc(2024, 1, 1, 8), responder.pk),  # 09:00 Berlin
        (utc(2024, 1, 2, 10), secondary.pk),
        (utc(2024, 1, 2, 20), responder.pk),
    ]


def test_many_schedules_oncall_in_constant_queries(team_a, responder, secondary):
    for i in range(10):
        s = Schedule.objects.create(team=team_a, name=f"s{i}", timezone="UTC")
        r = Rotation.objects.create(schedule=s, name="r", shift_unit="days", handoff_date=date(2024, 1, 1))
        rotation_members_set(rotation=r, user_ids=[responder.pk, secondary.pk])
    with CaptureQueriesContext(connection) as ctx:
        result = selectors.schedules_oncall_at(
            schedules=Schedule.objects.all(), at=utc(2024, 1, 2, 12), with_next_handoff=True
        )
    assert len(ctx.captured_queries) == 4
    assert {r.oncall[0].user_id for r in result} == {secondary.pk}
    assert {r.next_handoff for r in result} == {utc(2024, 1, 3, 9)}


def test_regenerating_the_token_revokes_the_old_one(schedule):
    old = schedule.ical_token
    new = schedule_ical_token_regenerate(schedule=schedule)
    assert new != old and len(new) >= 30
    assert not Schedule.objects.filter(ical_token=old).exists()


def test_duplicate_overlapping_override_is_refused_but_adjacent_is_fine(schedule, responder, secondary):
    start = utc(2024, 1, 1, 10)
    first = override_create(
        schedule=schedule,
        kind="replace",
        start=start,
        end=start + timedelta(hours=4),
        user_id=secondary.pk,
        replaced_user_id=responder.pk,
    )
    with pytest.raises(ValidationError, match=f"Overlaps override #{first.pk}"):
        override_create(
            schedule=schedule,
            kind="replace",
            start=start + timedelta(hours=3),
            end=start + timedelta(hours=6),
            user_id=secondary.pk,
            replaced_user_id=responder.pk,
        )
    override_create(
        schedule=schedule,
        kind="replace",
        start=start + timedelta(hours=4),
        end=start + timedelta(hours=6),
        user_id=secondary.pk,
        replaced_user_id=responder.pk,
    )
    # A different change over the same time is a legitimate layering.
    override_create(
        schedule=schedule, kind="add", start=start, end=start + timedelta(hours=4), user_id=responder.pk
    )
    first.end = start + timedelta(hours=3)
    first.full_clean()  # editing itself does not collide with itself
    assert Override.objects.count() == 3


def test_user_shifts_merge_back_to_back_layers(schedule, responder):
    from oncall.rotation_templates import rotation_template_apply

    rotation_template_apply(
        schedule=schedule, template="business_hours", user_ids=[responder.pk], start=date(2024, 1, 1)
    )
    span = {"user_id": responder.pk, "start": utc(2024, 1, 1), "end": utc(2024, 1, 8)}
    assert len(selectors.user_shifts(**span)) > 5  # one per layer stretch
    (merged,) = selectors.user_shifts(**span, merge=True)
    assert (merged.start, merged.end) == (utc(2024, 1, 1), utc(2024, 1, 8))
