from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from incidents import problems as problem_services
from incidents.api.base import Conflict, TeamScopedModelViewSet, TeamWritePermission
from incidents.metrics import MetricsInputError, metrics_compute, metrics_range
from incidents.models import Incident, Problem, Service, TimelineEntry
from ircore import permissions
from ircore.api import IsTeamMember, TeamScopedViewSetMixin
from postmortems import selectors, services
from postmortems.api import serializers as s
from postmortems.models import ActionItem, Postmortem, PostmortemTemplate, PostmortemTimelineItem
from postmortems.rendering import postmortem_markdown

VIA = TimelineEntry.Via.API


def _bad_request(exc: DjangoValidationError) -> serializers.ValidationError:
    if hasattr(exc, "error_dict"):
        return serializers.ValidationError(exc.message_dict)
    return serializers.ValidationError({"detail": exc.messages})


def call_service(fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Map service refusals to HTTP: wrong state 409, role 403, bad input 400."""
    try:
        return fn(**kwargs)
    except services.TransitionRefused as exc:
        raise Conflict(" ".join(exc.messages)) from None
    except services.NotAllowed as exc:
        raise PermissionDenied(" ".join(exc.messages)) from None
    except DjangoValidationError as exc:
        raise _bad_request(exc) from None


# --------------------------------------------------------------------------- postmortems


class PostmortemViewSet(
    TeamScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Postmortems of the caller's teams. Any team member may write them; publishing
    needs a named reviewer or a team manager."""

    responders_can_write = True
    permission_classes = [IsAuthenticated, TeamWritePermission]
    http_method_names = ["get", "post", "patch", "head", "options"]
    queryset = Postmortem.objects.select_related("owner", "published_by")
    serializer_class = s.PostmortemSerializer
    filterset_fields = ["status", "team"]
    search_fields = ["title", "body"]
    ordering_fields = ["created_at", "updated_at", "published_at", "title"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> QuerySet[Postmortem]:
        return super().get_queryset().prefetch_related(
            "incidents", "problems", "reviewers",
            Prefetch("action_items", ActionItem.objects.select_related("owner")),
        )

    def _fresh(self, pm: Postmortem) -> dict[str, Any]:
        fresh = self.get_queryset().get(pk=pm.pk)
        return s.PostmortemSerializer(fresh, context=self.get_serializer_context()).data

    @extend_schema(request=s.PostmortemCreateSerializer, responses={201: s.PostmortemSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Start a postmortem from one or several resolved incidents of one team."""
        serializer = s.PostmortemCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        pm = call_service(services.postmortem_create, incidents=data["incidents"], user=request.user,
                          template=data.get("template"), title=data.get("title", ""))
        return Response(self._fresh(pm), status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        pm = self.get_object()
        serializer = self.get_serializer(pm, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        values = {k: v for k, v in serializer.validated_data.items() if k in services.EDITABLE_FIELDS}
        with transaction.atomic():
            if values:
                call_service(services.postmortem_update, postmortem=pm, user=request.user, **values)
            if "problems" in serializer.validated_data:
                call_service(services.postmortem_set_problems, postmortem=pm, user=request.user,
                             problems=serializer.validated_data["problems"])
        return Response(self._fresh(pm))

    def _transition(self, fn: Callable[..., Any], **kwargs: Any) -> Response:
        pm = self.get_object()
        call_service(fn, postmortem=pm, user=self.request.user, **kwargs)
        return Response(self._fresh(pm))

    @extend_schema(request=s.ReviewSerializer, responses=s.PostmortemSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str | None = None) -> Response:
        """Draft -> in review, optionally naming the reviewers (team members)."""
        serializer = s.ReviewSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        reviewers = serializer.validated_data.get("reviewers") or None
        return self._transition(services.postmortem_submit_for_review, reviewers=reviewers)

    @extend_schema(request=s.ReasonSerializer, responses=s.PostmortemSerializer)
    @action(detail=True, methods=["post"], url_path="return-to-draft")
    def return_to_draft(self, request: Request, pk: str | None = None) -> Response:
        serializer = s.ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._transition(services.postmortem_return_to_draft,
                                reason=serializer.validated_data.get("reason", ""))

    @extend_schema(request=None, responses=s.PostmortemSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        """In review -> published (a named reviewer or a team manager)."""
        return self._transition(services.postmortem_publish)

    @extend_schema(request=s.SummarySerializer, responses={201: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], url_path="publish-summary")
    def publish_summary(self, request: Request, pk: str | None = None) -> Response:
        """Post a public summary on the status page incidents of the postmortem's
        incidents (published postmortems only)."""
        pm = self.get_object()
        serializer = s.SummarySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        updates = call_service(services.postmortem_publish_public_summary, postmortem=pm, user=request.user,
                               summary=serializer.validated_data["summary"])
        posted = [{"status_page": u.incident.page.slug, "public_incident": u.incident_id, "update": u.pk}
                  for u in updates]
        return Response({"posted": posted}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.PostmortemTimelineItemSerializer(many=True))
    @action(detail=True, methods=["post"], url_path="refresh-timeline")
    def refresh_timeline(self, request: Request, pk: str | None = None) -> Response:
        """Copy incident timeline entries written since the last copy (draft only)."""
        pm = self.get_object()
        call_service(services.postmortem_timeline_refresh, postmortem=pm, user=request.user)
        return Response(s.PostmortemTimelineItemSerializer(pm.timeline.all(), many=True).data)

    @extend_schema(responses=s.PostmortemTimelineItemSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def timeline(self, request: Request, pk: str | None = None) -> Response:
        """The copied timeline, hidden entries included (flagged)."""
        pm = self.get_object()
        return Response(s.PostmortemTimelineItemSerializer(pm.timeline.all(), many=True).data)

    @extend_schema(request=s.PostmortemTimelineItemSerializer, responses=s.PostmortemTimelineItemSerializer)
    @action(detail=True, methods=["patch"], url_path=r"timeline/(?P<item_id>\d+)", filter_backends=[])
    def timeline_item(self, request: Request, pk: str | None = None, item_id: str | None = None) -> Response:
        """Hide or annotate one copied entry."""
        pm = self.get_object()
        item = PostmortemTimelineItem.objects.filter(postmortem=pm, pk=item_id).first()
        if item is None:
            return Response({"detail": "No such timeline entry in this postmortem."}, status=404)
        serializer = s.PostmortemTimelineItemSerializer(item, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        item = call_service(services.postmortem_timeline_item_update, item=item, user=request.user,
                            hidden=serializer.validated_data.get("hidden"),
                            annotation=serializer.validated_data.get("annotation"))
        return Response(s.PostmortemTimelineItemSerializer(item).data)

    @extend_schema(responses=s.PostmortemChangeSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def history(self, request: Request, pk: str | None = None) -> Response:
        """Who changed what, oldest first."""
        pm = self.get_object()
        return Response(s.PostmortemChangeSerializer(pm.changes.select_related("actor"), many=True).data)

    @extend_schema(responses={(200, "text/markdown"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], filter_backends=[])
    def markdown(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The whole postmortem as a Markdown file."""
        pm = self.get_object()
        response = HttpResponse(postmortem_markdown(pm), content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="postmortem-{pm.pk}.md"'
        return response


class ActionItemViewSet(TeamScopedModelViewSet):
    """Action items of the caller's teams' postmortems. ``?overdue=true`` lists open
    items past their due date."""

    team_field = "postmortem__team"
    responders_can_write = True
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    queryset = ActionItem.objects.select_related("owner", "postmortem")
    serializer_class = s.ActionItemSerializer
    filterset_fields = ["status", "kind", "priority", "postmortem"]
    search_fields = ["title", "description"]
    ordering_fields = ["due_date", "created_at", "priority", "status"]
    ordering = ["due_date", "id"]

    def get_queryset(self) -> QuerySet[ActionItem]:
        qs = super().get_queryset()
        overdue = self.request.query_params.get("overdue")
        owner = self.request.query_params.get("owner")
        if overdue is not None:
            if overdue not in ("true", "false"):
                raise serializers.ValidationError({"overdue": "Use true or false."})
            late = ActionItem.overdue_q()
            qs = qs.filter(late) if overdue == "true" else qs.exclude(late)
        if owner:
            qs = qs.filter(owner__username=owner)
        return qs

    def team_id_from_data(self, data: dict[str, Any]) -> int | None:
        pm = data.get("postmortem")
        return pm.team_id if pm is not None else None

    def perform_create(self, serializer: s.ActionItemSerializer) -> None:
        data = dict(serializer.validated_data)
        pm = data.pop("postmortem")
        self.check_team_write(pm.team_id)
        serializer.instance = call_service(services.action_item_create, postmortem=pm, user=self.request.user,
                                           **data)

    def perform_update(self, serializer: s.ActionItemSerializer) -> None:
        data = dict(serializer.validated_data)
        data.pop("postmortem", None)
        call_service(services.action_item_update, item=serializer.instance, user=self.request.user, **data)

    def perform_destroy(self, instance: ActionItem) -> None:
        services.action_item_delete(item=instance, user=self.request.user)


class PostmortemTemplateViewSet(TeamScopedModelViewSet):
    """Templates offered to the caller's teams: the shared built-in ones (read-only
    here, editable by superusers in the console) and each team's own (managers)."""

    queryset = PostmortemTemplate.objects.all()
    serializer_class = s.PostmortemTemplateSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_fields = ["team"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[PostmortemTemplate]:
        return selectors.postmortem_templates_visible(user=self.request.user)

    def check_team_write(self, team_id: int | None) -> None:
        if team_id is None and not permissions.sees_all_teams(self.request.user):
            raise PermissionDenied("Shared templates can only be changed by an administrator.")
        super().check_team_write(team_id)


# --------------------------------------------------------------------------- problems


class ProblemViewSet(TeamScopedModelViewSet):
    """Problems (ITIL) of the caller's teams. ``?status=known_error&search=...`` searches
    the known-error list. Any team member may write."""

    responders_can_write = True
    http_method_names = ["get", "post", "patch", "head", "options"]
    queryset = Problem.objects.select_related("team", "match_service").prefetch_related(
        "incidents", "postmortems"
    )
    serializer_class = s.ProblemSerializer
    filterset_fields = ["status", "team", "match_service"]
    search_fields = ["title", "root_cause", "workaround", "match_keywords", "impact"]
    ordering_fields = ["number", "created_at", "updated_at", "status"]
    ordering = ["-number"]

    def perform_create(self, serializer: s.ProblemSerializer) -> None:
        data = dict(serializer.validated_data)
        self.check_team_write(data["team"].pk)
        team, title = data.pop("team"), data.pop("title")
        serializer.instance = call_service(problem_services.problem_create, team=team, title=title,
                                           user=self.request.user, **data)

    def perform_update(self, serializer: s.ProblemSerializer) -> None:
        problem = serializer.instance
        for key, value in serializer.validated_data.items():
            setattr(problem, key, value)
        call_service(problem_services.problem_validate, problem=problem)
        problem.save()

    def _link(self, request: Request, fn: Callable[..., Any]) -> Response:
        problem = self.get_object()
        serializer = s.LinkIncidentsSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        call_service(fn, problem=problem, incidents=serializer.validated_data["incidents"], user=request.user,
                     via=VIA)
        return Response(self.get_serializer(self.get_queryset().get(pk=problem.pk)).data)

    @extend_schema(request=s.LinkIncidentsSerializer, responses=s.ProblemSerializer)
    @action(detail=True, methods=["post"])
    def link(self, request: Request, pk: str | None = None) -> Response:
        """Link incidents (ids, same team) to the problem."""
        return self._link(request, problem_services.problem_link_incidents)

    @extend_schema(request=s.LinkIncidentsSerializer, responses=s.ProblemSerializer)
    @action(detail=True, methods=["post"])
    def unlink(self, request: Request, pk: str | None = None) -> Response:
        return self._link(request, problem_services.problem_unlink_incidents)


# --------------------------------------------------------------------------- metrics


class MetricsViewSet(viewsets.ViewSet):
    """MTTA/MTTR (mean, median, seconds) and counts by severity, service, team and week
    for the incidents triggered in a range. See the README for the exact definitions."""

    permission_classes = [IsAuthenticated, IsTeamMember]

    @extend_schema(
        parameters=[
            OpenApiParameter("period", str, enum=["week", "month", "quarter", "custom"],
                             description="Last 7/30/90 days; default month, or custom when from is given."),
            OpenApiParameter("from", str, description="Date (YYYY-MM-DD) or ISO 8601 date-time."),
            OpenApiParameter("to", str, description="Date (inclusive) or ISO 8601 date-time; default now."),
            OpenApiParameter("team", int), OpenApiParameter("service", int),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def list(self, request: Request) -> Response:
        query = s.MetricsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        try:
            rng = metrics_range(period=params.get("period", ""), start=params.get("from", ""),
                                end=params.get("to", ""))
        except MetricsInputError as exc:
            raise serializers.ValidationError({"detail": [str(exc)]}) from None
        incidents, filters = metrics_queryset(user=request.user, team=params.get("team"),
                                              service=params.get("service"))
        data = metrics_compute(queryset=incidents, start=rng.start, end=rng.end)
        return Response({"period": rng.period, "filters": filters, **data})


def metrics_queryset(*, user: Any, team: int | None, service: int | None) -> tuple[QuerySet[Incident], dict]:
    """The caller's incidents, narrowed by team/service. An id the caller cannot see is
    refused exactly like one that does not exist."""
    qs = permissions.scope_queryset(Incident.objects.all(), user)
    filters: dict[str, Any] = {"team": None, "service": None}
    if team is not None:
        if not permissions.visible_teams(user).filter(pk=team).exists():
            raise serializers.ValidationError({"team": [f"No team with id {team}."]})
        qs = qs.filter(team_id=team)
        filters["team"] = team
    if service is not None:
        if not permissions.scope_queryset(Service.objects.filter(pk=service), user).exists():
            raise serializers.ValidationError({"service": [f"No service with id {service}."]})
        qs = qs.filter(service_id=service)
        filters["service"] = service
    return qs, filters
