"""Console for escalation: chains with ordered inline steps (and ready-made templates),
routes, outgoing webhooks, contact methods (send test, verify), notification rules,
the notification log, running escalations, a dashboard panel for chains that paged no
one, and the escalation panel on the incident page. Imported by oncall.admin."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from incidents.admin_panels import incident_panel_register
from incidents.models import Incident
from ircore import permissions
from ircore.admin import ReadOnlyAdminMixin, TeamScopedAdmin
from ircore.models import Team, TeamMembership
from oncall import chain_templates, notify
from oncall.models import Schedule
from oncall.models_escalation import (
    ContactMethod,
    Escalation,
    EscalationChain,
    EscalationRoute,
    EscalationStep,
    Notification,
    NotificationRule,
    OutgoingWebhook,
    validate_contact_address,
)
from oncall.selectors import people_scope

User = get_user_model()


def _members_of(team_ids: set[int] | None) -> QuerySet:
    users = User.objects.filter(is_active=True).order_by("username")
    if team_ids is None:
        return users
    return users.filter(team_memberships__team_id__in=team_ids).distinct()


# --------------------------------------------------------------------------- chains


class StepFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        team_id = self.instance.team_id
        if team_id is None:
            return
        members = set(TeamMembership.objects.filter(team_id=team_id).values_list("user_id", flat=True))
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data or data.get("DELETE"):
                continue
            outsiders = [u for u in data.get("users", []) if u.pk not in members]
            if outsiders:
                form.add_error("users", f"{outsiders[0]} is not a member of the chain's team.")
            for field in ("schedules", "webhooks"):
                if any(obj.team_id != team_id for obj in data.get(field, [])):
                    form.add_error(field, "Pick only the chain's team's objects.")


class StepInline(admin.TabularInline):
    model = EscalationStep
    formset = StepFormSet
    extra = 1
    ordering = ["position", "id"]
    fields = ["position", "users", "schedules", "notify_team", "team_managers", "webhooks", "delay_minutes"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Each form's selected targets from three queries for the page, not three per step.
        return super().get_queryset(request).prefetch_related("users", "schedules", "webhooks")

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        ids = permissions.managed_team_ids(request.user)
        if db_field.name == "users":
            kwargs["queryset"] = _members_of(ids)
        elif db_field.name in ("schedules", "webhooks") and ids is not None:
            kwargs["queryset"] = db_field.related_model.objects.filter(team__in=ids)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _parent_ok(self, request: HttpRequest, obj: Any) -> bool:
        return obj is None or permissions.can_manage_team(request.user, obj.team_id)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or permissions.can_view_team(request.user, obj.team_id)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.is_any_team_manager(request.user) and self._parent_ok(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request, obj)


class FromTemplateForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none())
    template = forms.ChoiceField(choices=[(k, f"{t.name}: {t.description}")
                                          for k, t in chain_templates.TEMPLATES.items()])
    name = forms.CharField(required=False, max_length=120, help_text="Empty: the template's name.")
    primary_schedule = forms.ModelChoiceField(queryset=Schedule.objects.none())
    secondary_schedule = forms.ModelChoiceField(queryset=Schedule.objects.none(), required=False)
    is_default = forms.BooleanField(required=False, label="Default chain of the team")


@admin.register(EscalationChain)
class EscalationChainAdmin(TeamScopedAdmin):
    list_display = ["name", "team", "step_count", "repeat", "is_default"]
    list_filter = ["team", "is_default"]
    search_fields = ["name"]
    inlines = [StepInline]
    fields = ["team", "name", "description", "repeat", "is_default"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(_steps=Count("steps"))

    @admin.display(description="steps", ordering="_steps")
    def step_count(self, obj: EscalationChain) -> int:
        return obj._steps

    def get_urls(self) -> list:
        return [
            path("from-template/", self.admin_site.admin_view(self.from_template_view),
                 name="oncall_escalationchain_from_template"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if self.has_add_permission(request):
            url = reverse("admin:oncall_escalationchain_from_template")
            messages.info(request, format_html(
                'Start quickly: <a href="{}">create a chain from a template</a> '
                "(primary at once, secondary after 10 min, managers after 20).", url))
        return super().changelist_view(request, extra_context)

    def from_template_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        ids = permissions.managed_team_ids(request.user)
        form = FromTemplateForm(request.POST or None)
        teams = Team.objects.all() if ids is None else Team.objects.filter(pk__in=ids)
        schedules = Schedule.objects.all() if ids is None else Schedule.objects.filter(team__in=ids)
        form.fields["team"].queryset = teams
        form.fields["primary_schedule"].queryset = schedules
        form.fields["secondary_schedule"].queryset = schedules
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                chain = chain_templates.chain_template_apply(
                    team=data["team"], key=data["template"], name=data["name"],
                    primary=data["primary_schedule"], secondary=data["secondary_schedule"],
                    is_default=data["is_default"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"Created chain {chain.name!r} with {chain.steps.count()} steps.")
                return HttpResponseRedirect(reverse("admin:oncall_escalationchain_change", args=[chain.pk]))
        context = {**self.admin_site.each_context(request), "title": "New escalation chain from a template",
                   "form": form, "opts": self.model._meta}
        return TemplateResponse(request, "admin/oncall/escalationchain/from_template.html", context)


@admin.register(EscalationRoute)
class EscalationRouteAdmin(TeamScopedAdmin):
    list_display = ["name", "team", "position", "chain", "conditions", "wait_until"]
    list_editable = ["position"]
    list_filter = ["team"]
    filter_horizontal = ["services"]
    fields = ["team", "name", "position", "chain", "services", "severities", "priorities", "days",
              "start_time", "end_time", "timezone", "wait_until"]

    @admin.display(description="matches")
    def conditions(self, obj: EscalationRoute) -> str:
        parts = [", ".join(obj.severities) or "any severity"]
        if obj.priorities:
            parts.append(", ".join(obj.priorities))
        if obj.days:
            parts.append(" ".join(obj.days))
        if obj.start_time is not None:
            parts.append(f"{obj.start_time:%H:%M}-{obj.end_time:%H:%M} {obj.timezone}")
        return "; ".join(parts)


@admin.register(OutgoingWebhook)
class OutgoingWebhookAdmin(TeamScopedAdmin):
    list_display = ["name", "team", "url", "enabled"]
    list_filter = ["team", "enabled"]


# --------------------------------------------------------------------------- people


class PeopleAdmin(admin.ModelAdmin):
    """Your own contact methods and rules; managers also see their teams' members'.
    Changes: your own only (superusers: anyone's)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return people_scope(super().get_queryset(request), request.user)

    def _own(self, request: HttpRequest, obj: Any) -> bool:
        return obj is None or obj.user_id == request.user.pk or permissions.sees_all_teams(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request) and self._own(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if permissions.sees_all_teams(request.user) else ["user"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change and not permissions.sees_all_teams(request.user):
            obj.user = request.user
        if not self._own(request, obj):
            raise PermissionDenied
        super().save_model(request, obj, form, change)


class ContactMethodForm(forms.ModelForm):
    code = forms.CharField(required=False, max_length=12, label="Confirmation code",
                           help_text="The code from the verification message "
                           "(action: send a verification code).")

    class Meta:
        model = ContactMethod
        fields = ["user", "kind", "label", "address", "secret", "send_updates"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            validate_contact_address(data.get("kind", ""), data.get("address", ""))
        except ValidationError as exc:
            self.add_error("address", exc)
        code = data.get("code", "").strip()
        if code and self.instance.pk and self.instance.verification_code != code:
            self.add_error("code", "Wrong code; send a new verification code and try again.")
        return data


@admin.register(ContactMethod)
class ContactMethodAdmin(PeopleAdmin):
    form = ContactMethodForm
    list_display = ["address", "kind", "user", "is_verified", "send_updates"]
    list_filter = ["kind", "send_updates"]
    search_fields = ["address", "user__username"]
    actions = ["send_test", "send_verification"]

    @admin.display(description="verified", boolean=True)
    def is_verified(self, obj: ContactMethod) -> bool:
        return obj.verified

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = ["user", "kind", "label", "address", "secret", "send_updates", "verified_at"]
        return fields + ["code"] if obj is not None and not obj.verified else fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), "verified_at"]

    def save_model(self, request: HttpRequest, obj: ContactMethod, form: Any, change: bool) -> None:
        if change and {"address", "kind"} & set(form.changed_data):
            obj.verified_at = None  # a new address must be confirmed again
        if not change and obj.kind == ContactMethod.Kind.EMAIL and obj.address == request.user.email:
            obj.verified_at = timezone.now()
        super().save_model(request, obj, form, change)
        code = form.cleaned_data.get("code", "").strip()
        if code and notify.contact_method_verify(contact_method=obj, code=code):
            messages.success(request, f"{obj.address} is verified.")

    def _each(self, request: HttpRequest, queryset: QuerySet, send: Any, what: str) -> None:
        for method in queryset:
            if not self._own(request, method):
                messages.error(request, f"{method.address}: not yours.")
                continue
            note = send(contact_method=method)
            if note.status == Notification.Status.SENT:
                messages.success(request, f"{what} sent to {method.address}.")
            else:
                messages.error(request, f"{what} to {method.address} failed: {note.error}")

    @admin.action(description="Send a test notification")
    def send_test(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, notify.contact_method_send_test, "Test notification")

    @admin.action(description="Send a verification code")
    def send_verification(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, notify.contact_method_send_verification, "Verification code")


@admin.register(NotificationRule)
class NotificationRuleAdmin(PeopleAdmin):
    list_display = ["user", "contact_method", "delay_minutes", "urgency"]
    list_filter = ["urgency"]
    fields = ["user", "contact_method", "delay_minutes", "urgency"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "contact_method" and not permissions.sees_all_teams(request.user):
            kwargs["queryset"] = ContactMethod.objects.filter(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# --------------------------------------------------------------------------- logs


class ReadOnlyAdmin(ReadOnlyAdminMixin, TeamScopedAdmin):
    team_field = "incident__team"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "incident_link", "kind", "who", "channel", "address", "status", "attempts",
                    "sent_at", "short_error"]
    list_filter = ["status", "channel", "kind", ("incident__team", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["address", "user__username", "error"]
    date_hierarchy = "created_at"
    list_select_related = ["incident", "user", "webhook"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = admin.ModelAdmin.get_queryset(self, request)
        ids = permissions.visible_team_ids(request.user)
        return qs if ids is None else qs.filter(Q(incident__team_id__in=ids) | Q(user=request.user))

    @admin.display(description="incident", ordering="incident__number")
    def incident_link(self, obj: Notification) -> str:
        if obj.incident_id is None:
            return "-"
        url = reverse("admin:incidents_incident_change", args=[obj.incident_id])
        return format_html('<a href="{}">INC-{}</a>', url, obj.incident.number)

    @admin.display(description="to")
    def who(self, obj: Notification) -> str:
        if obj.user is not None:
            return obj.user.get_full_name() or obj.user.get_username()
        return obj.webhook.name if obj.webhook else "-"

    @admin.display(description="error")
    def short_error(self, obj: Notification) -> str:
        return obj.error[:80]


@admin.register(Escalation)
class EscalationAdmin(ReadOnlyAdmin):
    list_display = ["incident", "state", "position", "next_at", "pages_sent", "warning"]
    list_filter = ["state"]
    list_select_related = ["incident"]
    search_fields = ["warning"]

    @admin.display(description="step")
    def position(self, obj: Escalation) -> str:
        loops = int(obj.frozen.get("repeat", 0)) + 1
        return f"{obj.step_index + 1} of {len(obj.steps)}, loop {min(obj.loop + 1, loops)} of {loops}"


# --------------------------------------------------------------------------- panels


@incident_panel_register
def escalation_panel(request: HttpRequest, incident: Incident) -> dict[str, Any] | None:
    """The escalation state on the incident page."""
    summary = notify.escalation_summary(incident)
    notes = list(Notification.objects.filter(incident=incident).select_related("user", "webhook")
                 .order_by("-created_at", "-id")[:50])
    if summary is None and not notes:
        return None
    if summary and summary["next_at"]:
        seconds = int((summary["next_at"] - timezone.now()).total_seconds())
        summary["next_in"] = f"{max(seconds, 0) // 60} min {max(seconds, 0) % 60} s"
    log_url = reverse("admin:oncall_notification_changelist") + f"?incident__id__exact={incident.pk}"
    return {"template": "admin/oncall/escalation_panel.html", "escalation": summary, "notifications": notes,
            "log_url": log_url}


@admin.site.register_dashboard_panel
def escalation_warnings_panel(request: HttpRequest) -> dict[str, Any] | None:
    """Open incidents whose escalation paged no one: the most dangerous state there is."""
    open_incidents = permissions.scope_queryset(Incident.objects.exclude(status="resolved"), request.user)
    rows = list(Escalation.objects.filter(incident__in=open_incidents).exclude(warning="")
                .select_related("incident__service").order_by("-started_at")[:20])
    if not rows:
        return None
    return {"template": "admin/oncall/escalation_warnings_panel.html", "order": 5, "rows": rows}
