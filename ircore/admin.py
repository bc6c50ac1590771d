"""Team scoping for every admin page, through ircore.permissions (shared with the API)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext

from ircore import permissions
from ircore.models import Team, TeamMembership
from ircore.text import unstorable_path


class StorableJSONFormField(forms.JSONField):
    """Django's JSON form field, refusing what no database column can hold: a NUL
    character (PostgreSQL refuses it in jsonb) or an unpaired surrogate, anywhere in the
    value. Text fields refuse NUL already; without this a JSON field's save was a 500."""

    def validate(self, value: Any) -> None:
        super().validate(value)
        where = unstorable_path(value)
        if where is not None:
            raise ValidationError(
                "%(where)s contains a NUL character (\\u0000) or an unpaired surrogate, which cannot "
                "be stored.",
                code="unstorable", params={"where": where or "The value"},
            )


def team_id_of(obj: Any, team_field: str) -> int | None:
    """The id of ``obj``'s team, following ``team_field`` (a lookup path such as
    ``"page__team"``, or ``"pk"`` for a Team itself)."""
    if obj is None:
        return None
    if team_field == "pk":
        return obj.pk
    *path, last = team_field.split("__")
    value: Any = obj
    for part in path:
        value = getattr(value, part, None)
        if value is None:
            return None
    # The foreign key's own column when there is one: no query for the Team row.
    value = getattr(value, f"{last}_id", None) if hasattr(value, f"{last}_id") else getattr(value, last, None)
    return value.pk if hasattr(value, "pk") else value


class ReadOnlyAdminMixin:
    """Records written by the system only (alerts, the timeline, escalations, deliveries,
    status logs): no add, change or delete in the console."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ParentTeamInlineMixin:
    """Inline permissions follow the parent object's team (Django's default would ask for
    model permissions that team members do not have). ``parent_team_field`` is the path
    from the parent to its Team; ``_allowed`` serves the subclasses' other permissions."""

    parent_team_field = "team"

    def _allowed(self, request: HttpRequest, obj: Any) -> bool:
        if obj is None:
            return permissions.is_team_member(request.user)
        return permissions.can_view_team(request.user, team_id_of(obj, self.parent_team_field))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, obj)


class TeamScopedAdmin(admin.ModelAdmin):
    """Staff see only their teams' objects; managers may change configuration.

    ``team_field`` is the lookup path from the model to its Team. ``responders_can_change``
    lets responders (not only managers) edit, e.g. incidents.
    """

    team_field = "team"
    responders_can_change = False
    # Django 6's default, chosen now: a URL typed without a scheme means https.
    formfield_overrides = {
        models.URLField: {"assume_scheme": "https"},
        models.JSONField: {"form_class": StorableJSONFormField},
    }

    def _team_id(self, obj: Any) -> int | None:
        return team_id_of(obj, self.team_field)

    def action_checkbox(self, obj: Any) -> str:
        # Django's markup exactly (a test compares them), written directly: Django renders
        # a CheckboxInput through the template engine for every row, 15-20 % of a 50-row
        # changelist's server time.
        label = format_html(gettext("Select this object for an action - {}"), str(obj))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            ACTION_CHECKBOX_NAME, str(obj.pk), label)

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

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Changelist edits (list_editable) only ask has_change_permission(request): check
        # the row itself, so a manager of A who is a responder in B cannot edit B's rows.
        if not self._can_write(request, obj):
            raise PermissionDenied
        super().save_model(request, obj, form, change)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._can_write(request, None)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return permissions.is_any_team_manager(request.user)
        return permissions.can_manage_team(request.user, self._team_id(obj))

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        # Most people belong to one team: pre-select it on add forms.
        ids = self.choice_team_ids(request)
        has_team = any(f.name == "team" for f in self.opts.get_fields())
        if has_team and ids is not None and len(ids) == 1 and "team" not in initial:
            initial["team"] = next(iter(ids))
        return initial

    def choice_team_ids(self, request: HttpRequest) -> set[int] | None:
        """Teams whose objects may be picked in this admin's forms: the teams the user may
        write to here (all visible teams when responders may change, else managed ones)."""
        if self.responders_can_change:
            return permissions.visible_team_ids(request.user)
        return permissions.managed_team_ids(request.user)

    def scope_team_choices(self, db_field: Any, request: HttpRequest, kwargs: dict) -> None:
        """Limit foreign-key choices to the objects of teams the user may write to, so a
        form can never point at another team's service or integration."""
        model = db_field.related_model
        ids = self.choice_team_ids(request)
        if ids is None:
            return
        if model is Team:
            kwargs["queryset"] = Team.objects.filter(pk__in=ids)
        elif hasattr(model, "team"):
            kwargs["queryset"] = model._default_manager.filter(team__in=ids)
        elif hasattr(model, "service"):
            kwargs["queryset"] = model._default_manager.filter(service__team__in=ids)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self.scope_team_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self.scope_team_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class TeamMembershipInline(admin.TabularInline):
    """Members of a team. Non-superuser staff hold no Django model permissions, so the
    team's managers are granted the inline explicitly."""

    model = TeamMembership
    extra = 1
    autocomplete_fields = ["user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Each row's title names the user and the team: one query for all rows.
        return super().get_queryset(request).select_related("user", "team")

    def _manages(self, request: HttpRequest, obj: Any) -> bool:
        return obj is not None and permissions.can_manage_team(request.user, obj.pk)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or permissions.can_view_team(request.user, obj.pk)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.sees_all_teams(request.user) or self._manages(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.sees_all_teams(request.user) or self._manages(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.sees_all_teams(request.user) or self._manages(request, obj)


@admin.register(Team)
class TeamAdmin(TeamScopedAdmin):
    team_field = "pk"
    list_display = ["name", "slug", "member_count"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [TeamMembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(_members=Count("memberships"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return permissions.sees_all_teams(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.sees_all_teams(request.user)

    @admin.display(description="members", ordering="_members")
    def member_count(self, obj: Team) -> int:
        return obj._members


User = get_user_model()


class IrcoreUserAdmin(UserAdmin):
    """Django's user admin, plus: team managers may *search* users (the autocomplete
    behind "add a member" and role pickers) without being able to browse or edit them.

    The autocomplete endpoint only asks ``has_view_permission(request)``; the pages
    themselves still require the real Django permission.
    """

    def _django_perm(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self._django_perm(request, obj):
            return True
        # Only on the autocomplete endpoint: elsewhere (e.g. the "view" icon next to the
        # picker) a manager without the Django permission has no user pages to see.
        on_autocomplete = getattr(request.resolver_match, "url_name", None) == "autocomplete"
        return obj is None and on_autocomplete and permissions.is_any_team_manager(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) and self._django_perm(request)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        if not self._django_perm(request):
            # Managers picking people: active staff accounts only, nothing else.
            queryset = queryset.filter(is_active=True, is_staff=True)
        return super().get_search_results(request, queryset, search_term)

    def _require_django_perm(self, request: HttpRequest) -> None:
        if not self._django_perm(request):
            raise PermissionDenied

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        self._require_django_perm(request)
        return super().changelist_view(request, extra_context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> Any:
        self._require_django_perm(request)
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> Any:
        self._require_django_perm(request)
        return super().history_view(request, object_id, extra_context)


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, IrcoreUserAdmin)

# The console pages of inbound email and the security log, and of tasks waiting for the broker.
from ircore import admin_inbound, admin_outbox  # noqa: E402, F401
