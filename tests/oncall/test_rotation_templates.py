from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from oncall import selectors
from oncall.models import Rotation
from oncall.rotation_templates import TEMPLATES, rotation_template_apply

BERLIN = ZoneInfo("Europe/Berlin")


def at(*args: int, tz: ZoneInfo = BERLIN) -> datetime:
    return datetime(*args, tzinfo=tz)


def who(schedule, instant: datetime) -> list[tuple[int, int | None]]:
    return [(oc.user_id, oc.layer_id) for oc in selectors.schedule_oncall_at(schedule=schedule, at=instant)]


def test_weekly_template_hands_off_monday_0900_local(schedule, responder, secondary):
    (layer,) = rotation_template_apply(
        schedule=schedule, template="weekly", user_ids=[responder.pk, secondary.pk], start=date(2024, 3, 20)
    )
    assert layer.handoff_date == date(2024, 3, 25)  # the next Monday
    shifts = selectors.schedule_shifts(schedule=schedule, start=at(2024, 3, 25, 9), end=at(2024, 4, 8, 9))
    assert [(s.start.astimezone(BERLIN).strftime("%a %H:%M"), s.user_id) for s in shifts] == [
        ("Mon 09:00", responder.pk),
        ("Mon 09:00", secondary.pk),
    ]
    assert shifts[0].duration == timedelta(hours=167)  # spans the spring-forward


def test_business_hours_template_layers(schedule, responder, secondary):
    business, after = sorted(
        rotation_template_apply(
            schedule=schedule,
            template="business_hours",
            user_ids=[responder.pk, secondary.pk],
            start=date(2024, 1, 1),
        ),
        key=lambda r: -r.priority,
    )
    assert business.name == "Business hours" and business.priority > after.priority
    assert who(schedule, at(2024, 1, 2, 10)) == [(secondary.pk, business.pk)]  # Tue, day 2
    assert who(schedule, at(2024, 1, 2, 20)) == [(responder.pk, after.pk)]
    assert who(schedule, at(2024, 1, 6, 12)) == [(responder.pk, after.pk)]  # Saturday
    gaps = [
        s
        for s in selectors.schedule_shifts(schedule=schedule, start=at(2024, 1, 1), end=at(2024, 1, 15))
        if s.user_id is None
    ]
    assert gaps == []


def test_follow_the_sun_layers_use_their_own_zones(schedule, responder, secondary, manager):
    rotation_template_apply(
        schedule=schedule, template="follow_the_sun", user_ids=[responder.pk], start=date(2024, 1, 1)
    )
    zones = set(Rotation.objects.filter(schedule=schedule).values_list("timezone", flat=True))
    assert zones == {"Europe/Berlin", "America/New_York", "Australia/Sydney"}
    by_name = {r.name: r.pk for r in Rotation.objects.filter(schedule=schedule)}
    assert who(schedule, at(2024, 7, 2, 10)) == [(responder.pk, by_name["Europe"])]
    assert who(schedule, at(2024, 7, 2, 11, tz=ZoneInfo("America/New_York"))) == [
        (responder.pk, by_name["Americas"])
    ]
    assert who(schedule, at(2024, 7, 2, 9, tz=ZoneInfo("Australia/Sydney"))) == [
        (responder.pk, by_name["Asia-Pacific"])
    ]


def test_templates_all_apply_and_stack_above_existing_layers(schedule, responder):
    for key in TEMPLATES:
        rotation_template_apply(
            schedule=schedule, template=key, user_ids=[responder.pk], start=date(2024, 1, 1)
        )
    priorities = list(Rotation.objects.filter(schedule=schedule).values_list("priority", flat=True))
    assert sorted(priorities) == list(range(1, len(priorities) + 1))


def test_unknown_template_or_outsider_member_changes_nothing(schedule, outsider):
    with pytest.raises(ValidationError, match="Unknown template"):
        rotation_template_apply(schedule=schedule, template="hourly", user_ids=[], start=date(2024, 1, 1))
    with pytest.raises(ValidationError, match="Not members"):
        rotation_template_apply(
            schedule=schedule, template="business_hours", user_ids=[outsider.pk], start=date(2024, 1, 1)
        )
    assert not Rotation.objects.exists()
