from __future__ import annotations

import re
import secrets
import zoneinfo
from datetime import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from ircore.models import Team


def new_feed_token() -> str:
    # Lives in a calendar subscription URL: unguessable, URL-safe.
    return secrets.token_urlsafe(24)


def validate_timezone(value: str) -> None:
    if value not in _available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/Berlin.")


_TZ_CACHE: set[str] = set()


def _available_timezones() -> set[str]:
    if not _TZ_CACHE:
        _TZ_CACHE.update(zoneinfo.available_timezones())
    return _TZ_CACHE


_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def parse_hhmm(value: object) -> time:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValidationError(f"{value!r} is not a time of day in HH:MM (00:00-23:59).")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def validate_restrictions(value: object) -> None:
    """Restrictions: a list of ``{"days": ["mon", ...], "start": "09:00", "end": "17:00"}``.
    An end not after the start runs past midnight (e.g. nights 18:00-09:00)."""
    if not isinstance(value, list):
        raise ValidationError("Restrictions must be a list of {days, start, end} windows.")
    for i, item in enumerate(value, 1):
        if not isinstance(item, dict) or set(item) - {"days", "start", "end"}:
            raise ValidationError(f"Window {i}: expected an object with keys days, start, end.")
        days = item.get("days")
        if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days):
            raise ValidationError(f"Window {i}: days must be a non-empty list of {', '.join(WEEKDAYS)}.")
        try:
            parse_hhmm(item.get("start"))
            parse_hhmm(item.get("end"))
        except ValidationError as exc:
            raise ValidationError(f"Window {i}: {exc.messages[0]}") from None


class Schedule(models.Model):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="schedules")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_timezone],
        help_text="IANA time zone; handoffs and restrictions are in this zone's local time.",
    )
    ical_token = models.CharField(max_length=64, unique=True, default=new_feed_token, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="unique_schedule_name_per_team"),
        ]

    def __str__(self) -> str:
        return self.name


class Rotation(models.Model):
    class Unit(models.TextChoices):
        HOURS = "hours", "hours"
        DAYS = "days", "days"
        WEEKS = "weeks", "weeks"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="rotations")
    name = models.CharField(max_length=120)
    priority = models.IntegerField(
        default=1,
        help_text="Layer order: the highest layer with someone on call wins.",
    )
    shift_amount = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    shift_unit = models.CharField(max_length=10, choices=Unit.choices, default=Unit.WEEKS)
    handoff_date = models.DateField(help_text="Any date with a handoff (e.g. a Monday for weekly).")
    handoff_time = models.TimeField(default=time(9, 0), help_text="Local time of the handoff.")
    timezone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_timezone],
        help_text="Optional: this layer's own time zone (follow-the-sun). Empty: the schedule's.",
    )
    restrictions = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_restrictions],
        help_text='Optional windows, e.g. [{"days": ["mon","tue","wed","thu","fri"], '
        '"start": "09:00", "end": "17:00"}]. Empty: always on.',
    )

    class Meta:
        ordering = ["schedule", "-priority"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "priority"], name="unique_rotation_priority"),
            models.CheckConstraint(condition=Q(shift_amount__gte=1), name="rotation_shift_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (layer {self.priority})"


class RotationMember(models.Model):
    """One person's place in a rotation for a period. Changes close the current rows and
    open new ones (``oncall.services.rotation_members_set``) so past shifts stay as they
    were; ``effective_from`` None means "since the start"."""

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rotation_memberships"
    )
    position = models.PositiveIntegerField(default=0)
    effective_from = models.DateTimeField(null=True, blank=True)
    effective_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rotation", "position", "id"]
        indexes = [models.Index(fields=["rotation", "effective_until"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_from__isnull=True)
                | Q(effective_until__isnull=True)
                | Q(effective_until__gt=models.F("effective_from")),
                name="rotation_member_period_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} #{self.position}"


class Override(models.Model):
    class Kind(models.TextChoices):
        ADD = "add", "add a person"
        REMOVE = "remove", "remove a person"
        REPLACE = "replace", "replace a person"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="overrides")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REPLACE)
    start = models.DateTimeField()
    end = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="schedule_overrides",
        help_text="Who is added, removed, or takes over.",
    )
    replaced_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="replaced_in_overrides",
        help_text="For replace: the person covered. Empty: take over whoever is on call, gaps included.",
    )
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start", "id"]
        indexes = [models.Index(fields=["schedule", "end"])]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="override_end_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.user} {self.start:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.start and self.end and self.end <= self.start:
            errors["end"] = "The end must be after the start."
        if self.kind != self.Kind.REPLACE and self.replaced_user_id:
            errors["replaced_user"] = "Only a replace override names a replaced person."
        if self.kind == self.Kind.REPLACE and self.replaced_user_id and self.replaced_user_id == self.user_id:
            errors["replaced_user"] = "A person cannot replace themselves."
        if self.schedule_id:
            team_id = Schedule.objects.filter(pk=self.schedule_id).values_list("team_id", flat=True).first()
            members = set(Team.objects.get(pk=team_id).memberships.values_list("user_id", flat=True))
            if self.user_id and self.user_id not in members:
                errors["user"] = "This person is not a member of the schedule's team."
            if self.replaced_user_id and self.replaced_user_id not in members:
                errors["replaced_user"] = "This person is not a member of the schedule's team."
        if not errors and self.schedule_id and self.start and self.end:
            # The same change twice over overlapping times is a mistake, not a layering.
            same = (
                Override.objects.filter(
                    schedule_id=self.schedule_id,
                    kind=self.kind,
                    user_id=self.user_id,
                    replaced_user_id=self.replaced_user_id,
                    start__lt=self.end,
                    end__gt=self.start,
                )
                .exclude(pk=self.pk)
                .order_by("start")
                .first()
            )
            if same is not None:
                errors["start"] = (
                    f"Overlaps override #{same.pk} ({same.start:%Y-%m-%d %H:%M} - "
                    f"{same.end:%Y-%m-%d %H:%M} UTC) that does the same; change that one instead."
                )
        if errors:
            raise ValidationError(errors)


class CalendarFeed(models.Model):
    """A person's secret iCal URL for their shifts across all schedules."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed"
    )
    token = models.CharField(max_length=64, unique=True, default=new_feed_token)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"calendar feed of {self.user}"


from oncall.models_escalation import *  # noqa: E402,F401,F403 (escalation models live in their own module)
