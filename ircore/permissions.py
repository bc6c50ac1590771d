"""The one place that decides which teams' objects a user may see and change.

Used by the admin (ircore.admin.TeamScopedAdmin) and the REST API
(ircore.api.TeamScopedViewSetMixin) so both always agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from ircore.models import Team, TeamMembership

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

_CACHE_ATTR = "_ircore_team_roles"


def team_roles(user: AbstractBaseUser) -> dict[int, str]:
    """``{team_id: role}`` for the user's memberships, cached on the user object for the
    duration of a request."""
    if not getattr(user, "is_authenticated", False):
        return {}
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        cached = dict(TeamMembership.objects.filter(user=user).values_list("team_id", "role"))
        setattr(user, _CACHE_ATTR, cached)
    return cached


def sees_all_teams(user: AbstractBaseUser) -> bool:
    return bool(getattr(user, "is_active", False) and getattr(user, "is_superuser", False))


def visible_team_ids(user: AbstractBaseUser) -> set[int] | None:
    """Team ids the user may see; ``None`` means every team (superusers)."""
    if sees_all_teams(user):
        return None
    return set(team_roles(user))


def managed_team_ids(user: AbstractBaseUser) -> set[int] | None:
    """Team ids whose configuration the user may change; ``None`` means all."""
    if sees_all_teams(user):
        return None
    return {tid for tid, role in team_roles(user).items() if role == TeamMembership.Role.MANAGER}


def scope_queryset(queryset: QuerySet, user: AbstractBaseUser, team_field: str = "team") -> QuerySet:
    """Restrict ``queryset`` to objects whose ``team_field`` is one of the user's teams."""
    ids = visible_team_ids(user)
    if ids is None:
        return queryset
    if team_field == "pk":
        return queryset.filter(pk__in=ids)
    return queryset.filter(**{f"{team_field}__in": ids})


def visible_teams(user: AbstractBaseUser) -> QuerySet[Team]:
    return scope_queryset(Team.objects.all(), user, "pk")


def can_view_team(user: AbstractBaseUser, team_id: int | None) -> bool:
    ids = visible_team_ids(user)
    return ids is None or (team_id is not None and team_id in ids)


def can_manage_team(user: AbstractBaseUser, team_id: int | None) -> bool:
    ids = managed_team_ids(user)
    return ids is None or (team_id is not None and team_id in ids)


def is_team_member(user: AbstractBaseUser) -> bool:
    return sees_all_teams(user) or bool(team_roles(user))


def is_any_team_manager(user: AbstractBaseUser) -> bool:
    ids = managed_team_ids(user)
    return ids is None or bool(ids)
