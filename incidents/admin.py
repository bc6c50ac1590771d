"""Operator console for services, integrations, triage rules, maintenance windows,
alerts, the timeline and incidents.

Every admin is a TeamScopedAdmin (ircore.admin): a user sees and picks only their
teams' objects. Incident state never changes through a model form: the buttons on the
incident page and the bulk actions POST to custom admin URLs that call
``incidents.services`` (see ``incidents.admin_incident``).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case, Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from incidents.alert_queue import QUEUE_LAG_WARNING_SECONDS, queue_health
from incidents.events import AlertEvent
from incidents.models import (
    Alert,
    Incident,
    Integration,
    MaintenanceWindow,
    Service,
    Severity,
    TimelineEntry,
    TriageRule,
)
from incidents.rule_templates import RULE_TEMPLATES, rule_templates_load
from incidents.services import IngestResult, alert_ingest, alert_reprocess
from ircore import permissions
from ircore.admin import ReadOnlyAdminMixin, TeamScopedAdmin
from ircore.models import Team

# --------------------------------------------------------------------------- shared pieces


# Free-text search over alert text looks at the alerts of the last ALERT_SEARCH_DAYS: a
# substring cannot use an index, and over a million alerts a word that matched nothing
# read them all (0.7-0.9 s per page). Older ones: by incident title, or a date filter.
ALERT_SEARCH_DAYS = 30


class CappedCountPaginator(Paginator):
    """Counts at most ``CAP + 1`` rows, so a page of a million-row table never runs a
    full COUNT(*); past the cap the changelist says "more than 10000" and still pages."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        # Unordered, so the database may stop after CAP + 1 rows in whatever order is
        # cheapest instead of walking the sort index.
        queryset = self.object_list
        if hasattr(queryset, "order_by"):
            queryset = queryset.order_by()
        return queryset[: self.CAP + 1].count()


class CappedSelectAcross:
    """For changelists paginated by CappedCountPaginator: Django's "Select all N" runs an
    action on every matching row, and N is then only "more than CAP" (a search for a common
    word, 16,000 matches, showed "Select all 1001"). Refused, with the reason, rather than
    resolving thousands of incidents the page never said it would. The action bar does not
    offer it there either (templates/admin/incidents/actions.html); this guards the POST."""

    def response_action(self, request: HttpRequest, queryset: QuerySet) -> Any:
        if request.POST.get("select_across", "0") not in ("", "0", "False", "false"):
            paginator = self.get_paginator(request, queryset, self.list_per_page)  # type: ignore[attr-defined]
            if isinstance(paginator, CappedCountPaginator) and paginator.count > paginator.CAP:
                self.message_user(  # type: ignore[attr-defined]
                    request, f"More than {paginator.CAP} rows match: narrow the list with a search or "
                    "filters, or select rows on this page, before acting on all of them.", messages.WARNING)
                return None  # the changelist shows the message; nothing was done
        return super().response_action(request, queryset)  # type: ignore[misc]


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A sidebar filter listing only the user's teams' objects (Django's default lists
    every row of the related table, which would leak other teams' service names)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        model = field.related_model
        if model is Team:
            queryset = permissions.visible_teams(request.user)
        elif hasattr(model, "team"):
            queryset = permissions.scope_queryset(model._default_manager.all(), request.user)
        else:
            queryset = permissions.scope_queryset(model._default_manager.all(), request.user, "service__team")
        return [(obj.pk, str(obj)) for obj in queryset]


SEVERITY_CSS = {"SEV1": "sev1", "SEV2": "sev2", "SEV3": "sev3", "SEV4": "sev4"}


def severity_badge(value: str) -> str:
    return format_html('<span class="ir-badge ir-{}">{}</span>', SEVERITY_CSS.get(value, "sev4"), value)


def status_badge(value: str) -> str:
    return format_html('<span class="ir-badge ir-status-{}">{}</span>', value, Incident.Status(value).label)


def short_age(since: datetime | None, until: datetime | None = None) -> str:
    """"3d 4h", "2h 5m", "42s": what a human scans in a column."""
    if since is None:
        return "-"
    seconds = int(((until or timezone.now()) - since).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if days:
        return f"{days}d {hours % 24}h"
    if hours:
        return f"{hours}h {minutes % 60}m"
    return f"{minutes}m"


def person(user: Any) -> str:
    if user is None:
        return "-"
    return user.get_full_name() or user.get_username()


def incident_link(incident: Incident | None) -> str:
    if incident is None:
        return "-"
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    return format_html('<a href="{}">{}</a>', url, incident.ref)


def scope_by_service(queryset: QuerySet, user: Any) -> QuerySet:
    """Scope alerts / timeline entries with ``service_id IN (<ids>)`` rather than a join
    on the service's team: with a literal list PostgreSQL keeps using the
    (incident, received_at) index, and an incident with 20,000 alerts pages in 1 ms
    instead of sorting them all. Which teams is still decided by ircore.permissions."""
    team_ids = permissions.visible_team_ids(user)
    if team_ids is None:
        return queryset
    service_ids = list(Service.objects.filter(team__in=team_ids).values_list("pk", flat=True))
    return queryset.filter(service_id__in=service_ids)


class ServiceScopedAdmin(TeamScopedAdmin):
    team_field = "service__team"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scope_by_service(admin.ModelAdmin.get_queryset(self, request), request.user)


def _team_mismatch(team: Team | None, objects: dict[str, Any]) -> dict[str, str]:
    """Form errors for related objects that belong to another team than ``team``."""
    errors = {}
    for name, obj in objects.items():
        if obj is None or team is None:
            continue
        obj_team = obj.team_id if hasattr(obj, "team_id") else obj.service.team_id
        if obj_team != team.pk:
            errors[name] = f"{obj} does not belong to team {team}."
    return errors


# --------------------------------------------------------------------------- services


class IntegrationInline(admin.TabularInline):
    model = Integration
    extra = 0
    fields = ["name", "kind", "enabled", "url_display"]
    readonly_fields = fields
    show_change_link = True
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or permissions.can_view_team(request.user, obj.team_id)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="URL to paste")
    def url_display(self, obj: Integration) -> str:
        return format_html("<code>{}</code>", obj.url)


@admin.register(Service)
class ServiceAdmin(TeamScopedAdmin):
    list_display = ["name", "team", "open_incidents", "integration_count", "ack_timeout",
                    "auto_resolve_timeout"]
    list_filter = [("team", ScopedRelatedFilter)]
    list_select_related = ["team"]
    search_fields = ["name", "description"]
    inlines = [IntegrationInline]
    fields = ["team", "name", "description", "ack_timeout", "auto_resolve_timeout"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        open_count = (
            Incident.objects.filter(service=OuterRef("pk"))
            .exclude(status=Incident.Status.RESOLVED)
            .order_by().values("service").annotate(n=Count("pk")).values("n")
        )
        integrations = (
            Integration.objects.filter(service=OuterRef("pk"))
            .order_by().values("service").annotate(n=Count("pk")).values("n")
        )
        return super().get_queryset(request).annotate(
            _open=Coalesce(Subquery(open_count, output_field=IntegerField()), Value(0)),
            _integrations=Coalesce(Subquery(integrations, output_field=IntegerField()), Value(0)),
        )

    @admin.display(description="open incidents", ordering="_open")
    def open_incidents(self, obj: Service) -> str:
        if not obj._open:
            return "0"
        url = reverse("admin:incidents_incident_changelist")
        return format_html('<a href="{}?service__id__exact={}&status__in=triggered,acknowledged">{}</a>',
                           url, obj.pk, obj._open)

    @admin.display(description="integrations", ordering="_integrations")
    def integration_count(self, obj: Service) -> int:
        return obj._integrations


# --------------------------------------------------------------------------- integrations


def curl_example(integration: Integration) -> str:
    """A command that sends one real event, ready to paste in a terminal."""
    url, kind = integration.url, integration.kind
    Kind = Integration.Kind
    if kind == Kind.EMAIL:
        return f"Send an email to {url.removeprefix('mailto:')}"
    if kind == Kind.PAGERDUTY:
        body: Any = {"routing_key": integration.token, "event_action": "trigger", "dedup_key": "db-1-disk",
                     "payload": {"summary": "Disk full on db-1", "source": "db-1", "severity": "critical"}}
    elif kind == Kind.ALERTMANAGER:
        body = {"version": "4", "status": "firing", "receiver": "ircore",
                "groupKey": '{}:{alertname="DiskFull"}',
                "alerts": [{"status": "firing", "fingerprint": "db-1-disk",
                            "labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"},
                            "annotations": {"summary": "Disk full on db-1"},
                            "startsAt": "2026-01-01T00:00:00Z"}]}
    elif kind == Kind.GRAFANA:
        body = {"receiver": "ircore", "status": "firing", "title": "[FIRING:1] DiskFull",
                "alerts": [{"status": "firing", "fingerprint": "db-1-disk",
                            "labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"},
                            "annotations": {"summary": "Disk full on db-1"}}]}
    elif kind == Kind.HEARTBEAT:
        return f"curl -fsS -X POST '{url}'"
    else:
        body = {"summary": "Disk full on db-1", "severity": "critical", "dedup_key": "db-1-disk",
                "source": "db-1", "labels": {"env": "prod"}}
    payload = json.dumps(body).replace("'", "'\\''")
    return f"curl -fsS -X POST '{url}' \\\n  -H 'Content-Type: application/json' \\\n  -d '{payload}'"


def integration_send_test(*, integration: Integration, user: Any) -> IngestResult:
    """Run a clearly-labelled test event through the real pipeline (triage, dedup,
    incident, timeline), exactly as if the monitoring tool had sent it."""
    if not integration.enabled:
        raise ValueError(f"{integration} is disabled: enable it before sending a test alert.")
    event = AlertEvent(
        summary=f"Test alert from the ircore console ({integration.name})",
        details=f"Sent by {person(user)} to check that {integration.service} receives alerts.",
        severity=Severity.SEV4,
        source="ircore console",
        dedup_key=f"ircore-test-{uuid.uuid4().hex[:12]}",
        labels={"ircore_test": "true"},
        payload={"test": True, "sent_by": user.get_username()},
    )
    return alert_ingest(integration=integration, event=event)


@admin.register(Integration)
class IntegrationAdmin(TeamScopedAdmin):
    team_field = "service__team"
    list_display = ["name", "service", "kind", "enabled", "url_display"]
    list_filter = ["kind", "enabled", ("service", ScopedRelatedFilter)]
    list_select_related = ["service", "service__team"]
    search_fields = ["name", "service__name"]
    readonly_fields = ["token", "url_display", "curl_display"]
    fieldsets = [
        (None, {"fields": ["service", "name", "kind", "enabled"]}),
        ("Connect your monitoring tool", {"fields": ["url_display", "token", "curl_display"]}),
        ("Options", {"fields": ["options", "rate_limit_per_minute"], "classes": ["collapse"]}),
    ]
    actions = ["send_test_alert"]
    change_form_template = "admin/incidents/integration/change_form.html"

    @admin.display(description="URL to paste")
    def url_display(self, obj: Integration) -> str:
        if obj.pk is None:
            return "Shown once the integration is saved."
        return format_html('<code class="ir-copy">{}</code>', obj.url)

    @admin.display(description="try it")
    def curl_display(self, obj: Integration) -> str:
        if obj.pk is None:
            return "-"
        return format_html('<pre class="ir-pre">{}</pre>', curl_example(obj))

    def _send_test(self, request: HttpRequest, integration: Integration) -> None:
        if not self.has_change_permission(request, integration):
            self.message_user(request, f"Only a manager of its team may test {integration}.", messages.ERROR)
            return
        try:
            result = integration_send_test(integration=integration, user=request.user)
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        link = ""
        if result.incident:
            url = reverse("admin:incidents_incident_change", args=[result.incident.pk])
            link = format_html(' <a href="{}">Open {} →</a>', url, result.incident.ref)
        self.message_user(
            request, format_html("Test alert sent to {}: {}.{}", integration, result.message, link),
            messages.SUCCESS,
        )

    @admin.action(description="Send a test alert", permissions=["change"])
    def send_test_alert(self, request: HttpRequest, queryset: QuerySet) -> None:
        for integration in queryset.select_related("service"):
            self._send_test(request, integration)

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(self.send_test_view)
        return [path("<path:object_id>/send-test/", view, name="incidents_integration_send_test"),
                *super().get_urls()]

    def send_test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        integration = self.get_object(request, unquote(object_id))
        if integration is None:
            raise Http404("No such integration.")
        if not self.has_change_permission(request, integration):
            raise PermissionDenied
        self._send_test(request, integration)
        return redirect("admin:incidents_integration_change", integration.pk)


# --------------------------------------------------------------------------- triage rules


class TriageRuleForm(forms.ModelForm):
    class Meta:
        model = TriageRule
        fields = [
            "team", "name", "enabled", "position", "continue_processing", "match_keywords", "match_labels",
            "match_source", "match_severity", "match_service", "match_integration", "set_severity",
            "set_priority", "route_to_service", "suppress", "set_dedup_key",
        ]

    def clean_match_labels(self) -> dict:
        labels = self.cleaned_data.get("match_labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str | int) for v in labels.values()):
            raise forms.ValidationError('Give labels as a JSON object of strings, e.g. {"env": "prod*"}.')
        return labels

    def clean(self) -> dict:
        data = super().clean()
        errors = _team_mismatch(data.get("team"), {
            name: data.get(name) for name in ("match_service", "match_integration", "route_to_service")
        })
        for name, message in errors.items():
            self.add_error(name, message)
        has_action = any(data.get(name) for name in (
            "set_severity", "set_priority", "route_to_service", "suppress", "set_dedup_key"))
        if not has_action and not self.errors:
            raise forms.ValidationError("A rule needs at least one action (severity, priority, route, "
                                        "suppress or dedup key).")
        return data


class RuleTemplatesForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none())
    templates = forms.MultipleChoiceField(
        choices=[(tpl.key, tpl.name) for tpl in RULE_TEMPLATES], widget=forms.CheckboxSelectMultiple,
        initial=[tpl.key for tpl in RULE_TEMPLATES if not tpl.needs_service],
    )
    route_service = forms.ModelChoiceField(
        queryset=Service.objects.none(), required=False, label="Service to route to",
        help_text='Only for "Route by service label".',
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ids = permissions.managed_team_ids(user)
        teams = Team.objects.all() if ids is None else Team.objects.filter(pk__in=ids)
        services = Service.objects.select_related("team")
        self.fields["team"].queryset = teams
        self.fields["route_service"].queryset = services if ids is None else services.filter(team__in=ids)
        if teams.count() == 1:
            self.fields["team"].initial = teams.first()


@admin.register(TriageRule)
class TriageRuleAdmin(TeamScopedAdmin):
    form = TriageRuleForm
    list_display = ["position", "name", "team", "enabled", "conditions", "rule_actions",
                    "continue_processing"]
    list_display_links = ["name"]
    list_editable = ["position", "enabled"]
    list_filter = ["enabled", ("team", ScopedRelatedFilter)]
    list_select_related = ["team", "match_service", "match_integration", "route_to_service"]
    search_fields = ["name", "match_keywords"]
    ordering = ["team__name", "position", "id"]
    change_list_template = "admin/incidents/triagerule/change_list.html"
    fieldsets = [
        (None, {"fields": ["team", "name", "enabled", "position", "continue_processing"]}),
        ("When an alert matches (every condition that is set)", {"fields": [
            "match_keywords", "match_labels", "match_source", "match_severity", "match_service",
            "match_integration"]}),
        ("Then", {"fields": ["set_severity", "set_priority", "route_to_service", "suppress",
                             "set_dedup_key"]}),
    ]

    @admin.display(description="when")
    def conditions(self, obj: TriageRule) -> str:
        parts = []
        if obj.match_keywords:
            words = [w.strip() for w in obj.match_keywords.replace(",", "\n").splitlines() if w.strip()]
            parts.append("text has " + " or ".join(f'"{w}"' for w in words))
        parts += [f"{k}={v}" for k, v in (obj.match_labels or {}).items()]
        if obj.match_source:
            parts.append(f"source {obj.match_source}")
        if obj.match_severity:
            parts.append(f"severity {obj.match_severity}")
        if obj.match_service:
            parts.append(f"service {obj.match_service}")
        if obj.match_integration:
            parts.append(f"from {obj.match_integration.name}")
        return "; ".join(parts) or "every alert"

    @admin.display(description="then")
    def rule_actions(self, obj: TriageRule) -> str:
        parts = []
        if obj.suppress:
            parts.append("suppress")
        if obj.set_severity:
            parts.append(obj.set_severity)
        if obj.set_priority:
            parts.append(obj.set_priority)
        if obj.route_to_service:
            parts.append(f"route to {obj.route_to_service}")
        if obj.set_dedup_key:
            parts.append(f"dedup key {obj.set_dedup_key}")
        return ", ".join(parts) or "-"

    def save_model(self, request: HttpRequest, obj: TriageRule, form: Any, change: bool) -> None:
        if not change and not obj.position:
            # A new rule goes last, leaving room to slot rules in between.
            last = TriageRule.objects.filter(team=obj.team_id).order_by("-position").first()
            obj.position = (last.position if last else 0) + 10
        super().save_model(request, obj, form, change)

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(self.load_templates_view)
        return [path("load-templates/", view, name="incidents_triagerule_load_templates"),
                *super().get_urls()]

    def load_templates_view(self, request: HttpRequest) -> HttpResponse:
        if not permissions.is_any_team_manager(request.user):
            raise PermissionDenied
        form = RuleTemplatesForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            try:
                result = rule_templates_load(
                    team=form.cleaned_data["team"], keys=form.cleaned_data["templates"],
                    route_service=form.cleaned_data["route_service"],
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                if result.created:
                    names = ", ".join(rule.name for rule in result.created)
                    self.message_user(request, f"Created {len(result.created)} rule(s): {names}.",
                                      messages.SUCCESS)
                if result.skipped:
                    self.message_user(request, f"Already present, skipped: {', '.join(result.skipped)}.",
                                      messages.WARNING)
                return redirect("admin:incidents_triagerule_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Load triage rule templates",
            "opts": self.opts,
            "form": form,
            "templates": RULE_TEMPLATES,
        }
        return TemplateResponse(request, "admin/incidents/triagerule/load_templates.html", context)


# --------------------------------------------------------------------------- maintenance


class MaintenanceWindowForm(forms.ModelForm):
    class Meta:
        model = MaintenanceWindow
        fields = ["team", "services", "starts_at", "ends_at", "reason"]
        widgets = {"services": forms.CheckboxSelectMultiple}

    def clean(self) -> dict:
        data = super().clean()
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The window must end after it starts.")
        team = data.get("team")
        for service in data.get("services") or []:
            if team is not None and service.team_id != team.pk:
                self.add_error("services", f"{service} does not belong to team {team}.")
        return data


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(TeamScopedAdmin):
    form = MaintenanceWindowForm
    list_display = ["__str__", "team", "starts_at", "ends_at", "state", "service_names"]
    list_filter = [("team", ScopedRelatedFilter), "starts_at"]
    list_select_related = ["team"]
    search_fields = ["reason"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("services")

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        kwargs["widget"] = forms.CheckboxSelectMultiple
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description="state")
    def state(self, obj: MaintenanceWindow) -> str:
        now = timezone.now()
        if obj.covers(now):
            return format_html('<span class="ir-badge ir-status-acknowledged">{}</span>', "in progress")
        return "upcoming" if obj.starts_at > now else "past"

    @admin.display(description="services")
    def service_names(self, obj: MaintenanceWindow) -> str:
        return ", ".join(service.name for service in obj.services.all())

    def save_model(self, request: HttpRequest, obj: MaintenanceWindow, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


# --------------------------------------------------------------------------- alerts, timeline


@admin.register(Alert)
class AlertAdmin(CappedSelectAcross, ReadOnlyAdminMixin, ServiceScopedAdmin):
    list_display = ["received_at", "summary_short", "service", "severity_display", "action", "outcome",
                    "incident_display", "in_maintenance"]
    list_filter = ["outcome", "action", "severity", ("service", ScopedRelatedFilter), "in_maintenance",
                   "received_at"]
    list_select_related = ["service", "incident"]
    search_fields = ["summary"]
    search_help_text = (f"Words in the summary or an exact dedup key, among the last {ALERT_SEARCH_DAYS} "
                        "days' alerts (pick a date filter to search further back); or INC-42 for an "
                        "incident's alerts.")
    paginator = CappedCountPaginator
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ["reprocess_failed"]
    readonly_fields = ["payload_display"]
    exclude = ["payload"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        term = search_term.strip()
        if not term:
            return queryset, False
        number = _incident_number(term)
        if number is not None and term.lower().startswith("inc"):
            return queryset.filter(incident__number=number), False
        if not any(key.startswith("received_at__") for key in request.GET):  # no date filter chosen
            recent = timezone.now() - timedelta(days=ALERT_SEARCH_DAYS)
            queryset = queryset.filter(received_at__gte=recent)
        return queryset.filter(Q(summary__icontains=term) | Q(dedup_key=term)), False

    def has_act_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.is_team_member(request.user)

    @admin.display(description="summary")
    def summary_short(self, obj: Alert) -> str:
        return obj.summary if len(obj.summary) <= 90 else obj.summary[:89] + "…"

    @admin.display(description="severity", ordering="severity")
    def severity_display(self, obj: Alert) -> str:
        return severity_badge(obj.severity)

    @admin.display(description="incident")
    def incident_display(self, obj: Alert) -> str:
        return incident_link(obj.incident)

    @admin.display(description="payload as received")
    def payload_display(self, obj: Alert) -> str:
        return format_html('<pre class="ir-pre">{}</pre>', json.dumps(obj.payload, indent=2, default=str))

    @admin.action(description="Re-process selected failed alerts", permissions=["act"])
    def reprocess_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        done, skipped = 0, 0
        for alert in queryset.filter(outcome=Alert.Outcome.FAILED).select_related("integration__service"):
            try:
                alert_reprocess(alert=alert)
            except Exception as exc:  # noqa: BLE001 - report each failure, keep going
                self.message_user(request, f"Alert {alert.pk} failed again: {exc}", messages.ERROR)
            else:
                done += 1
        skipped = queryset.exclude(outcome=Alert.Outcome.FAILED).count()
        self.message_user(request, f"Re-processed {done} failed alert(s)"
                          + (f"; {skipped} selected alert(s) had not failed and were left alone." if skipped
                             else "."), messages.SUCCESS if done else messages.WARNING)


@admin.register(TimelineEntry)
class TimelineEntryAdmin(ReadOnlyAdminMixin, ServiceScopedAdmin):
    list_display = ["created_at", "kind", "incident_display", "message", "actor", "via"]
    list_filter = ["kind", "via", ("service", ScopedRelatedFilter)]
    list_select_related = ["incident", "actor", "service"]
    search_fields = ["message"]
    paginator = CappedCountPaginator
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    ordering = ["-created_at", "-id"]

    @admin.display(description="incident")
    def incident_display(self, obj: TimelineEntry) -> str:
        return incident_link(obj.incident) if obj.incident_id else f"{obj.service} (service)"


def _incident_number(term: str) -> int | None:
    """``INC-42``, ``inc42``, ``#42`` or ``42`` -> 42."""
    cleaned = term.strip().lower().removeprefix("inc").lstrip("-# ")
    return int(cleaned) if cleaned.isdigit() and len(cleaned) < 19 else None


# --------------------------------------------------------------------------- dashboard


@admin.site.register_dashboard_panel
def alert_queue_panel(request: HttpRequest) -> dict[str, Any] | None:
    """Shown only when something is wrong: accepted alerts waiting longer than they
    should (no clock running?), or events the applier could not even keep."""
    health = queue_health()
    lagging = (health["oldest_seconds"] or 0) > QUEUE_LAG_WARNING_SECONDS
    if not lagging and not health["stuck"]:
        return None
    return {"template": "admin/incidents/alert_queue_panel.html", "order": 5, "lagging": lagging, **health}


@admin.site.register_dashboard_panel
def incidents_dashboard(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    incidents = permissions.scope_queryset(Incident.objects.all(), user)
    open_statuses = [Incident.Status.TRIGGERED, Incident.Status.ACKNOWLEDGED]
    open_qs = incidents.filter(status__in=open_statuses)
    by_severity = dict(
        open_qs.order_by().values_list("severity").annotate(n=Count("pk")).values_list("severity", "n")
    )
    unacked = open_qs.filter(status=Incident.Status.TRIGGERED).count()
    since = timezone.now() - timedelta(hours=24)
    open_list = list(
        open_qs.select_related("service", "acknowledged_by")
        .annotate(_unacked=Case(When(status=Incident.Status.TRIGGERED, then=0), default=1))
        .order_by("_unacked", "severity", "-triggered_at")[:25]
    )
    for incident in open_list:
        incident.age = short_age(incident.triggered_at)  # type: ignore[attr-defined]
    activity = list(
        scope_by_service(TimelineEntry.objects.all(), user)
        .select_related("incident", "actor", "service")
        .order_by("-created_at", "-id")[:15]
    )
    changelist = reverse("admin:incidents_incident_changelist")
    return {
        "template": "admin/incidents/dashboard_panel.html",
        "order": 10,
        "severities": [
            {"value": sev, "label": label, "count": by_severity.get(sev, 0), "css": SEVERITY_CSS[sev]}
            for sev, label in Severity.choices
        ],
        "open_total": sum(by_severity.values()),
        "unacked": unacked,
        "triggered_24h": incidents.filter(triggered_at__gte=since).count(),
        # Counted from the timeline (indexed by time) rather than Incident.resolved_at
        # (not indexed): a sequential scan of every incident otherwise.
        "resolved_24h": scope_by_service(TimelineEntry.objects.all(), user)
        .filter(kind=TimelineEntry.Kind.RESOLVED, created_at__gte=since)
        .values("incident_id").distinct().count(),
        "open_list": open_list,
        "activity": activity,
        "changelist_url": changelist,
    }


# The incident admin and the queue's admin live in their own modules; importing them
# registers them.
from incidents import admin_incident, admin_queue  # noqa: E402, F401
