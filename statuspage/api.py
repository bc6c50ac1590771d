"""REST API: /api/v1/status-pages/ and, nested under a page, its groups, components,
service links, incidents (+ updates), maintenance (+ updates) and subscribers.

Team scoping through ircore.permissions (the page's team): other teams' pages are 404.
Page configuration needs the manager role; incidents and maintenance may be written
by any member of the team (the communication lead is often a responder).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from incidents.api.base import TeamScopedModelViewSet
from incidents.models import Service
from ircore import permissions
from statuspage import services, subscribers
from statuspage.models import (
    Component,
    ComponentGroup,
    ComponentServiceLink,
    ComponentStatus,
    Impact,
    Maintenance,
    PublicIncident,
    PublicUpdate,
    StatusPage,
    Subscriber,
)


def _django_errors(exc: DjangoValidationError) -> DRFValidationError:
    return DRFValidationError({"detail": " ".join(exc.messages)})


# --------------------------------------------------------------------------- serializers


class StatusPageSerializer(serializers.ModelSerializer):
    url = serializers.CharField(source="public_url", read_only=True)

    class Meta:
        model = StatusPage
        fields = [
            "id",
            "team",
            "slug",
            "title",
            "description",
            "visibility",
            "time_zone",
            "logo_url",
            "support_url",
            "allow_subscriptions",
            "url",
            "created_at",
            "changed_at",
        ]
        read_only_fields = ["created_at", "changed_at"]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and "team" in fields and not fields["team"].read_only:
            ids = permissions.managed_team_ids(request.user)
            if ids is not None:
                fields["team"].queryset = fields["team"].queryset.filter(pk__in=ids)
        return fields


class StatusGroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = ComponentGroup
        fields = ["id", "name", "description", "position", "expanded", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


class PageScopedSerializer(serializers.ModelSerializer):
    """Related fields only accept objects of the page in the URL."""

    page_related: dict[str, type] = {}

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        page = self.context.get("page")
        for name, model in self.page_related.items():
            field = fields.get(name)
            if field is None or field.read_only or page is None:
                continue
            target = getattr(field, "child_relation", field)
            target.queryset = model.objects.filter(page=page)
        return fields


class StatusComponentSerializer(PageScopedSerializer):
    page_related = {"group": ComponentGroup}

    class Meta:
        model = Component
        fields = [
            "id",
            "name",
            "description",
            "group",
            "position",
            "status",
            "show_uptime",
            "only_show_if_degraded",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class StatusServiceLinkSerializer(PageScopedSerializer):
    page_related = {"component": Component}

    class Meta:
        model = ComponentServiceLink
        fields = [
            "id",
            "component",
            "service",
            "mode",
            "sev1_status",
            "sev2_status",
            "sev3_status",
            "sev4_status",
        ]

    def validate_service(self, service: Service) -> Service:
        page = self.context["page"]
        if service.team_id != page.team_id:
            raise serializers.ValidationError("The service belongs to another team than the page.")
        return service


class PublicUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = PublicUpdate
        fields = ["id", "status", "body", "body_html", "affected_components", "created_at"]
        read_only_fields = fields


class StatusesField(serializers.DictField):
    child = serializers.ChoiceField(choices=ComponentStatus.choices)

    def to_internal_value(self, data: Any) -> dict[int, str]:
        value = super().to_internal_value(data)
        try:
            return {int(k): v for k, v in value.items()}
        except ValueError:
            raise serializers.ValidationError("Keys must be component ids.") from None


class PublicIncidentSerializer(serializers.ModelSerializer):
    updates = PublicUpdateSerializer(many=True, read_only=True)
    components = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    body = serializers.CharField(write_only=True, help_text="First update (markdown).")
    component_statuses = StatusesField(
        write_only=True, required=False, help_text='{"<component id>": "status"}'
    )

    class Meta:
        model = PublicIncident
        fields = [
            "id",
            "name",
            "status",
            "impact",
            "published",
            "components",
            "source_incident",
            "started_at",
            "monitoring_at",
            "resolved_at",
            "created_at",
            "updated_at",
            "updates",
            "body",
            "component_statuses",
        ]
        read_only_fields = [
            "source_incident",
            "started_at",
            "monitoring_at",
            "resolved_at",
            "created_at",
            "updated_at",
        ]


class PublicIncidentChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = PublicIncident
        fields = ["name", "impact"]


class PostPublicUpdateSerializer(serializers.Serializer):
    status = serializers.CharField()
    body = serializers.CharField()
    component_statuses = StatusesField(required=False)
    impact = serializers.ChoiceField(choices=Impact.choices, required=False)


class StatusMaintenanceSerializer(PageScopedSerializer):
    page_related = {"components": Component}
    updates = PublicUpdateSerializer(many=True, read_only=True)
    body = serializers.CharField(write_only=True)

    class Meta:
        model = Maintenance
        fields = [
            "id",
            "name",
            "status",
            "impact",
            "published",
            "components",
            "scheduled_for",
            "scheduled_until",
            "auto_transition",
            "started_at",
            "completed_at",
            "created_at",
            "updated_at",
            "updates",
            "body",
        ]
        read_only_fields = ["status", "started_at", "completed_at", "created_at", "updated_at"]


class StatusSubscriberSerializer(PageScopedSerializer):
    page_related = {"components": Component}

    class Meta:
        model = Subscriber
        fields = ["id", "kind", "email", "webhook_url", "components", "confirmed_at", "created_at"]
        read_only_fields = ["confirmed_at", "created_at"]


# --------------------------------------------------------------------------- views


class StatusPageViewSet(TeamScopedModelViewSet):
    """Status pages of the caller's teams; managers create and change them."""

    queryset = StatusPage.objects.all()
    serializer_class = StatusPageSerializer
    search_fields = ["title", "slug"]
    filterset_fields = ["team", "visibility"]
    ordering = ["title"]


class PageNestedViewSet(viewsets.GenericViewSet):
    """Base for /status-pages/<page_pk>/...: the page must be visible to the caller."""

    permission_classes = [IsAuthenticated]
    members_can_write = False
    filter_backends: list = []

    def get_page(self) -> StatusPage:
        if not hasattr(self, "_page"):
            visible = permissions.scope_queryset(StatusPage.objects.all(), self.request.user)
            self._page = get_object_or_404(visible, pk=self.kwargs["page_pk"])
        return self._page

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        page = self.get_page()
        if request.method not in SAFE_METHODS:
            allowed = (
                permissions.can_view_team(request.user, page.team_id)
                if self.members_can_write
                else permissions.can_manage_team(request.user, page.team_id)
            )
            if not allowed:
                raise PermissionDenied("You need the manager role in this page's team to change this.")

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "page": self.get_page()}

    def get_queryset(self) -> QuerySet:
        return self.queryset.filter(page=self.get_page())


class GroupViewSet(PageNestedViewSet, viewsets.ModelViewSet):
    queryset = ComponentGroup.objects.order_by("position", "id")
    serializer_class = StatusGroupSerializer

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.save(page=self.get_page())


class ComponentViewSet(PageNestedViewSet, viewsets.ModelViewSet):
    """Components; a status change is logged (uptime history) like any other."""

    queryset = Component.objects.order_by("position", "id")
    serializer_class = StatusComponentSerializer

    def _save(self, serializer: serializers.BaseSerializer, **extra: Any) -> None:
        new_status = serializer.validated_data.pop("status", None)
        component = serializer.save(**extra)
        if new_status:
            services.component_set_status(component=component, status=new_status, actor=self.request.user)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        self._save(serializer, page=self.get_page())

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        self._save(serializer)


class ServiceLinkViewSet(PageNestedViewSet, viewsets.ModelViewSet):
    queryset = ComponentServiceLink.objects.order_by("id")
    serializer_class = StatusServiceLinkSerializer

    def get_queryset(self) -> QuerySet:
        return ComponentServiceLink.objects.filter(component__page=self.get_page()).order_by("id")


class IncidentViewSet(
    PageNestedViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """Public incidents, drafts included (the public page shows only published ones)."""

    members_can_write = True
    queryset = PublicIncident.objects.prefetch_related(
        Prefetch("updates", queryset=PublicUpdate.objects.order_by("-created_at", "-id")), "components"
    ).order_by("-started_at", "-id")

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action in ("update", "partial_update"):
            return PublicIncidentChangeSerializer
        if self.action == "post_update":
            return PostPublicUpdateSerializer
        return PublicIncidentSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = PublicIncidentSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            incident = services.public_incident_create(
                page=self.get_page(),
                name=data["name"],
                body=data["body"],
                status=data.get("status", PublicIncident.Status.INVESTIGATING),
                impact=data.get("impact", Impact.MINOR),
                published=data.get("published", True),
                component_statuses=data.get("component_statuses"),
                author=request.user,
            )
        except DjangoValidationError as exc:
            raise _django_errors(exc) from None
        return Response(
            PublicIncidentSerializer(self.get_queryset().get(pk=incident.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @action(detail=True, methods=["post"], url_path="updates")
    def post_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Post an update (status, markdown body, optional component statuses)."""
        incident = self.get_object()
        serializer = PostPublicUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            update = services.public_incident_post_update(
                incident=incident,
                status=data["status"],
                body=data["body"],
                author=request.user,
                component_statuses=data.get("component_statuses"),
                impact=data.get("impact"),
            )
        except DjangoValidationError as exc:
            raise _django_errors(exc) from None
        return Response(PublicUpdateSerializer(update).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def publish(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incident = self.get_object()
        if not services.public_incident_publish(incident=incident, author=request.user):
            return Response({"detail": "The incident is already published."}, status=status.HTTP_409_CONFLICT)
        return Response(PublicIncidentSerializer(self.get_queryset().get(pk=incident.pk)).data)


class MaintenanceViewSet(
    PageNestedViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
):
    members_can_write = True
    queryset = Maintenance.objects.prefetch_related(
        Prefetch("updates", queryset=PublicUpdate.objects.order_by("-created_at", "-id")), "components"
    ).order_by("-scheduled_for", "-id")
    serializer_class = StatusMaintenanceSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            maintenance = services.maintenance_create(
                page=self.get_page(),
                name=data["name"],
                body=data["body"],
                scheduled_for=data["scheduled_for"],
                scheduled_until=data["scheduled_until"],
                component_ids=[c.pk for c in data.get("components", [])],
                author=request.user,
                published=data.get("published", True),
                impact=data.get("impact", "none"),
                auto_transition=data.get("auto_transition", True),
            )
        except DjangoValidationError as exc:
            raise _django_errors(exc) from None
        return Response(
            self.get_serializer(self.get_queryset().get(pk=maintenance.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @action(detail=True, methods=["post"], url_path="updates", serializer_class=PostPublicUpdateSerializer)
    def post_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        maintenance = self.get_object()
        serializer = PostPublicUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            update = services.maintenance_post_update(
                maintenance=maintenance,
                status=serializer.validated_data["status"],
                body=serializer.validated_data["body"],
                author=request.user,
            )
        except DjangoValidationError as exc:
            raise _django_errors(exc) from None
        return Response(PublicUpdateSerializer(update).data, status=status.HTTP_201_CREATED)


class SubscriberViewSet(
    PageNestedViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
):
    """Email subscribers added here still confirm by email; webhooks are active at once."""

    queryset = Subscriber.objects.prefetch_related("components").order_by("-created_at")
    serializer_class = StatusSubscriberSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        ids = [c.pk for c in data.get("components", [])]
        try:
            if data.get("kind", Subscriber.Kind.EMAIL) == Subscriber.Kind.WEBHOOK:
                subscriber = subscribers.subscriber_add_webhook(
                    page=self.get_page(), url=data.get("webhook_url", ""), component_ids=ids
                )
            else:
                subscriber = subscribers.subscriber_subscribe_email(
                    page=self.get_page(), email=data.get("email", ""), component_ids=ids
                )
        except DjangoValidationError as exc:
            raise _django_errors(exc) from None
        return Response(self.get_serializer(subscriber).data, status=status.HTTP_201_CREATED)


def register_api(router: Any) -> None:
    """Called by ircore.api_urls when it builds the /api/v1/ router."""
    router.register("status-pages", StatusPageViewSet, basename="statuspage")
    nested = r"status-pages/(?P<page_pk>\d+)"
    router.register(f"{nested}/groups", GroupViewSet, basename="statuspage-group")
    router.register(f"{nested}/components", ComponentViewSet, basename="statuspage-component")
    router.register(f"{nested}/service-links", ServiceLinkViewSet, basename="statuspage-servicelink")
    router.register(f"{nested}/incidents", IncidentViewSet, basename="statuspage-incident")
    router.register(f"{nested}/maintenance", MaintenanceViewSet, basename="statuspage-maintenance")
    router.register(f"{nested}/subscribers", SubscriberViewSet, basename="statuspage-subscriber")
