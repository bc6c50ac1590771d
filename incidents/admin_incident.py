"""The incidents changelist and incident page of the console.

The page is read-only as a model form: every change is a button or a small form that
POSTs (with CSRF) to ``<id>/do/<action>/``, which calls ``incidents.services`` and
reports the outcome as a message. The changelist runs a constant number of queries
whatever the page size and never counts alerts (``Incident.alert_count`` is kept by
the pipeline).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import SEARCH_VAR
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from incidents.admin import (
    ALERT_SEARCH_DAYS,
    CappedCountPaginator,
    CappedSelectAcross,
    ScopedRelatedFilter,
    _incident_number,
    person,
    severity_badge,
    short_age,
    status_badge,
)
from incidents.models import Alert, Incident, Priority, Service, Severity, TimelineEntry
from incidents.services import (
    ReopenConflict,
    Via,
    incident_acknowledge,
    incident_add_note,
    incident_assign_roles,
    incident_declare,
    incident_escalate,
    incident_mitigate,
    incident_reopen,
    incident_resolve,
    incident_set_priority,
    incident_set_severity,
    incident_unacknowledge,
    incidents_bulk,
)
from ircore import permissions
from ircore.admin import TeamScopedAdmin

User = get_user_model()

ALERTS_SHOWN = 25
# At most this many incidents (the newest) are found by their alerts' text.
ALERT_SEARCH_INCIDENTS = 5_000
# A search counts its matches up to here (20 pages), not CappedCountPaginator's 10,000:
# a common word matches tens of thousands of incidents, and counting 10,000 of them took
# 45 ms of the page's ~180 (1,000: 7 ms). Past this, refine the search.
SEARCH_COUNT_CAP = 1_000
CHANGES_BEFORE_HOURS = 6
TIMELINE_SHOWN = 100


class NoteForm(forms.Form):
    text = forms.CharField(label="Note", widget=forms.Textarea(attrs={"rows": 3}), max_length=10_000)


class SeverityForm(forms.Form):
    severity = forms.ChoiceField(choices=Severity.choices)


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(choices=Priority.choices)


class DeclareForm(forms.Form):
    service = forms.ModelChoiceField(queryset=Service.objects.none())
    title = forms.CharField(max_length=1024, widget=forms.TextInput(attrs={"size": 80}),
                            help_text="What is broken, as users see it.")
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.SEV2)
    priority = forms.ChoiceField(choices=[("", "from severity")] + Priority.choices, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 80}), required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = permissions.scope_queryset(
            Service.objects.select_related("team"), user)
        self.fields["service"].label_from_instance = lambda s: f"{s.name} ({s.team.name})"


class RolesForm(forms.Form):
    commander = forms.ModelChoiceField(queryset=User.objects.none(), required=False,
                                       label="Incident commander")
    communication_lead = forms.ModelChoiceField(queryset=User.objects.none(), required=False)
    responders = forms.ModelMultipleChoiceField(queryset=User.objects.none(), required=False,
                                                widget=forms.CheckboxSelectMultiple)
    stakeholders = forms.ModelMultipleChoiceField(queryset=User.objects.none(), required=False,
                                                  widget=forms.CheckboxSelectMultiple)
    war_room_url = forms.URLField(required=False, max_length=500, label="War room link",
                                  assume_scheme="https")

    def __init__(self, *args: Any, incident: Incident, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # People are picked among the incident's team: a small list, and it keeps other
        # teams' staff out of sight.
        members = User.objects.filter(team_memberships__team=incident.team_id, is_active=True).order_by(
            "first_name", "username")
        for name in ("commander", "communication_lead", "responders", "stakeholders"):
            self.fields[name].queryset = members
            self.fields[name].label_from_instance = person


def _form_errors(form: forms.Form) -> str:
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label or name.replace("_", " ") if name in form.fields else ""
        parts.append(f"{str(label).capitalize()}: {' '.join(errors)}" if label else " ".join(errors))
    return " ".join(parts)


@admin.register(Incident)
class IncidentAdmin(CappedSelectAcross, TeamScopedAdmin):
    responders_can_change = True
    list_display = ["ref_display", "title_display", "severity_display", "status_display",
                    "service", "age", "acknowledged_by_display", "alerts_display"]
    # One link per row: on a filtered or searched page Django resolves every row link's
    # URL again to carry the filters over (add_preserved_filters), ~0.35 ms each.
    list_display_links = ["title_display"]
    list_filter = ["status", "severity", "priority", ("service", ScopedRelatedFilter),
                   ("team", ScopedRelatedFilter), "triggered_at", "in_maintenance"]
    list_select_related = ["service", "acknowledged_by"]
    list_per_page = 50
    search_fields = ["title"]
    search_help_text = (f"INC-42 or 42, words of the title, or of an alert received in the last "
                        f"{ALERT_SEARCH_DAYS} days.")
    paginator = CappedCountPaginator
    show_full_result_count = False
    # Facet counts are one COUNT per filter choice over 100k+ rows: never offered.
    show_facets = admin.ShowFacets.NEVER
    actions = ["acknowledge_selected", "resolve_selected"]
    change_form_template = "admin/incidents/incident/change_form.html"
    change_list_template = "admin/incidents/incident/change_list.html"
    fields = ["title", "status", "severity", "priority", "service", "team"]

    # ---------------------------------------------------------------- permissions

    def has_add_permission(self, request: HttpRequest) -> bool:
        # "Declare incident": any team member may open one by hand (a customer report);
        # it goes through incidents.services.incident_declare, not a model form.
        return permissions.is_team_member(request.user)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> Any:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DeclareForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                incident = incident_declare(
                    service=data["service"], title=data["title"], severity=data["severity"],
                    priority=data["priority"], description=data["description"], user=request.user,
                    via=Via.WEB)
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"{incident.ref} declared.", messages.SUCCESS)
                return redirect("admin:incidents_incident_change", incident.pk)
        context = {**self.admin_site.each_context(request), "title": "Declare an incident",
                   "opts": self.opts, "form": form, **(extra_context or {})}
        return TemplateResponse(request, "admin/incidents/incident/declare.html", context)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The record of what happened is kept; resolve instead.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # No model-form edits; the page's buttons are governed by "act" below.
        return False

    def has_act_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return permissions.is_team_member(request.user)
        return permissions.can_view_team(request.user, obj.team_id)

    # ---------------------------------------------------------------- changelist

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        return super().changelist_view(request, {"title": "Incidents", **(extra_context or {})})

    def get_paginator(self, request: HttpRequest, queryset: QuerySet, per_page: int, orphans: int = 0,
                      allow_empty_first_page: bool = True) -> CappedCountPaginator:
        paginator = super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        if request.GET.get(SEARCH_VAR, "").strip():
            paginator.CAP = SEARCH_COUNT_CAP
        return paginator

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        term = search_term.strip()
        if not term:
            return queryset, False
        number = _incident_number(term)
        if number is not None and not term.isdigit():
            return queryset.filter(number=number), False
        # Alert text is searched over the last ALERT_SEARCH_DAYS only: scanning every alert
        # ever received (a million rows) for a substring takes seconds; the received_at
        # index bounds it, and older incidents are still found by their title. The
        # matching incidents are read once, here, as a list: as a subquery OR-ed with the
        # title it ran twice (the page and its count) and kept PostgreSQL from using the
        # title's trigram index (migration 0006), scanning every incident instead.
        recent = timezone.now() - timedelta(days=ALERT_SEARCH_DAYS)
        alerts = Alert.objects.filter(received_at__gte=recent, summary__icontains=term)
        if permissions.visible_team_ids(request.user) is not None:
            # As a list, not a join: the planner cannot estimate a substring's selectivity
            # and joined services in a nested loop, reading the recent alerts once per service.
            services = permissions.scope_queryset(Service.objects.all(), request.user)
            alerts = alerts.filter(service_id__any_of=list(services.values_list("pk", flat=True)))
        newest_first = alerts.values_list("incident_id", flat=True).order_by("-incident_id").distinct()
        from_alerts = list(newest_first[:ALERT_SEARCH_INCIDENTS])
        matches = Q(title__icontains=term) | Q(pk__any_of=from_alerts)
        if number is not None:
            matches |= Q(number=number)
        return queryset.filter(matches), False

    @admin.display(description="ref", ordering="number")
    def ref_display(self, obj: Incident) -> str:
        return obj.ref

    @admin.display(description="title")
    def title_display(self, obj: Incident) -> str:
        title = obj.title if len(obj.title) <= 80 else obj.title[:79] + "…"
        if obj.in_maintenance:
            return format_html('{} <span class="ir-badge ir-muted">maintenance</span>', title)
        return title

    @admin.display(description="severity", ordering="severity")
    def severity_display(self, obj: Incident) -> str:
        return format_html('{} <span class="ir-badge ir-muted">{}</span>', severity_badge(obj.severity),
                           obj.priority)

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: Incident) -> str:
        return status_badge(obj.status)

    @admin.display(description="age", ordering="triggered_at")
    def age(self, obj: Incident) -> str:
        if obj.resolved_at:
            return format_html('<span title="resolved after">{}</span>',
                               "✓ " + short_age(obj.triggered_at, obj.resolved_at))
        return short_age(obj.triggered_at)

    @admin.display(description="alerts", ordering="alert_count")
    def alerts_display(self, obj: Incident) -> int:
        return obj.alert_count

    @admin.display(description="ack'd by")
    def acknowledged_by_display(self, obj: Incident) -> str:
        return person(obj.acknowledged_by) if obj.acknowledged_by_id else "-"

    # ---------------------------------------------------------------- bulk actions

    def _bulk(self, request: HttpRequest, queryset: QuerySet, action: Callable[..., bool], verb: str) -> None:
        selected = list(queryset)
        done = incidents_bulk(incidents=selected, action=action, user=request.user, via=Via.WEB)
        level = messages.SUCCESS if done else messages.WARNING
        unchanged = len(selected) - done
        self.message_user(request, f"{verb} {done} incident(s)"
                          + (f"; {unchanged} already were or could not be." if unchanged else "."), level)

    @admin.action(description="Acknowledge selected incidents", permissions=["act"])
    def acknowledge_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, incident_acknowledge, "Acknowledged")

    @admin.action(description="Resolve selected incidents", permissions=["act"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, incident_resolve, "Resolved")

    # ---------------------------------------------------------------- incident page

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        incident = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if incident is not None:
            context.update(self._page_context(request, incident))
        return super().change_view(request, object_id, form_url, context)

    def _page_context(self, request: HttpRequest, incident: Incident) -> dict[str, Any]:
        incident = (
            Incident.objects.select_related("service", "team", "commander", "communication_lead",
                                            "acknowledged_by", "resolved_by")
            .prefetch_related("responders", "stakeholders").get(pk=incident.pk)
        )
        alerts = list(incident.alerts.select_related("integration").order_by("-received_at", "-id")
                      [:ALERTS_SHOWN])
        timeline = list(incident.timeline.select_related("actor").order_by("-created_at", "-id")
                        [:TIMELINE_SHOWN + 1])
        roles_initial = {
            "commander": incident.commander, "communication_lead": incident.communication_lead,
            "responders": list(incident.responders.all()), "stakeholders": list(incident.stakeholders.all()),
            "war_room_url": incident.war_room_url,
        }
        # Deploys and config changes on the service shortly before the incident (PagerDuty
        # change events): the first suspects. Bounded by the (service, created_at) index.
        changes = list(
            TimelineEntry.objects.filter(
                service_id=incident.service_id, incident__isnull=True, kind=TimelineEntry.Kind.CHANGE,
                created_at__gte=incident.triggered_at - timedelta(hours=CHANGES_BEFORE_HOURS),
                created_at__lte=incident.resolved_at or timezone.now(),
            ).order_by("-created_at")[:10]
        )
        can_act = self.has_act_permission(request, incident)
        Status = Incident.Status
        from incidents.admin_panels import incident_panels  # e.g. oncall's escalation state

        return {
            "incident": incident,
            "extra_panels": incident_panels(request, incident),
            "can_act": can_act,
            "age": short_age(incident.triggered_at, incident.resolved_at),
            "alerts": alerts,
            "changes": changes,
            "changes_hours": CHANGES_BEFORE_HOURS,
            "alerts_more": max(incident.alert_count - len(alerts), 0),
            "alerts_url": reverse("admin:incidents_alert_changelist") + f"?incident__id__exact={incident.pk}",
            "timeline": timeline[:TIMELINE_SHOWN],
            "timeline_more": len(timeline) > TIMELINE_SHOWN,
            "timeline_url": reverse("admin:incidents_timelineentry_changelist")
            + f"?incident__id__exact={incident.pk}",
            "buttons": [
                (name, label, style) for name, label, style, allowed in [
                    ("acknowledge", "Acknowledge", "primary", incident.status == Status.TRIGGERED),
                    ("unacknowledge", "Un-acknowledge", "", incident.status == Status.ACKNOWLEDGED),
                    ("mitigate", "Mark mitigated", "", incident.is_open and not incident.mitigated_at),
                    ("resolve", "Resolve", "success", incident.is_open),
                    ("escalate", "Escalate", "danger", incident.is_open),
                    ("reopen", "Reopen", "", incident.status == Status.RESOLVED),
                ] if allowed
            ] if can_act else [],
            "note_form": NoteForm(auto_id="id_note_%s"),
            "severity_form": SeverityForm(initial={"severity": incident.severity}, auto_id="id_sev_%s"),
            "priority_form": PriorityForm(initial={"priority": incident.priority}, auto_id="id_prio_%s"),
            "roles_form": RolesForm(initial=roles_initial, incident=incident, auto_id="id_roles_%s"),
            "severity_badge": severity_badge(incident.severity),
            "status_badge": status_badge(incident.status),
            "title": f"{incident.ref} {incident.title}"[:120],
        }

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(self.act_view)
        return [path("<path:object_id>/do/<slug:action>/", view, name="incidents_incident_act"),
                *super().get_urls()]

    def act_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        handler = self._handlers().get(action)
        incident = self.get_object(request, unquote(object_id))
        if incident is None or handler is None:
            raise Http404("No such incident or action.")
        if not self.has_act_permission(request, incident):
            raise PermissionDenied
        handler(request, incident)
        return redirect("admin:incidents_incident_change", incident.pk)

    def _handlers(self) -> dict[str, Callable[[HttpRequest, Incident], None]]:
        def transition(service: Callable[..., bool], done: str, noop: str) -> Callable:
            def handle(request: HttpRequest, incident: Incident) -> None:
                if service(incident=incident, user=request.user, via=Via.WEB):
                    self.message_user(request, f"{incident.ref} {done}.", messages.SUCCESS)
                else:
                    incident.refresh_from_db(fields=["status"])
                    self.message_user(request, f"{incident.ref} is {incident.get_status_display().lower()}: "
                                      f"{noop}.", messages.WARNING)
            return handle

        return {
            "acknowledge": transition(incident_acknowledge, "acknowledged", "nothing to acknowledge"),
            "unacknowledge": transition(incident_unacknowledge, "is triggered again",
                                        "it was not acknowledged"),
            "resolve": transition(incident_resolve, "resolved", "it was already resolved"),
            "reopen": self._reopen,
            "mitigate": transition(incident_mitigate, "marked mitigated",
                                   "it is resolved or already mitigated"),
            "escalate": transition(incident_escalate, "escalated", "a resolved incident cannot escalate"),
            "note": self._note,
            "severity": self._severity,
            "priority": self._priority,
            "roles": self._roles,
        }

    def _reopen(self, request: HttpRequest, incident: Incident) -> None:
        try:
            changed = incident_reopen(incident=incident, user=request.user, via=Via.WEB)
        except ReopenConflict as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        if changed:
            self.message_user(request, f"{incident.ref} reopened.", messages.SUCCESS)
        else:
            self.message_user(request, f"{incident.ref} is open: nothing to reopen.", messages.WARNING)

    def _note(self, request: HttpRequest, incident: Incident) -> None:
        form = NoteForm(request.POST)
        if not form.is_valid():
            self.message_user(request, f"Note not added. {_form_errors(form)}", messages.ERROR)
            return
        try:
            incident_add_note(incident=incident, user=request.user, text=form.cleaned_data["text"],
                              via=Via.WEB)
        except ValueError as exc:
            self.message_user(request, f"Note not added: {exc}", messages.ERROR)
            return
        self.message_user(request, f"Note added to {incident.ref}.", messages.SUCCESS)

    def _severity(self, request: HttpRequest, incident: Incident) -> None:
        form = SeverityForm(request.POST)
        if not form.is_valid():
            self.message_user(request, f"Severity not changed. {_form_errors(form)}", messages.ERROR)
            return
        value = form.cleaned_data["severity"]
        if incident_set_severity(incident=incident, severity=value, user=request.user, via=Via.WEB):
            self.message_user(request, f"{incident.ref} is now {value}.", messages.SUCCESS)
        else:
            self.message_user(request, f"{incident.ref} already is {value}.", messages.WARNING)

    def _priority(self, request: HttpRequest, incident: Incident) -> None:
        form = PriorityForm(request.POST)
        if not form.is_valid():
            self.message_user(request, f"Priority not changed. {_form_errors(form)}", messages.ERROR)
            return
        value = form.cleaned_data["priority"]
        if incident_set_priority(incident=incident, priority=value, user=request.user, via=Via.WEB):
            self.message_user(request, f"{incident.ref} is now {value}.", messages.SUCCESS)
        else:
            self.message_user(request, f"{incident.ref} already is {value}.", messages.WARNING)

    def _roles(self, request: HttpRequest, incident: Incident) -> None:
        form = RolesForm(request.POST, incident=incident)
        if not form.is_valid():
            self.message_user(request, f"Roles not changed. {_form_errors(form)}", messages.ERROR)
            return
        changed = incident_assign_roles(incident=incident, user=request.user, via=Via.WEB,
                                        **form.cleaned_data)
        if changed:
            names = ", ".join(name.replace("_", " ") for name in changed)
            self.message_user(request, f"{incident.ref}: updated {names}.", messages.SUCCESS)
        else:
            self.message_user(request, f"{incident.ref}: roles unchanged.", messages.WARNING)
