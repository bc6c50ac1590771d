"""Viewsets for /api/v1/ (registered by ``incidents.api.register_api``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import filters as drf_filters
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from incidents import services
from incidents.api import filters
from incidents.api.base import Conflict, Pagination, TeamScopedModelViewSet, TeamWritePermission
from incidents.api.serializers import (
    AlertDetailSerializer,
    AlertSerializer,
    IncidentDeclareSerializer,
    IncidentSerializer,
    IntegrationSerializer,
    MaintenanceWindowSerializer,
    NoteSerializer,
    ServiceSerializer,
    ServiceTimelineEntrySerializer,
    TimelineEntrySerializer,
    TriageRuleSerializer,
)
from incidents.models import (
    Alert,
    Incident,
    Integration,
    MaintenanceWindow,
    Service,
    TimelineEntry,
    TriageRule,
)
from ircore import permissions
from ircore.api import TeamScopedViewSetMixin

Status = Incident.Status
VIA = TimelineEntry.Via.API


class ServiceViewSet(TeamScopedModelViewSet):
    """Services of the caller's teams; managers create, change and delete them."""

    queryset = Service.objects.all()
    serializer_class = ServiceSerializer
    filterset_class = filters.ServiceFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]
    ordering = ["team__name", "name"]


@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("service_id", int, OpenApiParameter.PATH, description="The service's id."),
]))
class ServiceTimelineViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """What happened on a service, newest first: change events (deploys, config changes)
    and its incidents' entries. Routed as /services/{service_id}/timeline/."""

    serializer_class = ServiceTimelineEntrySerializer
    pagination_class = Pagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = filters.ServiceTimelineFilter
    queryset = TimelineEntry.objects.all()

    def get_queryset(self) -> QuerySet[TimelineEntry]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no service in the URL
            return TimelineEntry.objects.none()
        visible = permissions.scope_queryset(Service.objects.all(), self.request.user)
        service = get_object_or_404(visible, pk=self.kwargs["service_id"])
        entries = TimelineEntry.objects.filter(service=service).select_related("actor")
        return entries.order_by("-created_at", "-id")


class IntegrationViewSet(TeamScopedModelViewSet):
    """Inbound sources. ``token`` and ``url`` are generated; managers create them."""

    team_field = "service__team"
    queryset = Integration.objects.select_related("service")
    serializer_class = IntegrationSerializer
    filterset_class = filters.IntegrationFilter
    search_fields = ["name"]
    ordering_fields = ["name", "kind", "created_at"]
    ordering = ["service__name", "name"]

    def team_id_from_data(self, data: dict[str, Any]) -> int | None:
        service = data.get("service")
        return service.team_id if service is not None else None


class TriageRuleViewSet(TeamScopedModelViewSet):
    """Ordered triage rules of the caller's teams (lowest ``position`` first)."""

    queryset = TriageRule.objects.all()
    serializer_class = TriageRuleSerializer
    filterset_class = filters.TriageRuleFilter
    search_fields = ["name", "match_keywords"]
    ordering_fields = ["position", "name", "created_at"]
    ordering = ["team__name", "position", "id"]


class MaintenanceWindowViewSet(TeamScopedModelViewSet):
    """Maintenance windows: alerts are kept but incidents opened inside do not page."""

    queryset = MaintenanceWindow.objects.select_related("created_by").prefetch_related("services")
    serializer_class = MaintenanceWindowSerializer
    filterset_class = filters.MaintenanceWindowFilter
    search_fields = ["reason"]
    ordering_fields = ["starts_at", "ends_at", "created_at"]
    ordering = ["-starts_at"]

    def perform_create(self, serializer: MaintenanceWindowSerializer) -> None:
        self.check_team_write(self.team_id_from_data(serializer.validated_data))
        serializer.save(created_by=self.request.user)


@extend_schema_view(
    list=extend_schema(description="Alerts received for the caller's teams' services, newest first."),
    retrieve=extend_schema(description="One alert, with the payload exactly as received."),
)
class AlertViewSet(TeamScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    team_field = "service__team"
    pagination_class = Pagination
    queryset = Alert.objects.all()
    filterset_class = filters.AlertFilter
    search_fields = ["summary", "source"]
    ordering_fields = ["received_at", "severity"]
    ordering = ["-received_at"]

    def get_serializer_class(self) -> type[AlertSerializer]:
        return AlertDetailSerializer if self.action == "retrieve" else AlertSerializer

    def get_queryset(self) -> QuerySet[Alert]:
        queryset = super().get_queryset()
        # The raw payload can be large; only the detail view shows it.
        return queryset if self.action == "retrieve" else queryset.defer("payload")


# --------------------------------------------------------------------------- incidents


def _usernames() -> QuerySet:
    return get_user_model().objects.only("id", "username").order_by("username")


def _when(value: Any) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M %Z}" if value else "time unknown"


def _refusal_ack(incident: Incident) -> str:
    if incident.status == Status.RESOLVED:
        return f"{incident.ref} is resolved; reopen it first."
    who = f" by {incident.acknowledged_by.get_username()}" if incident.acknowledged_by else ""
    return f"{incident.ref} is already acknowledged{who} ({_when(incident.acknowledged_at)})."


def _refusal_unack(incident: Incident) -> str:
    return f"{incident.ref} is not acknowledged (status: {incident.status})."


def _refusal_resolve(incident: Incident) -> str:
    return f"{incident.ref} is already resolved ({_when(incident.resolved_at)})."


def _refusal_reopen(incident: Incident) -> str:
    return f"{incident.ref} is not resolved (status: {incident.status}); only a resolved incident reopens."


def _refusal_mitigate(incident: Incident) -> str:
    if incident.status == Status.RESOLVED:
        return f"{incident.ref} is resolved; there is nothing left to mitigate."
    return f"{incident.ref} was already marked mitigated ({_when(incident.mitigated_at)})."


def _refusal_escalate(incident: Incident) -> str:
    return f"{incident.ref} is resolved; reopen it before escalating."


_ACTION_RESPONSES = {
    200: IncidentSerializer,
    409: OpenApiResponse(description="The transition does not apply to the incident's current state."),
}


class IncidentViewSet(
    TeamScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Incidents of the caller's teams, opened by alerts or declared by hand (POST); any
    team member may declare, acknowledge, resolve, add notes and change severity,
    priority and roles."""

    responders_can_write = True
    pagination_class = Pagination
    permission_classes = [IsAuthenticated, TeamWritePermission]
    http_method_names = ["get", "post", "patch", "head", "options"]
    queryset = Incident.objects.select_related("service", "acknowledged_by", "resolved_by", "commander",
                                               "communication_lead")
    serializer_class = IncidentSerializer
    filter_backends = [DjangoFilterBackend, drf_filters.OrderingFilter]
    filterset_class = filters.IncidentFilter
    ordering_fields = ["triggered_at", "number", "severity", "priority", "status", "alert_count",
                       "acknowledged_at", "resolved_at", "last_alert_at"]
    ordering = ["-triggered_at", "-id"]

    def get_queryset(self) -> QuerySet[Incident]:
        return super().get_queryset().prefetch_related(
            Prefetch("responders", queryset=_usernames()), Prefetch("stakeholders", queryset=_usernames())
        )

    def _fresh(self, incident: Incident) -> dict[str, Any]:
        incident = self.get_queryset().get(pk=incident.pk)
        return self.get_serializer(incident).data

    @extend_schema(request=IncidentDeclareSerializer, responses={201: IncidentSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Declare an incident by hand; any member of the service's team may."""
        serializer = IncidentDeclareSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        self.check_team_write(data["service"].team_id)
        try:
            incident = services.incident_declare(
                service=data["service"], title=data["title"], description=data["description"],
                severity=data["severity"], priority=data.get("priority", ""), user=request.user, via=VIA,
            )
        except ValueError as exc:  # the service's own checks, should validation ever miss one
            raise ValidationError({"non_field_errors": [str(exc)]}) from None
        return Response(self._fresh(incident), status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incident = self.get_object()
        serializer = self.get_serializer(incident, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(self._fresh(incident))

    def _transition(
        self, fn: Callable[..., bool], refusal: Callable[[Incident], str], **kwargs: Any
    ) -> Response:
        incident = self.get_object()
        try:
            changed = fn(incident=incident, user=self.request.user, via=VIA, **kwargs)
        except services.ReopenConflict as exc:
            raise Conflict(str(exc)) from None
        if not changed:
            incident = self.get_queryset().get(pk=incident.pk)
            raise Conflict(refusal(incident))
        return Response(self._fresh(incident))

    @extend_schema(request=None, responses=_ACTION_RESPONSES)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        """Triggered -> acknowledged (stops escalation)."""
        return self._transition(services.incident_acknowledge, _refusal_ack)

    @extend_schema(request=None, responses=_ACTION_RESPONSES)
    @action(detail=True, methods=["post"])
    def unacknowledge(self, request: Request, pk: str | None = None) -> Response:
        """Acknowledged -> triggered (paging resumes)."""
        return self._transition(services.incident_unacknowledge, _refusal_unack)

    @extend_schema(request=None, responses=_ACTION_RESPONSES)
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        """Triggered or acknowledged -> resolved."""
        return self._transition(services.incident_resolve, _refusal_resolve)

    @extend_schema(request=None, responses=_ACTION_RESPONSES)
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: str | None = None) -> Response:
        """Resolved -> triggered. 409 if another incident with the same dedup key is open."""
        return self._transition(services.incident_reopen, _refusal_reopen)

    @extend_schema(request=None, responses=_ACTION_RESPONSES)
    @action(detail=True, methods=["post"])
    def mitigate(self, request: Request, pk: str | None = None) -> Response:
        """Record that the impact has stopped (once; the incident stays open)."""
        return self._transition(services.incident_mitigate, _refusal_mitigate)

    @extend_schema(request=None, responses=_ACTION_RESPONSES)
    @action(detail=True, methods=["post"])
    def escalate(self, request: Request, pk: str | None = None) -> Response:
        """Page the next escalation step now; an acknowledged incident goes back to triggered."""
        return self._transition(services.incident_escalate, _refusal_escalate)

    @extend_schema(request=NoteSerializer, responses={201: TimelineEntrySerializer})
    @action(detail=True, methods=["post"], serializer_class=NoteSerializer)
    def notes(self, request: Request, pk: str | None = None) -> Response:
        """Add a note to the incident timeline."""
        incident = self.get_object()
        serializer = NoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            entry = services.incident_add_note(
                incident=incident, user=request.user, text=serializer.validated_data["text"], via=VIA
            )
        except ValueError as exc:
            return Response({"text": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(TimelineEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=TimelineEntrySerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=TimelineEntrySerializer, filter_backends=[])
    def timeline(self, request: Request, pk: str | None = None) -> Response:
        """Everything that happened to the incident, oldest first (paginated)."""
        incident = self.get_object()
        entries = TimelineEntry.objects.filter(incident=incident).select_related("actor").order_by(
            "created_at", "id"
        )
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(TimelineEntrySerializer(page, many=True).data)

