"""REST API for escalation (/api/v1/): chains, steps, routes, outgoing webhooks, contact
methods (test, verification), notification rules, the notification log, and per
incident ``/incidents/{id}/notifications/`` and ``/incidents/{id}/escalation/``.
(``POST /incidents/{id}/escalate/`` is the incidents API's, which signals the engine.)"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from incidents.api.base import (
    Pagination,
    ScopedRelatedFieldsMixin,
    TeamScopedModelViewSet,
    caller,
    check_same_team,
    choice_error,
    immutable,
    team_member_ids,
    visible_users,
)
from incidents.models import Incident, Service
from ircore import permissions
from oncall import chain_templates, notify
from oncall.api import django_errors
from oncall.models import Schedule
from oncall.models_escalation import (
    ContactMethod,
    EscalationChain,
    EscalationRoute,
    EscalationStep,
    Notification,
    NotificationRule,
    OutgoingWebhook,
    Urgency,
    validate_contact_address,
)
from oncall.selectors import people_scope

# --------------------------------------------------------------------------- chains and steps


class StepSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = EscalationStep
        fields = ["id", "chain", "position", "users", "schedules", "notify_team", "team_managers", "webhooks",
                  "delay_minutes"]

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {
            "chain": permissions.scope_queryset(EscalationChain.objects.all(), user),
            "users": visible_users(user),
            "schedules": permissions.scope_queryset(Schedule.objects.all(), user),
            "webhooks": permissions.scope_queryset(OutgoingWebhook.objects.all(), user),
        }

    def validate_chain(self, value: EscalationChain) -> EscalationChain:
        return immutable(self, "chain", value, "A step cannot move to another chain.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        chain = attrs.get("chain") or getattr(self.instance, "chain", None)
        if chain is None:
            return attrs
        check_same_team(chain.team, schedules=list(attrs.get("schedules", [])),
                        webhooks=list(attrs.get("webhooks", [])))
        users = [u.pk for u in attrs.get("users", [])]
        if set(users) - team_member_ids(chain.team_id, users):
            raise serializers.ValidationError({"users": "Every person must be a member of the chain's team."})
        return attrs


class ChainSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    steps = StepSerializer(many=True, read_only=True)

    class Meta:
        model = EscalationChain
        fields = ["id", "team", "name", "description", "repeat", "is_default", "steps", "created_at"]
        read_only_fields = ["created_at"]

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {"team": permissions.visible_teams(user)}

    def validate_team(self, value: Any) -> Any:
        return immutable(self, "team", value, "A chain cannot move to another team; create a new one.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        team = attrs.get("team") or getattr(self.instance, "team", None)
        name = attrs.get("name", getattr(self.instance, "name", None))
        others = EscalationChain.objects.exclude(pk=getattr(self.instance, "pk", None)).filter(team=team)
        if others.filter(name=name).exists():
            raise serializers.ValidationError({"name": "The team already has a chain with this name."})
        if attrs.get("is_default") and others.filter(is_default=True).exists():
            raise serializers.ValidationError(
                {"is_default": "The team already has a default chain; unset it there first."}
            )
        return attrs


class FromTemplateSerializer(serializers.Serializer):
    team = serializers.IntegerField()
    template = serializers.ChoiceField(choices=[(k, t.name) for k, t in chain_templates.TEMPLATES.items()])
    name = serializers.CharField(required=False, allow_blank=True, max_length=120)
    primary_schedule = serializers.IntegerField()
    secondary_schedule = serializers.IntegerField(required=False, allow_null=True)
    is_default = serializers.BooleanField(default=False)


class EscalationChainViewSet(TeamScopedModelViewSet):
    queryset = EscalationChain.objects.select_related("team").prefetch_related(
        "steps__users", "steps__schedules", "steps__webhooks"
    ).order_by("team__name", "name")
    serializer_class = ChainSerializer
    filterset_fields = ["team", "is_default"]
    search_fields = ["name"]

    @extend_schema(request=FromTemplateSerializer, responses={201: ChainSerializer})
    @action(detail=False, methods=["post"], url_path="from-template", serializer_class=FromTemplateSerializer)
    def from_template(self, request: Request) -> Response:
        """Create a chain from a ready-to-use template (e.g. primary at once, secondary after
        10 minutes, managers after 20, repeat twice)."""
        data = FromTemplateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        teams = permissions.visible_teams(request.user)
        team = teams.filter(pk=values["team"]).first()
        if team is None:
            raise serializers.ValidationError({"team": "No such team."})
        self.check_team_write(team.pk)
        schedules = permissions.scope_queryset(Schedule.objects.all(), request.user)
        primary = schedules.filter(pk=values["primary_schedule"]).first()
        if primary is None:
            raise serializers.ValidationError({"primary_schedule": "No such schedule."})
        secondary = None
        if values.get("secondary_schedule"):
            secondary = schedules.filter(pk=values["secondary_schedule"]).first()
            if secondary is None:
                raise serializers.ValidationError({"secondary_schedule": "No such schedule."})
        try:
            chain = chain_templates.chain_template_apply(
                team=team, key=values["template"], name=values.get("name", ""), primary=primary,
                secondary=secondary, is_default=values["is_default"],
            )
        except DjangoValidationError as exc:
            raise django_errors(exc) from None
        body = ChainSerializer(chain, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)


class EscalationStepViewSet(TeamScopedModelViewSet):
    queryset = EscalationStep.objects.select_related("chain").prefetch_related(
        "users", "schedules", "webhooks").order_by("chain", "position", "id")
    serializer_class = StepSerializer
    team_field = "chain__team"
    filterset_fields = ["chain"]

    def team_id_from_data(self, data: dict[str, Any]) -> int | None:
        chain = data.get("chain")
        return chain.team_id if chain is not None else None


class RouteSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = EscalationRoute
        fields = ["id", "team", "name", "position", "chain", "services", "severities", "priorities", "days",
                  "start_time", "end_time", "timezone", "wait_until"]

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {
            "team": permissions.visible_teams(user),
            "chain": permissions.scope_queryset(EscalationChain.objects.all(), user),
            "services": permissions.scope_queryset(Service.objects.all(), user),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        team = attrs.get("team") or getattr(self.instance, "team", None)
        if team is not None:
            chain = attrs.get("chain") or getattr(self.instance, "chain", None)
            check_same_team(team, chain=chain, services=list(attrs.get("services", [])))
        start = attrs.get("start_time", getattr(self.instance, "start_time", None))
        end = attrs.get("end_time", getattr(self.instance, "end_time", None))
        if (start is None) != (end is None):
            raise serializers.ValidationError({"end_time": "Give both a start and an end time, or neither."})
        return attrs


class EscalationRouteViewSet(TeamScopedModelViewSet):
    queryset = EscalationRoute.objects.select_related("chain").prefetch_related("services").order_by(
        "team__name", "position", "id")
    serializer_class = RouteSerializer
    filterset_fields = ["team", "chain"]


class WebhookSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = OutgoingWebhook
        fields = ["id", "team", "name", "url", "secret", "enabled", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"secret": {"required": False}}

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {"team": permissions.visible_teams(user)}


class OutgoingWebhookViewSet(TeamScopedModelViewSet):
    queryset = OutgoingWebhook.objects.order_by("team__name", "name")
    serializer_class = WebhookSerializer
    filterset_fields = ["team", "enabled"]


# --------------------------------------------------------------------------- people


class OwnObjectsMixin:
    """Writes only to your own (superusers: anyone's)."""

    def check_owner(self, owner_id: int) -> None:
        user = self.request.user  # type: ignore[attr-defined]
        if owner_id != user.pk and not permissions.sees_all_teams(user):
            raise PermissionDenied("You can change only your own contact methods and notification rules.")


class ContactMethodSerializer(serializers.ModelSerializer):
    verified = serializers.BooleanField(read_only=True)

    class Meta:
        model = ContactMethod
        fields = ["id", "user", "kind", "label", "address", "secret", "send_updates", "verified",
                  "verified_at", "created_at"]
        read_only_fields = ["user", "verified_at", "created_at"]
        extra_kwargs = {"kind": choice_error("contact method kind", ContactMethod.Kind.values),
                        "secret": {"required": False}}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = attrs.get("kind", getattr(self.instance, "kind", ContactMethod.Kind.EMAIL))
        address = attrs.get("address", getattr(self.instance, "address", ""))
        try:
            validate_contact_address(kind, address)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"address": exc.messages}) from None
        owner = getattr(self.instance, "user", None) or caller(self)
        same = ContactMethod.objects.filter(user=owner, kind=kind, address=address)
        if same.exclude(pk=getattr(self.instance, "pk", None)).exists():
            raise serializers.ValidationError({"address": "You already have this contact method."})
        if self.instance is not None and ("address" in attrs or "kind" in attrs) and (
            address != self.instance.address or kind != self.instance.kind
        ):
            attrs["verified_at"] = None  # a new address must be confirmed again
        return attrs


# What send-test and send-verification answer (502 with the same body when delivery failed).
DELIVERY_RESULT = inline_serializer(
    "DeliveryResult", {"notification": serializers.IntegerField(), "status": serializers.CharField(),
                       "error": serializers.CharField()})


class CodeSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=12)


class ContactMethodViewSet(OwnObjectsMixin, viewsets.ModelViewSet):
    serializer_class = ContactMethodSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = Pagination
    filterset_fields = ["user", "kind"]

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return ContactMethod.objects.none()
        methods = ContactMethod.objects.order_by("user__username", "kind", "address")
        return people_scope(methods, self.request.user)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        user = self.request.user
        data = serializer.validated_data
        # Your own account address is already known to reach you.
        auto = data.get("kind", "email") == "email" and data["address"] == user.email
        serializer.save(user=user, verified_at=timezone.now() if auto else None)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        self.check_owner(serializer.instance.user_id)
        serializer.save()

    def perform_destroy(self, instance: ContactMethod) -> None:
        self.check_owner(instance.user_id)
        instance.delete()

    def _result(self, note: Notification) -> Response:
        body = {"notification": note.pk, "status": note.status, "error": note.error}
        sent = note.status == Notification.Status.SENT
        return Response(body, status=status.HTTP_200_OK if sent else status.HTTP_502_BAD_GATEWAY)

    @extend_schema(request=None, responses={200: DELIVERY_RESULT})
    @action(detail=True, methods=["post"], url_path="send-test")
    def send_test(self, request: Request, pk: str | None = None) -> Response:
        """Send a test message now (502 with the error when it could not be delivered)."""
        method = self.get_object()
        self.check_owner(method.user_id)
        return self._result(notify.contact_method_send_test(contact_method=method))

    @extend_schema(request=None, responses={200: DELIVERY_RESULT})
    @action(detail=True, methods=["post"], url_path="send-verification")
    def send_verification(self, request: Request, pk: str | None = None) -> Response:
        """Send a confirmation code to this address."""
        method = self.get_object()
        self.check_owner(method.user_id)
        return self._result(notify.contact_method_send_verification(contact_method=method))

    @extend_schema(request=CodeSerializer, responses={200: ContactMethodSerializer})
    @action(detail=True, methods=["post"], serializer_class=CodeSerializer)
    def verify(self, request: Request, pk: str | None = None) -> Response:
        """Confirm the address with the code it received."""
        method = self.get_object()
        self.check_owner(method.user_id)
        data = CodeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not notify.contact_method_verify(contact_method=method, code=data.validated_data["code"]):
            raise serializers.ValidationError(
                {"code": "Wrong or expired code; send a new one with send-verification."}
            )
        return Response(ContactMethodSerializer(method, context={"request": request}).data)


class RuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = NotificationRule
        fields = ["id", "user", "contact_method", "delay_minutes", "urgency"]
        read_only_fields = ["user"]
        extra_kwargs = {"urgency": choice_error("urgency", Urgency.values)}

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        user = caller(self)
        fields["contact_method"].queryset = (
            ContactMethod.objects.filter(user=user) if user.is_authenticated else ContactMethod.objects.none()
        )
        return fields


class NotificationRuleViewSet(OwnObjectsMixin, viewsets.ModelViewSet):
    serializer_class = RuleSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = Pagination
    filterset_fields = ["user", "urgency", "contact_method"]

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return NotificationRule.objects.none()
        return people_scope(NotificationRule.objects.select_related("contact_method").order_by(
            "user__username", "urgency", "delay_minutes", "id"), self.request.user)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.save(user=self.request.user)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        self.check_owner(serializer.instance.user_id)
        serializer.save()

    def perform_destroy(self, instance: NotificationRule) -> None:
        self.check_owner(instance.user_id)
        instance.delete()


# --------------------------------------------------------------------------- notification log


class NotificationSerializer(serializers.ModelSerializer):
    incident_ref = serializers.SerializerMethodField()
    step = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "incident", "incident_ref", "kind", "event", "generation", "step", "loop", "user",
                  "contact_method", "webhook", "channel", "address", "status", "error", "attempts", "due_at",
                  "sent_at", "created_at"]
        read_only_fields = fields

    def get_incident_ref(self, obj: Notification) -> str | None:
        return f"INC-{obj.incident.number}" if obj.incident_id else None

    def get_step(self, obj: Notification) -> int | None:
        return None if obj.step_index is None else obj.step_index + 1


class NotificationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = NotificationSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = Pagination
    filterset_fields = ["incident", "status", "channel", "kind", "user"]
    ordering_fields = ["created_at", "sent_at"]

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Notification.objects.none()
        user = self.request.user
        qs = Notification.objects.select_related("incident").order_by("-created_at", "-id")
        team_ids = permissions.visible_team_ids(user)
        if team_ids is None:
            return qs
        # Your own (tests, verifications) and every notification of your teams' incidents.
        return qs.filter(Q(incident__team_id__in=team_ids) | Q(user=user))


class IncidentNotificationsViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """``GET /incidents/{id}/notifications/``: who was notified how and when."""

    serializer_class = NotificationSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = Pagination

    def _incident(self) -> Incident:
        incidents = permissions.scope_queryset(Incident.objects.all(), self.request.user)
        return get_object_or_404(incidents, pk=self.kwargs["incident_pk"])

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Notification.objects.none()
        return (Notification.objects.filter(incident=self._incident()).select_related("incident")
                .order_by("created_at", "id"))


class EscalationStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["active", "stopped", "exhausted"])
    chain = serializers.CharField()
    generation = serializers.IntegerField()
    next_step = serializers.IntegerField(allow_null=True)
    steps = serializers.IntegerField()
    loop = serializers.IntegerField()
    loops = serializers.IntegerField()
    next_at = serializers.DateTimeField(allow_null=True)
    warning = serializers.CharField()
    stop_reason = serializers.CharField()


class IncidentEscalationViewSet(viewsets.GenericViewSet):
    """``GET /incidents/{id}/escalation/``: the escalation's state."""

    permission_classes = [IsAuthenticated]
    serializer_class = EscalationStateSerializer
    queryset = Incident.objects.none()  # only for the schema; list() looks the incident up

    def list(self, request: Request, incident_pk: str) -> Response:
        incidents = permissions.scope_queryset(Incident.objects.all(), request.user)
        incident = get_object_or_404(incidents, pk=incident_pk)
        summary = notify.escalation_summary(incident)
        if summary is None:
            body = {"detail": f"{incident.ref} has no escalation."}
            return Response(body, status=status.HTTP_404_NOT_FOUND)
        return Response(summary)


def register_escalation_api(router: Any) -> None:
    router.register("escalation-chains", EscalationChainViewSet, basename="escalationchain")
    router.register("escalation-steps", EscalationStepViewSet, basename="escalationstep")
    router.register("escalation-routes", EscalationRouteViewSet, basename="escalationroute")
    router.register("outgoing-webhooks", OutgoingWebhookViewSet, basename="outgoingwebhook")
    router.register("contact-methods", ContactMethodViewSet, basename="contactmethod")
    router.register("notification-rules", NotificationRuleViewSet, basename="notificationrule")
    router.register("notifications", NotificationViewSet, basename="notification")
    router.register(r"incidents/(?P<incident_pk>\d+)/notifications", IncidentNotificationsViewSet,
                    basename="incident-notifications")
    router.register(r"incidents/(?P<incident_pk>\d+)/escalation", IncidentEscalationViewSet,
                    basename="incident-escalation")
