"""Console pages for problems (ITIL) and the actions added to the incidents list:
start a postmortem, link incidents to a problem."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join

from incidents import problems as problem_services
from incidents.admin import ScopedRelatedFilter
from incidents.admin_panels import incident_panel_register
from incidents.models import Incident, Problem
from ircore.admin import TeamScopedAdmin
from postmortems import services
from postmortems.admin import _messages

# --------------------------------------------------------------------------- problems


class ProblemForm(forms.ModelForm):
    class Meta:
        model = Problem
        fields = [
            "team",
            "title",
            "status",
            "impact",
            "root_cause",
            "workaround",
            "match_service",
            "match_keywords",
            "match_dedup_key",
        ]

    def _post_clean(self) -> None:
        super()._post_clean()
        try:
            problem_services.problem_validate(self.instance)
        except ValidationError as exc:
            self._update_errors(exc)


@admin.register(Problem)
class ProblemAdmin(TeamScopedAdmin):
    responders_can_change = True
    form = ProblemForm
    list_display = ["ref_title", "status", "team", "match_service", "incident_count", "updated_at"]
    list_filter = ["status", ("team", ScopedRelatedFilter)]
    search_fields = ["title", "root_cause", "workaround", "match_keywords", "impact"]
    search_help_text = "Search the known-error list: title, root cause, workaround, keywords."
    readonly_fields = ["linked_incidents", "linked_postmortems"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Problem]:
        return (
            super()
            .get_queryset(request)
            .select_related("team", "match_service")
            .annotate(_incidents=Count("incidents", distinct=True))
        )

    @admin.display(description="problem", ordering="number")
    def ref_title(self, obj: Problem) -> str:
        return f"{obj.ref} {obj.title}"

    @admin.display(description="incidents", ordering="_incidents")
    def incident_count(self, obj: Problem) -> int:
        return getattr(obj, "_incidents", 0)

    @admin.display(description="linked incidents")
    def linked_incidents(self, obj: Problem) -> str:
        rows = (
            (reverse("admin:incidents_incident_change", args=[i.pk]), i.ref, i.title[:60])
            for i in obj.incidents.all()[:100]
        )
        return format_html_join(", ", '<a href="{}">{}</a> {}', rows) or "-"

    @admin.display(description="postmortems")
    def linked_postmortems(self, obj: Problem) -> str:
        rows = (
            (reverse("admin:postmortems_postmortem_change", args=[p.pk]), p.title)
            for p in obj.postmortems.all()
        )
        return format_html_join(", ", '<a href="{}">{}</a>', rows) or "-"

    def save_model(self, request: HttpRequest, obj: Problem, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
        else:
            problem_services.problem_save_new(problem=obj, user=request.user)


# --------------------------------------------------------------------------- incident actions


@admin.action(description="Start a postmortem for the selected incidents")
def start_postmortem(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Incident]) -> Any:
    try:
        pm = services.postmortem_create(incidents=list(queryset), user=request.user)
    except ValidationError as exc:
        modeladmin.message_user(request, _messages(exc), messages.ERROR)
        return None
    modeladmin.message_user(request, f"Postmortem started: {pm.title}", messages.SUCCESS)
    return redirect("admin:postmortems_postmortem_change", pm.pk)


@admin.action(description="Link the selected incidents to a problem")
def link_to_problem(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Incident]) -> Any:
    incidents = list(queryset.select_related("team"))
    teams = {inc.team_id for inc in incidents}
    if len(teams) != 1:
        modeladmin.message_user(
            request, "Pick incidents of one team to link them to a problem.", messages.ERROR
        )
        return None
    team_id = teams.pop()
    choices = (
        Problem.objects.filter(team_id=team_id).exclude(status=Problem.Status.CLOSED).order_by("-number")
    )
    if request.POST.get("problem"):
        problem = (
            choices.filter(pk=request.POST["problem"]).first() if request.POST["problem"].isdigit() else None
        )
        if problem is None:
            modeladmin.message_user(request, "No such problem in this team.", messages.ERROR)
            return None
        try:
            new = problem_services.problem_link_incidents(
                problem=problem, incidents=incidents, user=request.user
            )
        except ValidationError as exc:
            modeladmin.message_user(request, _messages(exc), messages.ERROR)
            return None
        modeladmin.message_user(request, f"{len(new)} incident(s) linked to {problem.ref}.", messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "incidents": incidents,
        "problems": choices,
        "opts": modeladmin.model._meta,
        "title": "Link incidents to a problem",
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        "add_problem_url": reverse("admin:incidents_problem_add"),
    }
    return TemplateResponse(request, "postmortems/admin/link_to_problem.html", context)


def install_incident_actions(site: admin.AdminSite) -> None:
    """Offer the two actions on the incidents list (the incident admin lives in
    ``incidents``, which must not import postmortems)."""
    incident_admin = site._registry.get(Incident)
    if incident_admin is None:
        return
    actions = list(incident_admin.actions or [])
    for extra in (start_postmortem, link_to_problem):
        if extra not in actions:
            actions.append(extra)
    incident_admin.actions = actions


install_incident_actions(admin.site)


@incident_panel_register
def known_error_panel(request: HttpRequest, incident: Incident) -> dict[str, Any] | None:
    """"This looks like known error PRB-n" with its workaround, on the incident page,
    while the incident is open (afterwards the timeline entry keeps the record)."""
    if not incident.is_open:
        return None
    matches = problem_services.known_error_match(incident=incident)
    if not matches:
        return None
    return {"template": "admin/incidents/known_error_panel.html", "problems": matches}
