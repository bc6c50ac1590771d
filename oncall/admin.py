"""Console for schedules: layers and members inline, a 14-day timeline, quick overrides,
templates, iCal feed tokens, and "my shifts".

Member lists are edited as ordered usernames on each layer and saved through
``oncall.services.rotation_members_set`` so a change applies from now on and the past
stays as it was.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from ircore import permissions
from ircore.admin import TeamScopedAdmin
from oncall import schedule_engine as engine
from oncall import selectors
from oncall.models import CalendarFeed, Override, Rotation, RotationMember, Schedule
from oncall.rotation_templates import TEMPLATES, rotation_template_apply, template_choices
from oncall.services import (
    calendar_feed_get_or_create,
    calendar_feed_regenerate,
    override_create,
    rotation_current_member_ids,
    rotation_current_members_prefetch,
    rotation_members_set,
    schedule_ical_token_regenerate,
)
from oncall.timeline import build_timeline

User = get_user_model()
TIMELINE_DAYS = 14
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


def person(user: Any) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "nobody"


def _team_users(team_id: int | None) -> QuerySet:
    return User.objects.filter(team_memberships__team_id=team_id).order_by("username")


# --------------------------------------------------------------------------- layers inline


class RotationInlineForm(forms.ModelForm):
    members = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"size": 40}),
        help_text="Usernames in rotation order, comma-separated. A change applies from now on; "
        "past shifts stay as they were.",
    )

    class Meta:
        model = Rotation
        fields = [
            "name",
            "priority",
            "shift_amount",
            "shift_unit",
            "handoff_date",
            "handoff_time",
            "timezone",
            "restrictions",
            "members",
        ]
        widgets = {"restrictions": forms.Textarea(attrs={"rows": 2, "cols": 50})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.member_ids: list[int] = []
        rows = getattr(self.instance, "current_members", None)  # prefetched by RotationInline
        if rows is not None:
            self.initial["members"] = ", ".join(r.user.username for r in rows)
        elif self.instance.pk:
            ids = rotation_current_member_ids(rotation=self.instance)
            names = dict(User.objects.filter(pk__in=ids).values_list("pk", "username"))
            self.initial["members"] = ", ".join(names[i] for i in ids if i in names)

    def clean_members(self) -> str:
        raw = self.cleaned_data.get("members") or ""
        names = [n.strip() for n in raw.replace("\n", ",").split(",") if n.strip()]
        found = dict(User.objects.filter(username__in=names).values_list("username", "pk"))
        unknown = [n for n in names if n not in found]
        if unknown:
            raise ValidationError(f"Unknown username(s): {', '.join(unknown)}.")
        if len(set(names)) != len(names):
            raise ValidationError("A person can appear only once in a rotation.")
        self.member_ids = [found[n] for n in names]
        return raw


class RotationInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        team_id = getattr(self.instance, "team_id", None)
        members = set(_team_users(team_id).values_list("pk", flat=True))
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            outside = [i for i in getattr(form, "member_ids", []) if i not in members]
            if outside:
                names = ", ".join(User.objects.filter(pk__in=outside).values_list("username", flat=True))
                form.add_error("members", f"Not members of the schedule's team: {names}.")


class RotationInline(admin.StackedInline):
    model = Rotation
    form = RotationInlineForm
    formset = RotationInlineFormSet
    extra = 0
    ordering = ["-priority"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("name", "priority"),
                    ("shift_amount", "shift_unit"),
                    ("handoff_date", "handoff_time", "timezone"),
                    "restrictions",
                    "members",
                ]
            },
        )
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Each layer's member list in one query for the whole page, not two per layer.
        members = rotation_current_members_prefetch(with_users=True)
        return super().get_queryset(request).prefetch_related(members)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or permissions.can_view_team(request.user, obj.team_id)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (
            permissions.can_manage_team(request.user, obj.team_id)
            if obj
            else permissions.is_any_team_manager(request.user)
        )

    has_change_permission = has_add_permission
    has_delete_permission = has_add_permission


# --------------------------------------------------------------------------- forms on the page


class QuickOverrideForm(forms.Form):
    kind = forms.ChoiceField(choices=Override.Kind.choices, initial=Override.Kind.REPLACE)
    user = forms.ModelChoiceField(queryset=User.objects.none(), label="Person on call")
    replaced_user = forms.ModelChoiceField(
        queryset=User.objects.none(),
        required=False,
        label="Instead of",
        help_text="For replace; empty: whoever is on.",
    )
    start = forms.DateTimeField(
        input_formats=[LOCAL_INPUT, "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
    )
    end = forms.DateTimeField(
        input_formats=[LOCAL_INPUT, "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
    )
    note = forms.CharField(required=False, max_length=200)

    def __init__(self, *args: Any, schedule: Schedule, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        users = _team_users(schedule.team_id)
        self.fields["user"].queryset = users
        self.fields["replaced_user"].queryset = users


class TemplateForm(forms.Form):
    template = forms.ChoiceField(choices=template_choices)
    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, schedule: Schedule, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = _team_users(schedule.team_id)


# --------------------------------------------------------------------------- schedules


@admin.register(Schedule)
class ScheduleAdmin(TeamScopedAdmin):
    list_display = ["name", "team", "timezone", "oncall_now", "next_handoff"]
    list_filter = ["team"]
    list_select_related = ["team"]
    search_fields = ["name", "description"]
    fields = ["team", "name", "description", "timezone", "ical_feed"]
    readonly_fields = ["ical_feed"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Members and overrides are the team's people: a schedule does not change teams
        # (the API refuses it too); create a new one instead.
        return ["team", "ical_feed"] if obj is not None else ["ical_feed"]
    inlines = [RotationInline]
    change_form_template = "admin/oncall/schedule/change_form.html"
    change_list_template = "admin/oncall/schedule/change_list.html"

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        # Who is on call for the whole page in a fixed number of queries (no N+1).
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        now = timezone.now()
        results = selectors.schedules_oncall_at(schedules=rows, at=now, with_next_handoff=True)
        users = selectors.users_by_id(oc.user_id for r in results for oc in r.oncall)
        for schedule, result in zip(rows, results, strict=True):
            schedule._oncall_now = ", ".join(person(users.get(oc.user_id)) for oc in result.oncall) or None
            schedule._next_handoff = result.next_handoff
        return changelist

    @admin.display(description="on call now")
    def oncall_now(self, obj: Schedule) -> str:
        value = getattr(obj, "_oncall_now", None)
        return value if value else format_html('<span style="color:#c62828">{}</span>', "nobody")

    @admin.display(description="next handoff")
    def next_handoff(self, obj: Schedule) -> str:
        value = getattr(obj, "_next_handoff", None)
        if value is None:
            return "-"
        return f"{value.astimezone(ZoneInfo(obj.timezone)):%a %d %b %H:%M} ({obj.timezone})"

    @admin.display(description="iCal feed")
    def ical_feed(self, obj: Schedule) -> str:
        if not obj.pk:
            return "-"
        url = reverse("oncall:schedule-ical", args=[obj.ical_token])
        return format_html('<a href="{}">{}</a> (secret: anyone with this URL sees the shifts)', url, url)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if formset.model is not Rotation:
            return
        for inline_form in formset.forms:
            data = getattr(inline_form, "cleaned_data", None)
            if not data or data.get("DELETE") or not inline_form.instance.pk:
                continue
            if "members" in inline_form.changed_data or not inline_form.instance.members.exists():
                rotation_members_set(rotation=inline_form.instance, user_ids=inline_form.member_ids)

    # -- custom pages ----------------------------------------------------------------

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("my-shifts/", wrap(self.my_shifts_view), name="oncall_my_shifts"),
            path(
                "my-shifts/regenerate/",
                wrap(require_POST(self.my_feed_regenerate_view)),
                name="oncall_my_feed_regenerate",
            ),
            path(
                "<path:object_id>/override/",
                wrap(require_POST(self.override_view)),
                name="oncall_schedule_override",
            ),
            path(
                "<path:object_id>/template/",
                wrap(require_POST(self.template_view)),
                name="oncall_schedule_template",
            ),
            path(
                "<path:object_id>/regenerate-ical/",
                wrap(require_POST(self.regenerate_ical_view)),
                name="oncall_schedule_regenerate_ical",
            ),
            *super().get_urls(),
        ]

    def _schedule_or_404(self, request: HttpRequest, object_id: str) -> Schedule:
        schedule = self.get_object(request, unquote(object_id))
        if schedule is None:
            raise Http404("No such schedule.")
        return schedule

    def _back(self, schedule: Schedule) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:oncall_schedule_change", args=[schedule.pk]))

    def override_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        schedule = self._schedule_or_404(request, object_id)
        # Responders may arrange cover among themselves; no manager needed.
        if not permissions.can_view_team(request.user, schedule.team_id):
            raise PermissionDenied
        with timezone.override(ZoneInfo(schedule.timezone)):  # inputs are in the schedule's zone
            form = QuickOverrideForm(request.POST, schedule=schedule)
            valid = form.is_valid()
        if not valid:
            messages.error(request, _form_errors(form))
            return self._back(schedule)
        data = form.cleaned_data
        try:
            override_create(
                schedule=schedule,
                kind=data["kind"],
                start=data["start"],
                end=data["end"],
                user_id=data["user"].pk,
                replaced_user_id=data["replaced_user"].pk if data["replaced_user"] else None,
                note=data["note"],
                created_by=request.user,
            )
        except ValidationError as exc:
            messages.error(request, "Override not saved: " + " ".join(exc.messages))
            return self._back(schedule)
        messages.success(request, f"Override added: {data['kind']} {person(data['user'])}.")
        return self._back(schedule)

    def template_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        schedule = self._schedule_or_404(request, object_id)
        if not permissions.can_manage_team(request.user, schedule.team_id):
            raise PermissionDenied
        form = TemplateForm(request.POST, schedule=schedule)
        if not form.is_valid():
            messages.error(request, _form_errors(form))
            return self._back(schedule)
        data = form.cleaned_data
        try:
            created = rotation_template_apply(
                schedule=schedule,
                template=data["template"],
                user_ids=[u.pk for u in data["members"]],
                start=data["start"],
            )
        except ValidationError as exc:
            messages.error(request, "Template not loaded: " + " ".join(exc.messages))
            return self._back(schedule)
        messages.success(
            request, f"Loaded {TEMPLATES[data['template']].title}: {', '.join(r.name for r in created)}."
        )
        return self._back(schedule)

    def regenerate_ical_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        schedule = self._schedule_or_404(request, object_id)
        if not permissions.can_manage_team(request.user, schedule.team_id):
            raise PermissionDenied
        schedule_ical_token_regenerate(schedule=schedule)
        messages.success(request, "New iCal URL generated; the old one no longer works.")
        return self._back(schedule)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        schedule = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if schedule is not None:
            context.update(self._schedule_page_context(request, schedule))
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _schedule_page_context(self, request: HttpRequest, schedule: Schedule) -> dict[str, Any]:
        tz = ZoneInfo(schedule.timezone)
        now = timezone.now()
        today = now.astimezone(tz).date()
        start, _ = engine.local_day_bounds(today, schedule.timezone)
        end, _ = engine.local_day_bounds(today + timedelta(days=TIMELINE_DAYS), schedule.timezone)
        spec = selectors.schedule_spec(schedule=schedule, start=start, end=end)
        override_rows = list(
            schedule.overrides.filter(end__gt=now)
            .select_related("user", "replaced_user")
            .order_by("start")[:50]
        )
        user_ids = set(
            RotationMember.objects.filter(rotation__schedule=schedule).values_list("user_id", flat=True)
        )
        user_ids |= {o.user_id for o in spec.overrides} | {o.replaced_user_id for o in spec.overrides}
        users = selectors.users_by_id(user_ids)
        timeline = build_timeline(spec=spec, start_day=today, days=TIMELINE_DAYS, users=users, now=now)
        local_now = now.astimezone(tz).replace(second=0, microsecond=0, tzinfo=None)
        override_form = QuickOverrideForm(
            schedule=schedule, initial={"start": local_now, "end": local_now + timedelta(hours=8)}
        )
        return {
            "timeline": timeline,
            "override_form": override_form,
            "template_form": TemplateForm(schedule=schedule, initial={"start": today}),
            "upcoming_overrides": override_rows,
            "ical_absolute_url": request.build_absolute_uri(
                reverse("oncall:schedule-ical", args=[schedule.ical_token])
            ),
            "can_manage": permissions.can_manage_team(request.user, schedule.team_id),
            "can_override": permissions.can_view_team(request.user, schedule.team_id),
        }

    def my_shifts_view(self, request: HttpRequest) -> HttpResponse:
        now = timezone.now()
        days = 28
        visible = permissions.scope_queryset(Schedule.objects.all(), request.user)
        shifts = selectors.user_shifts(
            user_id=request.user.pk, start=now, end=now + timedelta(days=days), schedules=visible, merge=True
        )
        schedules = visible.in_bulk({s.schedule_id for s in shifts})
        rows = []
        for shift in shifts:
            schedule = schedules[shift.schedule_id]
            tz = ZoneInfo(schedule.timezone)
            rows.append(
                {
                    "schedule": schedule,
                    "start": shift.start.astimezone(tz),
                    "end": shift.end.astimezone(tz),
                    "hours": round(shift.duration.total_seconds() / 3600, 1),
                    "source": "override" if shift.override_id else "rotation",
                    "now": shift.start <= now < shift.end,
                }
            )
        feed = calendar_feed_get_or_create(user=request.user)
        context = {
            **self.admin_site.each_context(request),
            "title": "My shifts",
            "rows": rows,
            "days": days,
            "feed_url": request.build_absolute_uri(reverse("oncall:user-ical", args=[feed.token])),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/oncall/my_shifts.html", context)

    def my_feed_regenerate_view(self, request: HttpRequest) -> HttpResponse:
        calendar_feed_regenerate(user=request.user)
        messages.success(request, "New calendar URL generated; the old one no longer works.")
        return HttpResponseRedirect(reverse("admin:oncall_my_shifts"))


def _form_errors(form: forms.Form) -> str:
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label or name if name in form.fields else ""
        parts.append(f"{label}: {' '.join(errors)}" if label else " ".join(errors))
    return "Not saved. " + "; ".join(parts)


# --------------------------------------------------------------------------- overrides


class OverrideAdminForm(forms.ModelForm):
    class Meta:
        model = Override
        fields = ["schedule", "kind", "user", "replaced_user", "start", "end", "note"]


@admin.register(Override)
class OverrideAdmin(TeamScopedAdmin):
    team_field = "schedule__team"
    responders_can_change = True
    form = OverrideAdminForm
    list_display = ["schedule", "kind", "user", "replaced_user", "start", "end", "note"]
    list_filter = ["kind", "schedule__team"]
    list_select_related = ["schedule", "user", "replaced_user"]
    date_hierarchy = "start"
    search_fields = ["user__username", "replaced_user__username", "note", "schedule__name"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in ("user", "replaced_user"):
            ids = permissions.visible_team_ids(request.user)
            users = (
                User.objects.all()
                if ids is None
                else User.objects.filter(team_memberships__team_id__in=ids).distinct()
            )
            kwargs["queryset"] = users.order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Override, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


# --------------------------------------------------------------------------- personal feeds


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    """Superusers can revoke anyone's personal calendar URL (e.g. one that leaked); people
    regenerate their own on "My shifts"."""

    list_display = ["user", "created_at"]
    search_fields = ["user__username", "user__email"]
    fields = ["user", "created_at"]
    readonly_fields = ["user", "created_at"]
    actions = ["regenerate"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return permissions.sees_all_teams(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.sees_all_teams(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.sees_all_teams(request.user)

    @admin.action(description="Generate new URLs (the current ones stop working)", permissions=["delete"])
    def regenerate(self, request: HttpRequest, queryset: QuerySet) -> None:
        for feed in queryset.select_related("user"):
            calendar_feed_regenerate(user=feed.user)
        messages.success(request, f"Regenerated {queryset.count()} calendar URL(s).")


# --------------------------------------------------------------------------- dashboard

DASHBOARD_SCHEDULES = 20


@admin.site.register_dashboard_panel
def oncall_dashboard(request: HttpRequest) -> dict[str, Any] | None:
    schedules = list(
        permissions.scope_queryset(Schedule.objects.select_related("team"), request.user).order_by(
            "team__name", "name"
        )[: DASHBOARD_SCHEDULES + 1]
    )
    if not schedules:
        return None
    now = timezone.now()
    results = selectors.schedules_oncall_at(
        schedules=schedules[:DASHBOARD_SCHEDULES], at=now, with_next_handoff=True
    )
    users = selectors.users_by_id(oc.user_id for r in results for oc in r.oncall)
    visible = permissions.scope_queryset(Schedule.objects.all(), request.user)
    mine = selectors.user_shifts(
        user_id=request.user.pk, start=now, end=now + timedelta(days=14), schedules=visible, merge=True
    )
    schedules_by_id = visible.in_bulk({s.schedule_id for s in mine[:1]})
    rows = [
        {
            "schedule": r.schedule,
            "oncall": ", ".join(person(users.get(oc.user_id)) for oc in r.oncall),
            "next_handoff": r.next_handoff.astimezone(ZoneInfo(r.schedule.timezone))
            if r.next_handoff
            else None,
        }
        for r in results
    ]
    my_next = mine[0] if mine else None
    my_tz = ZoneInfo(schedules_by_id[my_next.schedule_id].timezone) if my_next else None
    return {
        "my_next_start": my_next.start.astimezone(my_tz) if my_next else None,
        "my_next_end": my_next.end.astimezone(my_tz) if my_next else None,
        "my_next_tz": str(my_tz) if my_tz else "",
        "template": "admin/oncall/dashboard_panel.html",
        "order": 20,
        "rows": rows,
        "more": len(schedules) > DASHBOARD_SCHEDULES,
        "my_next": my_next,
        "my_now": bool(mine and mine[0].start <= now),
    }


from oncall import admin_escalation  # noqa: E402,F401 (chains, routes, contact methods, notification log)
