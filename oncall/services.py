"""Writes for schedules: member changes that keep history, overrides, feed tokens,
templates. Keyword-only; admin and API both call these."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from oncall.models import CalendarFeed, Override, Rotation, RotationMember, Schedule, new_feed_token

User = get_user_model()
# Clock skew between a client and the server is not "the past".
PAST_TOLERANCE = timedelta(minutes=5)


def _team_member_ids(schedule: Schedule) -> set[int]:
    return set(schedule.team.memberships.values_list("user_id", flat=True))


def _current_members(rows: QuerySet[RotationMember], at: datetime | None) -> QuerySet[RotationMember]:
    at = at or timezone.now()
    return rows.filter(
        Q(effective_from__isnull=True) | Q(effective_from__lte=at),
        Q(effective_until__isnull=True) | Q(effective_until__gt=at),
    ).order_by("position", "id")


def rotation_current_member_ids(*, rotation: Rotation, at: datetime | None = None) -> list[int]:
    return [r.user_id for r in _current_members(rotation.members.all(), at)]


def rotation_current_members_prefetch(*, at: datetime | None = None, with_users: bool = False) -> Prefetch:
    """For a list of rotations: their current members (``rotation.current_members``) in
    one query. Only for read-only lists: the attribute is not refreshed when the members
    change."""
    rows = RotationMember.objects.select_related("user") if with_users else RotationMember.objects.all()
    return Prefetch("members", queryset=_current_members(rows, at), to_attr="current_members")


@transaction.atomic
def rotation_members_set(
    *, rotation: Rotation, user_ids: Sequence[int], effective_from: datetime | None = None
) -> bool:
    """Make ``user_ids`` (in order) the rotation's members from ``effective_from`` (now
    by default) on. Rows in force before keep their history: they are closed at
    ``effective_from``, not edited. A rotation that never had members gets rows valid
    since the start. Returns False when nothing changed."""
    user_ids = list(user_ids)
    if len(set(user_ids)) != len(user_ids):
        raise ValidationError("A person can appear only once in a rotation.")
    outside = set(user_ids) - _team_member_ids(rotation.schedule)
    if outside:
        names = ", ".join(sorted(User.objects.filter(pk__in=outside).values_list("username", flat=True)))
        raise ValidationError(f"Not members of the schedule's team: {names or outside}.")
    now = timezone.now()
    if effective_from is not None and effective_from < now - PAST_TOLERANCE:
        raise ValidationError(
            "A member change cannot start in the past: shifts that happened stay as they "
            "were. Use now or a future time."
        )
    Rotation.objects.select_for_update().filter(pk=rotation.pk).first()
    at = effective_from or now
    if rotation_current_member_ids(rotation=rotation, at=at) == user_ids:
        return False
    has_history = rotation.members.exists()
    # Rows starting after ``at`` were planned changes that this change supersedes.
    rotation.members.filter(effective_from__gt=at).delete()
    rotation.members.filter(Q(effective_until__isnull=True) | Q(effective_until__gt=at)).update(
        effective_until=at
    )
    RotationMember.objects.bulk_create(
        [
            RotationMember(
                rotation=rotation, user_id=uid, position=i, effective_from=at if has_history else None
            )
            for i, uid in enumerate(user_ids)
        ]
    )
    # Rows closed before they ever started (effective_from == at) carry no history.
    rotation.members.filter(effective_from=at, effective_until=at).delete()
    return True


def override_create(
    *,
    schedule: Schedule,
    kind: str,
    start: datetime,
    end: datetime,
    user_id: int,
    replaced_user_id: int | None = None,
    note: str = "",
    created_by: object | None = None,
) -> Override:
    override = Override(
        schedule=schedule,
        kind=kind,
        start=start,
        end=end,
        user_id=user_id,
        replaced_user_id=replaced_user_id,
        note=note,
        created_by=created_by,
    )
    override.full_clean()
    override.save()
    return override


def schedule_ical_token_regenerate(*, schedule: Schedule) -> str:
    """Revokes the old feed URL and returns the new token."""
    schedule.ical_token = new_feed_token()
    schedule.save(update_fields=["ical_token"])
    return schedule.ical_token


def calendar_feed_get_or_create(*, user: object) -> CalendarFeed:
    feed, _ = CalendarFeed.objects.get_or_create(user=user)
    return feed


def calendar_feed_regenerate(*, user: object) -> CalendarFeed:
    feed = calendar_feed_get_or_create(user=user)
    feed.token = new_feed_token()
    feed.save(update_fields=["token"])
    return feed
