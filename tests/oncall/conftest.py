from __future__ import annotations

from datetime import date, time

import pytest


@pytest.fixture
def schedule(team_a):
    from oncall.models import Schedule

    return Schedule.objects.create(team=team_a, name="Primary", timezone="Europe/Berlin")


@pytest.fixture
def weekly(schedule, responder, secondary, manager):
    """Weekly layer, Monday 09:00 Berlin handoff: rita, sam, maya."""
    from oncall.models import Rotation
    from oncall.services import rotation_members_set

    rotation = Rotation.objects.create(
        schedule=schedule,
        name="Weekly",
        priority=1,
        shift_amount=1,
        shift_unit="weeks",
        handoff_date=date(2024, 1, 1),
        handoff_time=time(9),
    )
    rotation_members_set(rotation=rotation, user_ids=[responder.pk, secondary.pk, manager.pk])
    return rotation
