"""Console for status pages. Team scoping through ircore.admin.TeamScopedAdmin (the
page's team). Component statuses, incidents and maintenance change only through
statuspage.services, so the uptime log and subscriber notifications are never skipped."""

from __future__ import annotations

import csv
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from ircore import permissions
from ircore.admin import ParentTeamInlineMixin, ReadOnlyAdminMixin, TeamScopedAdmin
from statuspage import services
from statuspage.models import (
    Component,
    ComponentGroup,
    ComponentServiceLink,
    ComponentStatus,
    ComponentStatusChange,
    Maintenance,
    PublicIncident,
    PublicUpdate,
    StatusPage,
    Subscriber,
    SubscriberDelivery,
    UpdateTemplate,
)
from statuspage.rendering import template_check


class PageScopedAdmin(TeamScopedAdmin):
    """Objects that belong to a page: foreign keys to pages, groups and components only
    offer the user's teams' objects."""

    team_field = "page__team"

    def scope_team_choices(self, db_field: Any, request: HttpRequest, kwargs: dict) -> None:
        model = db_field.related_model
        if model in (ComponentGroup, Component):
            kwargs["queryset"] = permissions.scope_queryset(model.objects.all(), request.user, "page__team")
        else:
            super().scope_team_choices(db_field, request, kwargs)


def _preview(page: StatusPage) -> str:
    return format_html('<a href="{}" target="_blank" rel="noopener">Open page</a>', page.get_absolute_url())


@admin.register(StatusPage)
class StatusPageAdmin(TeamScopedAdmin):
    list_display = [
        "title",
        "slug",
        "team",
        "visibility",
        "confirmed_subscribers",
        "open_incidents",
        "preview",
    ]
    list_filter = ["visibility"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    readonly_fields = ["changed_at", "preview"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _subs=Count("subscribers", filter=Q(subscribers__confirmed_at__isnull=False), distinct=True),
                _open=Count(
                    "incidents",
                    filter=Q(incidents__published=True) & ~Q(incidents__status="resolved"),
                    distinct=True,
                ),
            )
        )

    @admin.display(description="subscribers", ordering="_subs")
    def confirmed_subscribers(self, obj: StatusPage) -> int:
        return getattr(obj, "_subs", 0)

    @admin.display(description="open incidents", ordering="_open")
    def open_incidents(self, obj: StatusPage) -> int:
        return getattr(obj, "_open", 0)

    @admin.display(description="preview")
    def preview(self, obj: StatusPage) -> str:
        return _preview(obj) if obj.pk else "-"


@admin.register(ComponentGroup)
class ComponentGroupAdmin(PageScopedAdmin):
    list_display = ["name", "page", "position", "expanded"]
    list_filter = ["page"]
    list_editable = ["position"]


class ServiceLinkInline(admin.TabularInline):
    model = ComponentServiceLink
    extra = 0
    autocomplete_fields: list[str] = []

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "service":
            from incidents.models import Service

            kwargs["queryset"] = permissions.scope_queryset(Service.objects.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def _status_action(status: str, label: str):
    def action(modeladmin: ComponentAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        components = queryset.select_related("page")
        allowed = [c for c in components if permissions.can_manage_team(request.user, c.page.team_id)]
        changed = services.components_bulk_set_status(components=allowed, status=status, actor=request.user)
        modeladmin.message_user(request, f"{changed} component(s) set to {label.lower()}.", messages.SUCCESS)

    action.__name__ = f"set_{status}"
    return admin.action(description=f"Set status: {label}")(action)


@admin.register(Component)
class ComponentAdmin(PageScopedAdmin):
    list_display = ["name", "page", "group", "status_badge", "position", "show_uptime"]
    list_filter = ["page", "status"]
    search_fields = ["name"]
    inlines = [ServiceLinkInline]
    actions = [_status_action(value, label) for value, label in ComponentStatus.choices]

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Component) -> str:
        return obj.get_status_display()

    def save_model(self, request: HttpRequest, obj: Component, form: Any, change: bool) -> None:
        # The status goes through the service, which logs the change (uptime history).
        new_status = obj.status
        if change:
            obj.status = Component.objects.values_list("status", flat=True).get(pk=obj.pk)
        else:
            obj.status = ComponentStatus.OPERATIONAL
        super().save_model(request, obj, form, change)
        if new_status != obj.status:
            services.component_set_status(component=obj, status=new_status, actor=request.user)


Delivery = SubscriberDelivery.Status


class UpdateInline(ParentTeamInlineMixin, admin.TabularInline):
    # Viewable by the parent's team: without the mixin only superusers saw the updates
    # (and their delivery counts) under an incident or maintenance.
    model = PublicUpdate
    parent_team_field = "page__team"
    extra = 0
    can_delete = False
    fields = ["created_at", "status", "rendered", "author", "subscribers_told"]
    readonly_fields = fields
    ordering = ["-created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Counted in the same query as the updates (no query per row).
        def count(*statuses: str) -> Count:
            return Count("deliveries", filter=Q(deliveries__status__in=statuses))

        return super().get_queryset(request).annotate(
            told=count(Delivery.SENT),
            waiting=count(Delivery.PENDING, Delivery.SENDING),
            failed=count(Delivery.FAILED),
        )

    @admin.display(description="message")
    def rendered(self, obj: PublicUpdate) -> str:
        return format_html("{}", obj.body[:500])

    @admin.display(description="subscribers")
    def subscribers_told(self, obj: PublicUpdate) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:statuspage_subscriberdelivery_changelist")
        return format_html(
            '<a href="{}?update__id__exact={}">{} told, {} pending, {} failed</a>',
            url, obj.pk, obj.told, obj.waiting, obj.failed,
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False



def _template_choices() -> list[tuple[str, str]]:
    return [("", "---")] + [(str(t.pk), t.name) for t in UpdateTemplate.objects.order_by("name")]


class PostUpdateForm(forms.ModelForm):
    """The model fields plus an inline "post update" (status + markdown message)."""

    update_status = forms.ChoiceField(required=False, label="New update: status")
    update_template = forms.ChoiceField(
        required=False,
        label="Fill from template",
        help_text="Used when the message below is empty.",
    )
    update_body = forms.CharField(
        required=False,
        max_length=services.MAX_BODY,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 80}),
        label="New update: message",
        help_text="Markdown. Posting notifies subscribers (when published).",
    )

    status_choices: list[tuple[str, str]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["update_status"].choices = [("", "---")] + list(self.status_choices)
        self.fields["update_template"].choices = _template_choices()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        body = (data.get("update_body") or "").strip()
        template_id = data.get("update_template")
        if not body and template_id:
            template = UpdateTemplate.objects.filter(pk=template_id).first()
            if template is not None:
                body = template.body
                data["update_status"] = data.get("update_status") or template.update_status
        data["update_body"] = body
        if self.instance.pk is None and not body:
            self.add_error("update_body", "Write the first update (or pick a template).")
        if body and not data.get("update_status"):
            self.add_error("update_status", "Choose the status of this update.")
        return data


class IncidentForm(PostUpdateForm):
    status_choices = PublicIncident.Status.choices

    class Meta:
        model = PublicIncident
        fields = ["page", "name", "impact", "published", "components"]


class MaintenanceForm(PostUpdateForm):
    status_choices = Maintenance.Status.choices

    class Meta:
        model = Maintenance
        fields = [
            "page",
            "name",
            "impact",
            "published",
            "components",
            "scheduled_for",
            "scheduled_until",
            "auto_transition",
        ]

    def clean(self) -> dict[str, Any]:
        # The service refuses this too, but only after the form is valid: too late for a form error.
        data = super().clean()
        start, end = data.get("scheduled_for"), data.get("scheduled_until")
        if start and end and end <= start:
            self.add_error("scheduled_until", "The maintenance must end after it starts.")
        return data


# The form's own fields, shown under the model fields of both posting admins.
POST_UPDATE_FIELDS = ["update_status", "update_template", "update_body"]


class _PostingAdmin(PageScopedAdmin):
    responders_can_change = True
    inlines = [UpdateInline]
    filter_horizontal = ["components"]

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list:
        # No updates on the add form: the service posts the first one.
        return self.inlines if obj is not None else []

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The page cannot change once created (updates and notifications refer to it).
        return ["page", "status"] if obj is not None else []

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # On add, the service (in save_model) already set the components.
        if change:
            super().save_related(request, form, formsets, change)


@admin.register(PublicIncident)
class PublicIncidentAdmin(_PostingAdmin):
    form = IncidentForm
    list_display = ["name", "page", "status", "impact", "published", "started_at", "source_incident"]
    list_filter = ["page", "status", "impact", "published"]
    search_fields = ["name"]
    actions = ["publish_drafts"]
    fieldsets = [
        (None, {"fields": IncidentForm.Meta.fields}),
        ("Post an update", {"fields": POST_UPDATE_FIELDS}),
    ]

    def save_model(self, request: HttpRequest, obj: PublicIncident, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created = services.public_incident_create(
                page=obj.page,
                name=obj.name,
                body=data["update_body"],
                status=data["update_status"],
                impact=obj.impact,
                published=obj.published,
                author=request.user,
                component_statuses={c.pk: ComponentStatus.OPERATIONAL for c in data.get("components", [])},
            )
            obj.pk = created.pk
            obj.refresh_from_db()
            return
        super().save_model(request, obj, form, change)
        if data.get("update_body"):
            services.public_incident_post_update(
                incident=obj,
                status=data["update_status"],
                body=data["update_body"],
                author=request.user,
            )

    @admin.action(description="Publish selected drafts (notifies subscribers)")
    def publish_drafts(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = sum(
            1
            for incident in queryset.filter(published=False).select_related("page")
            if permissions.can_view_team(request.user, incident.page.team_id)
            and services.public_incident_publish(incident=incident, author=request.user)
        )
        self.message_user(request, f"{count} incident(s) published.", messages.SUCCESS)


@admin.register(Maintenance)
class MaintenanceAdmin(_PostingAdmin):
    form = MaintenanceForm
    list_display = ["name", "page", "status", "scheduled_for", "scheduled_until", "published"]
    list_filter = ["page", "status"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": MaintenanceForm.Meta.fields}),
        ("Post an update", {"fields": POST_UPDATE_FIELDS}),
    ]

    def save_model(self, request: HttpRequest, obj: Maintenance, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created = services.maintenance_create(
                page=obj.page,
                name=obj.name,
                body=data["update_body"],
                scheduled_for=obj.scheduled_for,
                scheduled_until=obj.scheduled_until,
                component_ids=[c.pk for c in data.get("components", [])],
                author=request.user,
                published=obj.published,
                impact=obj.impact,
                auto_transition=obj.auto_transition,
            )
            obj.pk = created.pk
            obj.refresh_from_db()
            return
        super().save_model(request, obj, form, change)
        if data.get("update_body"):
            services.maintenance_post_update(
                maintenance=obj,
                status=data["update_status"],
                body=data["update_body"],
                author=request.user,
            )


@admin.register(Subscriber)
class SubscriberAdmin(PageScopedAdmin):
    list_display = ["__str__", "page", "kind", "confirmed_at", "created_at"]
    list_filter = ["page", "kind", ("confirmed_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "webhook_url"]
    readonly_fields = ["confirmed_at", "created_at"]
    filter_horizontal = ["components"]
    actions = ["export_csv"]

    @admin.action(description="Export selected subscribers as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="subscribers.csv"'
        writer = csv.writer(response)
        writer.writerow(["page", "kind", "address", "confirmed_at", "created_at", "components"])
        for sub in queryset.select_related("page").prefetch_related("components"):
            writer.writerow(
                [
                    sub.page.slug,
                    sub.kind,
                    str(sub),
                    sub.confirmed_at.isoformat() if sub.confirmed_at else "",
                    sub.created_at.isoformat(),
                    ";".join(c.name for c in sub.components.all()),
                ]
            )
        return response


class UpdateTemplateForm(forms.ModelForm):
    class Meta:
        model = UpdateTemplate
        fields = ["page", "name", "event", "update_status", "title", "body"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for field in ("title", "body"):
            error = template_check(data.get(field) or "")
            if error:
                self.add_error(field, f"Template error: {error}")
        return data


@admin.register(UpdateTemplate)
class UpdateTemplateAdmin(PageScopedAdmin):
    """Shipped templates (no page) are visible to everyone and editable by superusers."""

    form = UpdateTemplateForm
    list_display = ["name", "page", "event", "update_status"]
    list_filter = ["event"]
    # The page is nullable, which Django's automatic select_related does not follow.
    list_select_related = ["page"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        base = UpdateTemplate.objects.all()
        ids = permissions.visible_team_ids(request.user)
        return base if ids is None else base.filter(Q(page__isnull=True) | Q(page__team__in=ids))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.page_id is None:
            return permissions.sees_all_teams(request.user)
        return super().has_change_permission(request, obj)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.page_id is None:
            return permissions.is_team_member(request.user)
        return super().has_view_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.page_id is None:
            return permissions.sees_all_teams(request.user)
        return super().has_delete_permission(request, obj)


@admin.register(SubscriberDelivery)
class SubscriberDeliveryAdmin(ReadOnlyAdminMixin, TeamScopedAdmin):
    """Who was told of which update or component change, and which sends fail: read-only."""

    team_field = "subscriber__page__team"
    list_display = [
        "address", "channel", "status", "about", "attempts", "sent_at", "short_error", "created_at"
    ]
    list_select_related = ["subscriber__page", "update__incident", "update__maintenance", "change__component"]
    list_filter = ["status", "channel"]
    search_fields = ["address"]
    date_hierarchy = "created_at"

    @admin.display(description="about")
    def about(self, obj: SubscriberDelivery) -> str:
        if obj.update_id is not None:
            item = obj.update.incident or obj.update.maintenance
            return f"{item.name}: {obj.update.status_label}"
        return f"{obj.change.component.name}: {obj.change.get_new_status_display()}"

    @admin.display(description="error")
    def short_error(self, obj: SubscriberDelivery) -> str:
        return obj.error[:120]


@admin.register(ComponentStatusChange)
class ComponentStatusChangeAdmin(ReadOnlyAdminMixin, TeamScopedAdmin):
    """The append-only log behind the uptime bars: read-only."""

    team_field = "component__page__team"
    list_display = ["component", "old_status", "new_status", "changed_at", "source", "actor"]
    list_select_related = ["component", "actor"]
    list_filter = ["source", "new_status"]
    date_hierarchy = "changed_at"


@admin.site.register_dashboard_panel
def status_pages_panel(request: HttpRequest) -> dict[str, Any] | None:
    """Each of the user's status pages as visitors see it, and drafts waiting to be published."""
    from statuspage.selectors import page_status

    unresolved = PublicIncident.objects.exclude(status="resolved")
    # Newest first; id breaks ties between drafts started in the same microsecond.
    drafts = (
        unresolved.filter(published=False).select_related("source_incident").order_by("-started_at", "-id")
    )
    pages = list(
        permissions.scope_queryset(StatusPage.objects.order_by("title"), request.user).prefetch_related(
            "components",
            Prefetch("incidents", queryset=unresolved.filter(published=True), to_attr="open_incidents"),
            Prefetch("incidents", queryset=drafts[:5], to_attr="drafts"),
        )[:20]
    )
    if not pages:
        return None
    rows = []
    for page in pages:
        indicator, description = page_status(list(page.components.all()), page.open_incidents)
        rows.append(
            {
                "page": page,
                "indicator": indicator,
                "description": description,
                "open": len(page.open_incidents),
                "drafts": page.drafts,
            }
        )
    return {"template": "statuspage/admin_dashboard_panel.html", "order": 40, "rows": rows}
