"""Ready-made rotation layouts a manager can load into a schedule from the admin (or the
API) and then adjust."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from oncall.models import Rotation, Schedule
from oncall.services import rotation_members_set

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
ALL_DAYS = [*WEEKDAYS, "sat", "sun"]


@dataclass(frozen=True)
class LayerTemplate:
    name: str
    shift_amount: int
    shift_unit: str
    handoff_time: time
    restrictions: tuple[dict, ...] = ()
    timezone: str = ""
    monday_handoff: bool = False


@dataclass(frozen=True)
class RotationTemplate:
    key: str
    title: str
    description: str
    layers: tuple[LayerTemplate, ...]  # highest layer first


TEMPLATES: dict[str, RotationTemplate] = {
    t.key: t
    for t in [
        RotationTemplate(
            "weekly",
            "Weekly rotation, Monday 09:00",
            "One layer; each person is on call for a week, handing off on Mondays at 09:00.",
            (LayerTemplate("Weekly", 1, "weeks", time(9), monday_handoff=True),),
        ),
        RotationTemplate(
            "daily",
            "Daily 24h rotation",
            "One layer; each person is on call for 24 hours, handing off at 09:00.",
            (LayerTemplate("Daily", 1, "days", time(9)),),
        ),
        RotationTemplate(
            "follow_the_sun",
            "Follow the sun (Europe, Americas, Asia-Pacific)",
            "Three layers in their own time zones, each covering its region's working day "
            "(Berlin 08-16, New York 10-18, Sydney 08-16 local); remove a region you do not staff.",
            (
                LayerTemplate(
                    "Europe",
                    1,
                    "weeks",
                    time(8),
                    ({"days": ALL_DAYS, "start": "08:00", "end": "16:00"},),
                    "Europe/Berlin",
                    monday_handoff=True,
                ),
                LayerTemplate(
                    "Americas",
                    1,
                    "weeks",
                    time(10),
                    ({"days": ALL_DAYS, "start": "10:00", "end": "18:00"},),
                    "America/New_York",
                    monday_handoff=True,
                ),
                LayerTemplate(
                    "Asia-Pacific",
                    1,
                    "weeks",
                    time(8),
                    ({"days": ALL_DAYS, "start": "08:00", "end": "16:00"},),
                    "Australia/Sydney",
                    monday_handoff=True,
                ),
            ),
        ),
        RotationTemplate(
            "business_hours",
            "Business hours + after-hours",
            "A daily business-hours layer (Mon-Fri 09:00-17:00) over a weekly after-hours layer "
            "that covers nights and weekends.",
            (
                LayerTemplate(
                    "Business hours",
                    1,
                    "days",
                    time(9),
                    ({"days": WEEKDAYS, "start": "09:00", "end": "17:00"},),
                ),
                LayerTemplate(
                    "After hours",
                    1,
                    "weeks",
                    time(9),
                    (
                        {"days": WEEKDAYS, "start": "17:00", "end": "09:00"},
                        {"days": ["sat", "sun"], "start": "00:00", "end": "00:00"},
                        {"days": ["mon"], "start": "00:00", "end": "09:00"},
                    ),
                    monday_handoff=True,
                ),
            ),
        ),
    ]
}


def template_choices() -> list[tuple[str, str]]:
    return [(t.key, t.title) for t in TEMPLATES.values()]


@transaction.atomic
def rotation_template_apply(
    *, schedule: Schedule, template: str, user_ids: Sequence[int], start: date
) -> list[Rotation]:
    """Add the template's layers on top of the schedule's existing ones, each with
    ``user_ids`` as members, anchored on ``start`` (moved to the next Monday for
    weekly handoffs)."""
    spec = TEMPLATES.get(template)
    if spec is None:
        raise ValidationError(f"Unknown template {template!r}; choose one of {', '.join(TEMPLATES)}.")
    top = schedule.rotations.aggregate(top=Max("priority"))["top"] or 0
    created: list[Rotation] = []
    for offset, layer in enumerate(reversed(spec.layers), 1):
        anchor = start + timedelta(days=(-start.weekday()) % 7) if layer.monday_handoff else start
        rotation = Rotation(
            schedule=schedule,
            name=layer.name,
            priority=top + offset,
            shift_amount=layer.shift_amount,
            shift_unit=layer.shift_unit,
            handoff_date=anchor,
            handoff_time=layer.handoff_time,
            restrictions=[dict(r) for r in layer.restrictions],
            timezone=layer.timezone,
        )
        rotation.full_clean()
        rotation.save()
        rotation_members_set(rotation=rotation, user_ids=user_ids)
        created.append(rotation)
    return created
