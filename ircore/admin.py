"""Team scoping for every admin page, through ircore.permissions (shared with the API)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ircore import permissions
from ircore.models import Team, TeamMembership


class TeamScopedAdmin(admin.ModelAdmin):
    """Staff see only their teams' objects; managers may change configuration.

    ``team_field`` is the lookup path from the model to its Team. ``responders_can_change``
    lets responders (not only managers) edit, e.g. incidents.
    """

    team_field = "team"
    responders_can_change = False

    def _team_id(self, obj: Any) -> int | None:
        if obj is None:
            return None
        if self.team_field == "pk":
            return obj.pk
        value: Any = obj
        for part in self.team_field.split("__"):
            value = getattr(value, part, None)
            if value is None:
                return None
        return value.pk if hasattr(value, "pk") else value

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return permissions.scope_queryset(super().get_queryset(request), request.user, self.team_field)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return permissions.is_team_member(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return permissions.is_team_member(request.user)
        return permissions.can_view_team(request.user, self._team_id(obj))

    def _can_write(self, request: HttpRequest, obj: Any) -> bool:
        user = request.user
        if obj is None:
            return (permissions.is_team_member(user) if self.responders_can_change
                    else permissions.is_any_team_manager(user))
        team_id = self._team_id(obj)
        if self.responders_can_change:
            return permissions.can_view_team(user, team_id)
        return permissions.can_manage_team(user, team_id)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._can_write(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._can_write(request, None)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return permissions.is_any_team_manager(request.user)
        return permissions.can_manage_team(request.user, self._team_id(obj))

    def scope_team_choices(self, db_field: Any, request: HttpRequest, kwargs: dict) -> None:
        """Limit foreign-key choices to the objects of teams the user may manage."""
        model = db_field.related_model
        if model is Team:
            ids = permissions.managed_team_ids(request.user)
            if ids is not None:
                kwargs["queryset"] = Team.objects.filter(pk__in=ids)
        elif hasattr(model, "team"):
            kwargs["queryset"] = permissions.scope_queryset(model._default_manager.all(), request.user)
        elif hasattr(model, "service"):
            kwargs["queryset"] = permissions.scope_queryset(
                model._default_manager.all(), request.user, "service__team"
            )

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self.scope_team_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self.scope_team_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class TeamMembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(TeamScopedAdmin):
    team_field = "pk"
    list_display = ["name", "slug", "member_count"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [TeamMembershipInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return permissions.sees_all_teams(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.sees_all_teams(request.user)

    @admin.display(description="members")
    def member_count(self, obj: Team) -> int:
        return obj.memberships.count()
