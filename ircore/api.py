"""REST API building blocks shared by every app: team scoping through
ircore.permissions, so the API and the admin always agree."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import permissions as drf_permissions
from rest_framework.exceptions import PermissionDenied

from ircore import permissions


class TeamScopedViewSetMixin:
    """Restricts the queryset to the caller's teams (other teams' objects are 404) and
    refuses writes to teams the caller does not manage (403), unless
    ``responders_can_write`` is set."""

    team_field = "team"
    responders_can_write = False

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()  # type: ignore[misc]
        return permissions.scope_queryset(queryset, self.request.user, self.team_field)  # type: ignore[attr-defined]

    def check_team_write(self, team_id: int | None) -> None:
        user = self.request.user  # type: ignore[attr-defined]
        allowed = (
            permissions.can_view_team(user, team_id)
            if self.responders_can_write
            else permissions.can_manage_team(user, team_id)
        )
        if not allowed:
            raise PermissionDenied("You need the manager role in this team to change this.")


class IsTeamMember(drf_permissions.BasePermission):
    message = "You are not a member of any team."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and permissions.is_team_member(user))
