"""Building blocks for the incidents API: team-scoped viewsets whose writes are checked
against the caller's role, related fields that only offer the caller's teams' objects,
and the 409 answer for transitions and deletes that do not apply."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db.models import ProtectedError, QuerySet
from rest_framework import permissions as drf_permissions
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import APIException
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.relations import ManyRelatedField

from ircore import permissions
from ircore.api import TeamScopedViewSetMixin
from ircore.models import Team, TeamMembership


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the object."
    default_code = "conflict"


def team_id_of(obj: Any, team_field: str) -> int | None:
    """Follow ``team_field`` (``team``, ``service__team``, ``pk``) from ``obj`` to a team id."""
    if team_field == "pk":
        return obj.pk
    *path, last = team_field.split("__")
    for part in path:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)


class TeamWritePermission(drf_permissions.BasePermission):
    """Reads are scoped by the queryset; writes need the manager role in the object's
    team (or membership, for views with ``responders_can_write``)."""

    message = "You need the manager role in this team to change this."

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method in drf_permissions.SAFE_METHODS:
            return True
        if getattr(view, "action", None) == "create" and not getattr(view, "responders_can_write", False):
            # Fail early for callers who manage no team at all; the team of the new
            # object is checked after validation (perform_create).
            return permissions.is_any_team_manager(request.user)
        return True

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        if request.method in drf_permissions.SAFE_METHODS:
            return True
        view.check_team_write(team_id_of(obj, view.team_field))
        return True


class Pagination(LimitOffsetPagination):
    # One request must not be able to dump 100,000 incidents or a million alerts.
    max_limit = 500


class TeamScopedModelViewSet(TeamScopedViewSetMixin, viewsets.ModelViewSet):
    """CRUD on a team-owned model. ``team_field`` locates the owning team."""

    pagination_class = Pagination
    permission_classes = [drf_permissions.IsAuthenticated, TeamWritePermission]

    def team_id_from_data(self, data: dict[str, Any]) -> int | None:
        """Team of the object described by validated data (None: not in the data)."""
        team = data.get("team")
        return team.pk if team is not None else None

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        self.check_team_write(self.team_id_from_data(serializer.validated_data))
        serializer.save()

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        team_id = self.team_id_from_data(serializer.validated_data)
        if team_id is not None:
            self.check_team_write(team_id)
        serializer.save()

    def perform_destroy(self, instance: Any) -> None:
        try:
            instance.delete()
        except ProtectedError as exc:
            blockers = sorted({str(type(obj)._meta.verbose_name_plural) for obj in exc.protected_objects})
            raise Conflict(
                f"{instance} cannot be deleted while it has {', '.join(blockers)}; "
                "they keep the history of what happened."
            ) from None


# --------------------------------------------------------------------------- serializers


def caller(serializer: serializers.BaseSerializer) -> Any:
    request = serializer.context.get("request")
    return getattr(request, "user", None) or AnonymousUser()


def visible_users(user: Any) -> QuerySet:
    """Users who belong to one of the caller's teams (superusers: every active user)."""
    users = get_user_model().objects.filter(is_active=True)
    ids = permissions.visible_team_ids(user)
    if ids is None:
        return users
    return users.filter(team_memberships__team_id__in=ids).distinct()


class ScopedRelatedFieldsMixin:
    """Related fields only accept the caller's teams' objects, so another team's id is
    answered like an id that does not exist (400), never revealing it."""

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {}

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()  # type: ignore[misc]
        for name, queryset in self.scoped_querysets(caller(self)).items():  # type: ignore[arg-type]
            field = fields.get(name)
            if field is None or field.read_only:
                continue
            target = field.child_relation if isinstance(field, ManyRelatedField) else field
            target.queryset = queryset
        return fields


def choice_error(label: str, values: Iterable[str]) -> dict[str, dict[str, str]]:
    """extra_kwargs entry with an invalid-choice message that lists the valid values."""
    return {"error_messages": {"invalid_choice": f'"{{input}}" is not a valid {label}; '
                                                 f"use one of {', '.join(values)}."}}


def immutable(serializer: serializers.ModelSerializer, field: str, value: Any, message: str) -> Any:
    instance = serializer.instance
    if instance is not None and getattr(instance, f"{field}_id") != getattr(value, "pk", value):
        raise serializers.ValidationError(message)
    return value


def check_same_team(team: Team, **objects: Any) -> None:
    """Objects referenced by a team's configuration must belong to that team."""
    errors: dict[str, str] = {}
    for name, value in objects.items():
        items = value if isinstance(value, list | tuple) else [value]
        for obj in items:
            if obj is None:
                continue
            obj_team_id = obj.team_id
            if obj_team_id != team.pk:
                errors[name] = f"{obj} belongs to another team than {team}."
                break
    if errors:
        raise serializers.ValidationError(errors)


def team_member_ids(team_id: int, user_ids: Iterable[int]) -> set[int]:
    return set(
        TeamMembership.objects.filter(team_id=team_id, user_id__in=list(user_ids))
        .values_list("user_id", flat=True)
    )
