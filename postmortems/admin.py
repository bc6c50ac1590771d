"""Console pages for postmortems, action items, templates and problems.

Every write goes through postmortems.services / incidents.problems, so the console and
the API refuse the same things and the audit log sees every change. The workflow
buttons POST (with CSRF) to ``<id>/do/<action>/``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from incidents.admin import ScopedRelatedFilter, person
from incidents.api.base import visible_users
from incidents.models import Incident
from ircore import permissions
from ircore.admin import ParentTeamInlineMixin, TeamScopedAdmin
from postmortems import selectors, services
from postmortems.models import ActionItem, Postmortem, PostmortemTemplate, PostmortemTimelineItem
from postmortems.rendering import postmortem_markdown, render_markdown

User = get_user_model()


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(
            f"{field.replace('_', ' ').capitalize()}: {' '.join(errs)}"
            if field != "__all__"
            else " ".join(errs)
            for field, errs in exc.message_dict.items()
        )
    return " ".join(exc.messages)


def _team_members(team_id: int) -> QuerySet:
    return User.objects.filter(team_memberships__team=team_id, is_active=True).order_by(
        "first_name", "username"
    )


STATUS_CSS = {"draft": "ir-muted", "in_review": "ir-sev3", "published": "ir-status-resolved"}


URL_FIELD = {models.URLField: {"assume_scheme": "https"}}


def _no_user_links(db_field: Any, formfield: Any) -> Any:
    """No add/change/delete/view icons next to a person picker: the user admin is for
    superusers, team members would land on a 403."""
    if db_field.name in ("owner", "reviewers") and formfield is not None:
        for flag in ("can_add_related", "can_change_related", "can_delete_related", "can_view_related"):
            if hasattr(formfield.widget, flag):
                setattr(formfield.widget, flag, False)
    return formfield


class ActionItemInline(ParentTeamInlineMixin, admin.TabularInline):
    model = ActionItem
    extra = 1
    formfield_overrides = URL_FIELD

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        return _no_user_links(db_field, super().formfield_for_dbfield(db_field, request, **kwargs))

    fields = ["title", "owner", "due_date", "priority", "kind", "status", "ticket_url"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is not None and permissions.can_manage_team(request.user, obj.team_id)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name != "owner":
            return super().formfield_for_foreignkey(db_field, request, **kwargs)
        kwargs["queryset"] = visible_users(request.user)
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        # Every row of the inline copies this field: read the people once, not once per row.
        formfield.choices = list(formfield.choices)
        return formfield


class TimelineItemInline(ParentTeamInlineMixin, admin.TabularInline):
    model = PostmortemTimelineItem
    extra = 0
    fields = ["at", "incident_ref", "event", "hidden", "annotation"]
    readonly_fields = ["at", "incident_ref", "event"]
    verbose_name_plural = "timeline (copied from the incidents; hide or annotate entries)"

    @admin.display(description="event")
    def event(self, obj: PostmortemTimelineItem) -> str:
        who = f" ({obj.actor})" if obj.actor else ""
        if obj.milestone:
            return format_html("<strong>{}</strong>{}", obj.message, who)
        return format_html("{}{}", obj.message, who)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, obj) and (obj is None or obj.status != Postmortem.Status.PUBLISHED)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StartPostmortemForm(forms.Form):
    incidents = forms.ModelMultipleChoiceField(
        queryset=Incident.objects.none(),
        help_text="Resolved incidents of one team.",
        widget=forms.SelectMultiple(attrs={"size": 10}),
    )
    template = forms.ModelChoiceField(
        queryset=PostmortemTemplate.objects.none(), required=False, empty_label="(default template)"
    )
    title = forms.CharField(
        max_length=255,
        required=False,
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Empty: 'Postmortem: INC-n <title>'.",
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        incidents = permissions.scope_queryset(Incident.objects.select_related("service"), user)
        resolved = incidents.filter(status=Incident.Status.RESOLVED).order_by("-resolved_at")
        field = self.fields["incidents"]
        field.queryset = resolved
        # Validate against every resolved incident, but only list the recent ones (and
        # any preselected): a select with 100k options helps nobody.
        wanted = [str(v) for v in (self.initial.get("incidents") or []) if str(v).isdigit()]
        shown = list(resolved[:300]) + list(resolved.filter(pk__in=wanted))
        seen: set[int] = set()
        field.choices = [
            (i.pk, f"{i.ref} [{i.severity}] {i.title[:80]}")
            for i in shown
            if not (i.pk in seen or seen.add(i.pk))
        ]
        templates = selectors.postmortem_templates_visible(user=user).select_related("team")
        self.fields["template"].queryset = templates
        self.fields["template"].label_from_instance = lambda t: (
            t.name + (f" ({t.team.name})" if t.team else "")
        )


class SubmitForm(forms.Form):
    reviewers = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, postmortem: Postmortem, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reviewers"].queryset = _team_members(postmortem.team_id)
        self.fields["reviewers"].label_from_instance = person
        self.fields["reviewers"].initial = list(postmortem.reviewers.values_list("pk", flat=True))


@admin.register(Postmortem)
class PostmortemAdmin(TeamScopedAdmin):
    responders_can_change = True
    list_display = ["title", "status_display", "team", "incident_refs", "owner", "open_items", "created_at"]
    list_filter = ["status", ("team", ScopedRelatedFilter), "created_at"]
    search_fields = ["title", "body"]
    fields = [
        "title",
        "owner",
        "body",
        "contributing_factors",
        "problems",
        "team",
        "status",
        "incident_links",
        "reviewer_names",
        "template",
        "published_at",
        "published_by",
    ]
    readonly_fields = [
        "team",
        "status",
        "incident_links",
        "reviewer_names",
        "template",
        "published_at",
        "published_by",
    ]
    inlines = [ActionItemInline, TimelineItemInline]
    change_form_template = "postmortems/admin/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Postmortem]:
        open_items = Count("action_items", filter=Q(action_items__status__in=ActionItem.OPEN_STATUSES))
        return (
            super()
            .get_queryset(request)
            .select_related("team", "owner")
            .prefetch_related("incidents")
            .annotate(_open_items=open_items)
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None and obj.status == Postmortem.Status.PUBLISHED:
            return ["title", "owner", "body_html", "contributing_factors", *self.readonly_fields]
        return list(self.readonly_fields)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None and obj.status == Postmortem.Status.PUBLISHED:
            return ["body_html" if f == "body" else f for f in self.fields]
        return list(self.fields)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "body":
            kwargs["widget"] = forms.Textarea(attrs={"rows": 30, "cols": 110, "class": "vLargeTextField"})
        return _no_user_links(db_field, super().formfield_for_dbfield(db_field, request, **kwargs))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "owner":
            kwargs["queryset"] = visible_users(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: Postmortem) -> str:
        return format_html(
            '<span class="ir-badge {}">{}</span>', STATUS_CSS[obj.status], obj.get_status_display()
        )

    @admin.display(description="incidents")
    def incident_refs(self, obj: Postmortem) -> str:
        return ", ".join(inc.ref for inc in obj.incidents.all())

    @admin.display(description="incidents")
    def incident_links(self, obj: Postmortem) -> str:
        return format_html_join(
            ", ",
            '<a href="{}">{}</a> {}',
            (
                (reverse("admin:incidents_incident_change", args=[i.pk]), i.ref, i.title[:60])
                for i in obj.incidents.all()
            ),
        )

    @admin.display(description="reviewers")
    def reviewer_names(self, obj: Postmortem) -> str:
        return ", ".join(person(u) for u in obj.reviewers.all()) or "-"

    @admin.display(description="open action items", ordering="_open_items")
    def open_items(self, obj: Postmortem) -> int:
        return getattr(obj, "_open_items", 0)

    @admin.display(description="body")
    def body_html(self, obj: Postmortem) -> str:
        return render_markdown(obj.body)

    # ---------------------------------------------------------------- saving via services

    def save_model(self, request: HttpRequest, obj: Postmortem, form: Any, change: bool) -> None:
        values = {
            name: form.cleaned_data[name] for name in form.changed_data if name in services.EDITABLE_FIELDS
        }
        try:
            if values:
                services.postmortem_update(postmortem=obj, user=request.user, **values)
            if "problems" in form.changed_data:
                services.postmortem_set_problems(
                    postmortem=obj, user=request.user, problems=form.cleaned_data["problems"]
                )
        except ValidationError as exc:
            self.message_user(request, _messages(exc), messages.ERROR)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # No form.save_m2m(): problems were set through the service in save_model.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        pm = form.instance
        # The admin's change message reads these; the services write the audit log.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if not inline_form.has_changed() or not hasattr(inline_form, "cleaned_data"):
                continue
            data = inline_form.cleaned_data
            instance = inline_form.instance
            try:
                if formset.model is PostmortemTimelineItem:
                    # The form already copied its values onto ``instance``: compare with the row.
                    services.postmortem_timeline_item_update(
                        item=PostmortemTimelineItem.objects.get(pk=instance.pk, postmortem=pm),
                        user=request.user,
                        hidden=data.get("hidden"),
                        annotation=data.get("annotation"),
                    )
                elif data.get("DELETE"):
                    if instance.pk and permissions.can_manage_team(request.user, pm.team_id):
                        services.action_item_delete(item=instance, user=request.user)
                else:
                    values = {
                        k: data.get(k) for k in inline_form.changed_data if k in services.ACTION_ITEM_FIELDS
                    }
                    if instance.pk:
                        services.action_item_update(
                            item=ActionItem.objects.get(pk=instance.pk), user=request.user, **values
                        )
                    else:
                        title = values.pop("title", "") or ""
                        services.action_item_create(postmortem=pm, user=request.user, title=title, **values)
            except ValidationError as exc:
                self.message_user(request, _messages(exc), messages.ERROR)

    # ---------------------------------------------------------------- start, workflow, export

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = (
            {"incidents": request.GET.get("incidents", "").split(",")} if request.GET.get("incidents") else {}
        )
        form = StartPostmortemForm(request.POST or None, user=request.user, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                pm = services.postmortem_create(
                    incidents=list(form.cleaned_data["incidents"]),
                    user=request.user,
                    template=form.cleaned_data["template"],
                    title=form.cleaned_data["title"],
                )
            except ValidationError as exc:
                form.add_error(None, _messages(exc))
            else:
                self.message_user(request, f"Postmortem started: {pm.title}", messages.SUCCESS)
                return redirect("admin:postmortems_postmortem_change", pm.pk)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.opts,
            "title": "Start a postmortem",
            "subtitle": None,
        }
        return TemplateResponse(request, "postmortems/admin/start.html", context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        pm = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if pm is not None:
            extra["submit_form"] = SubmitForm(postmortem=pm)
            extra["pm"] = pm
            extra["history"] = pm.changes.select_related("actor").order_by("-at", "-id")[:50]
            extra["can_publish"] = pm.reviewers.filter(
                pk=request.user.pk
            ).exists() or permissions.can_manage_team(request.user, pm.team_id)
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/do/<slug:action>/", wrap(self.act_view), name="postmortems_postmortem_act"
            ),
            path("<path:object_id>/print/", wrap(self.print_view), name="postmortems_postmortem_print"),
            path(
                "<path:object_id>/markdown/", wrap(self.markdown_view), name="postmortems_postmortem_markdown"
            ),
            *super().get_urls(),
        ]

    def _get_visible(self, request: HttpRequest, object_id: str) -> Postmortem:
        pm = self.get_object(request, unquote(object_id))
        if pm is None:
            raise Http404("No such postmortem.")
        return pm

    def act_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        pm = self._get_visible(request, object_id)
        if not self.has_change_permission(request, pm):
            raise PermissionDenied
        try:
            if action == "submit":
                form = SubmitForm(request.POST, postmortem=pm)
                if not form.is_valid():
                    raise ValidationError("Pick at least one reviewer from the team.")
                services.postmortem_submit_for_review(
                    postmortem=pm, user=request.user, reviewers=form.cleaned_data["reviewers"]
                )
                done = "Submitted for review."
            elif action == "return":
                services.postmortem_return_to_draft(
                    postmortem=pm, user=request.user, reason=request.POST.get("reason", "")[:2000]
                )
                done = "Returned to draft."
            elif action == "publish":
                services.postmortem_publish(postmortem=pm, user=request.user)
                done = "Published."
            elif action == "summary":
                updates = services.postmortem_publish_public_summary(
                    postmortem=pm, user=request.user, summary=request.POST.get("summary", "")[:20_000]
                )
                done = f"Summary posted on {len(updates)} status page incident(s)."
            elif action == "refresh":
                added = services.postmortem_timeline_refresh(postmortem=pm, user=request.user)
                done = f"Timeline refreshed: {added} new entries."
            else:
                raise Http404("No such action.")
        except ValidationError as exc:
            self.message_user(request, _messages(exc), messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return redirect("admin:postmortems_postmortem_change", pm.pk)

    def print_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        pm = self._get_visible(request, object_id)
        context = {
            "pm": pm,
            "body": render_markdown(pm.body),
            "factors": [f.strip().lstrip("-* ") for f in pm.contributing_factors.splitlines() if f.strip()],
            "items": pm.action_items.select_related("owner"),
            "timeline": pm.timeline.filter(hidden=False),
            "incidents": pm.incidents.select_related("service"),
            "reviewers": [person(u) for u in pm.reviewers.all()],
            "printed_at": timezone.now(),
        }
        return TemplateResponse(request, "postmortems/print.html", context)

    def markdown_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        pm = self._get_visible(request, object_id)
        response = HttpResponse(postmortem_markdown(pm), content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="postmortem-{pm.pk}.md"'
        return response


class OverdueFilter(admin.SimpleListFilter):
    title = "due"
    parameter_name = "due"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("overdue", "Overdue"), ("week", "Due within 7 days")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        today = timezone.localdate()
        if self.value() == "overdue":
            return queryset.filter(ActionItem.overdue_q(today))
        if self.value() == "week":
            soon = today + timedelta(days=7)
            return queryset.filter(status__in=ActionItem.OPEN_STATUSES, due_date__range=(today, soon))
        return queryset


class MineFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "mine"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Mine")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(owner=request.user) if self.value() == "yes" else queryset


class ActionItemForm(forms.ModelForm):
    ticket_url = forms.URLField(
        required=False, max_length=500, assume_scheme="https", label="Ticket URL",
        help_text="Tracking ticket (Jira, GitHub, ...).",
    )

    class Meta:
        model = ActionItem
        fields = [
            "postmortem",
            "title",
            "description",
            "owner",
            "due_date",
            "priority",
            "kind",
            "status",
            "ticket_url",
        ]


@admin.register(ActionItem)
class ActionItemAdmin(TeamScopedAdmin):
    team_field = "postmortem__team"
    responders_can_change = True
    form = ActionItemForm
    formfield_overrides = URL_FIELD

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        return _no_user_links(db_field, super().formfield_for_dbfield(db_field, request, **kwargs))

    list_display = [
        "title",
        "postmortem_link",
        "owner",
        "due_display",
        "priority",
        "kind",
        "status",
        "ticket",
    ]
    list_filter = ["status", OverdueFilter, MineFilter, "kind", "priority"]
    list_select_related = ["postmortem", "owner"]
    search_fields = ["title", "description", "postmortem__title"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "owner":
            kwargs["queryset"] = visible_users(request.user)
            return super(TeamScopedAdmin, self).formfield_for_foreignkey(db_field, request, **kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["postmortem"] if obj is not None else []

    @admin.display(description="postmortem", ordering="postmortem__title")
    def postmortem_link(self, obj: ActionItem) -> str:
        url = reverse("admin:postmortems_postmortem_change", args=[obj.postmortem_id])
        return format_html('<a href="{}">{}</a>', url, obj.postmortem.title[:60])

    @admin.display(description="due", ordering="due_date")
    def due_display(self, obj: ActionItem) -> str:
        if obj.due_date is None:
            return "-"
        if obj.is_overdue:
            return format_html('<span class="ir-badge ir-sev1">overdue {}</span>', obj.due_date)
        return str(obj.due_date)

    @admin.display(description="ticket")
    def ticket(self, obj: ActionItem) -> str:
        if not obj.ticket_url:
            return "-"
        return format_html(
            '<a href="{}" rel="noopener noreferrer" target="_blank">ticket</a>', obj.ticket_url
        )

    def save_model(self, request: HttpRequest, obj: ActionItem, form: Any, change: bool) -> None:
        data = form.cleaned_data
        try:
            if change:
                values = {k: data[k] for k in form.changed_data if k in services.ACTION_ITEM_FIELDS}
                services.action_item_update(
                    item=ActionItem.objects.get(pk=obj.pk), user=request.user, **values
                )
            else:
                pm = data["postmortem"]
                if not permissions.can_view_team(request.user, pm.team_id):
                    raise PermissionDenied
                values = {k: data[k] for k in services.ACTION_ITEM_FIELDS if k in data and k != "title"}
                created = services.action_item_create(
                    postmortem=pm, user=request.user, title=data["title"], **values
                )
                obj.pk = created.pk
        except ValidationError as exc:
            self.message_user(request, _messages(exc), messages.ERROR)

    def delete_model(self, request: HttpRequest, obj: ActionItem) -> None:
        services.action_item_delete(item=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ActionItem]) -> None:
        for item in queryset.select_related("postmortem"):
            services.action_item_delete(item=item, user=request.user)


@admin.register(PostmortemTemplate)
class PostmortemTemplateAdmin(TeamScopedAdmin):
    list_display = ["name", "team_display", "is_default", "description"]
    search_fields = ["name", "description"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PostmortemTemplate]:
        # The shared templates (no team) are offered to everyone.
        return selectors.postmortem_templates_visible(user=request.user).select_related("team")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.team_id is None:
            return permissions.is_team_member(request.user)
        return super().has_view_permission(request, obj)

    def _can_write(self, request: HttpRequest, obj: Any) -> bool:
        if obj is not None and obj.team_id is None:
            return permissions.sees_all_teams(request.user)
        return super()._can_write(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.team_id is None:
            return permissions.sees_all_teams(request.user)
        return super().has_delete_permission(request, obj)

    @admin.display(description="team", ordering="team__name")
    def team_display(self, obj: PostmortemTemplate) -> str:
        return obj.team.name if obj.team else "(all teams)"


# --------------------------------------------------------------------------- dashboard


PANEL_ROWS = 15


def _head_and_total(queryset: QuerySet) -> tuple[list, int]:
    """First rows and the total; the COUNT query only runs when the list is cut."""
    rows = list(queryset[: PANEL_ROWS + 1])
    if len(rows) <= PANEL_ROWS:
        return rows, len(rows)
    return rows[:PANEL_ROWS], queryset.count()


@admin.site.register_dashboard_panel
def postmortems_dashboard(request: HttpRequest) -> dict[str, Any]:
    owing = selectors.incidents_owing_postmortem(user=request.user)
    overdue = selectors.action_items_overdue(user=request.user)
    owing_rows, owing_total = _head_and_total(owing)
    overdue_rows, overdue_total = _head_and_total(overdue)
    return {
        "template": "postmortems/admin/dashboard_panel.html",
        "order": 40,
        "owing": owing_rows,
        "owing_total": owing_total,
        "overdue": overdue_rows,
        "overdue_total": overdue_total,
        "required": ", ".join(sorted(services.required_severities())),
        "start_url": reverse("admin:postmortems_postmortem_add"),
        "overdue_url": reverse("admin:postmortems_actionitem_changelist") + "?due=overdue",
        "metrics_url": reverse("admin-metrics"),
    }


# Problems and the incident-list actions live in their own module; importing it registers them.
from postmortems import admin_problems  # noqa: E402, F401
