"""REST API for schedules (/api/v1/): schedules, rotation layers and their members,
overrides, and the who-is-on-call / final-schedule queries. Registered by
``register_api`` (discovered by ircore.api_urls)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import django_filters
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from incidents.api.base import (
    ScopedRelatedFieldsMixin,
    TeamScopedModelViewSet,
    caller,
    choice_error,
    immutable,
    visible_users,
)
from ircore import permissions
from ircore.api import TeamScopedViewSetMixin
from oncall import schedule_engine as engine
from oncall import selectors
from oncall.models import Override, Rotation, RotationMember, Schedule, validate_restrictions
from oncall.services import (
    rotation_current_member_ids,
    rotation_current_members_prefetch,
    rotation_members_set,
)

User = get_user_model()
MAX_SPAN = timedelta(days=366)


def django_errors(exc: DjangoValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


# --------------------------------------------------------------------------- serializers


class ScheduleSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    ical_url = serializers.SerializerMethodField()

    class Meta:
        model = Schedule
        fields = ["id", "team", "name", "description", "timezone", "ical_url", "created_at"]
        read_only_fields = ["created_at"]

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {"team": permissions.visible_teams(user)}

    def get_ical_url(self, obj: Schedule) -> str:
        request = self.context.get("request")
        path = f"/oncall/ical/schedule/{obj.ical_token}.ics"
        return request.build_absolute_uri(path) if request else path

    def validate_team(self, value: Any) -> Any:
        return immutable(self, "team", value, "A schedule cannot move to another team; create a new one.")


class MemberIdsField(serializers.ListField):
    """The rotation's current ordered member ids (rows are versioned, so there is no
    plain attribute to read)."""

    def get_attribute(self, instance: Rotation) -> list[int]:
        rows = getattr(instance, "current_members", None)  # prefetched for lists
        if rows is None:
            return rotation_current_member_ids(rotation=instance)
        return [r.user_id for r in rows]


class RotationSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    members = MemberIdsField(
        child=serializers.IntegerField(),
        required=False,
        help_text="User ids in rotation order (the current list). Writing it changes the list from now "
        "on; use the members action to choose the effective time.",
    )

    class Meta:
        model = Rotation
        fields = [
            "id",
            "schedule",
            "name",
            "priority",
            "shift_amount",
            "shift_unit",
            "handoff_date",
            "handoff_time",
            "timezone",
            "restrictions",
            "members",
        ]
        extra_kwargs = {"shift_unit": choice_error("shift unit", Rotation.Unit.values)}

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {"schedule": permissions.scope_queryset(Schedule.objects.all(), user)}

    def validate_schedule(self, value: Schedule) -> Schedule:
        return immutable(self, "schedule", value, "A layer cannot move to another schedule.")

    def validate_restrictions(self, value: Any) -> Any:
        try:
            validate_restrictions(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        schedule = attrs.get("schedule") or getattr(self.instance, "schedule", None)
        if "members" in attrs and schedule is not None:
            _check_members(schedule, attrs["members"])
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Rotation:
        members = validated_data.pop("members", [])
        rotation = super().create(validated_data)
        rotation_members_set(rotation=rotation, user_ids=members)
        return rotation

    def update(self, instance: Rotation, validated_data: dict[str, Any]) -> Rotation:
        members = validated_data.pop("members", None)
        rotation = super().update(instance, validated_data)
        if members is not None:
            rotation_members_set(rotation=rotation, user_ids=members)
        return rotation


def _check_members(schedule: Schedule, user_ids: list[int]) -> None:
    if len(set(user_ids)) != len(user_ids):
        raise serializers.ValidationError({"members": "A person can appear only once in a rotation."})
    team = set(schedule.team.memberships.values_list("user_id", flat=True))
    outside = [i for i in user_ids if i not in team]
    if outside:
        raise serializers.ValidationError(
            {"members": f"Users {outside} are not members of the schedule's team {schedule.team}."}
        )


class MembersSerializer(serializers.Serializer):
    members = serializers.ListField(child=serializers.IntegerField(), allow_empty=True)
    effective_from = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When the new list takes over; default now."
    )


class RotationMemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = RotationMember
        fields = ["user", "position", "effective_from", "effective_until"]


class OverrideSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = Override
        fields = [
            "id",
            "schedule",
            "kind",
            "start",
            "end",
            "user",
            "replaced_user",
            "note",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["created_by", "created_at"]
        extra_kwargs = {"kind": choice_error("override kind", Override.Kind.values)}

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        users = visible_users(user)
        return {
            "schedule": permissions.scope_queryset(Schedule.objects.all(), user),
            "user": users,
            "replaced_user": users,
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        probe = (
            Override(**{f.name: getattr(self.instance, f.name) for f in Override._meta.concrete_fields})
            if self.instance
            else Override()
        )
        for key, value in attrs.items():
            setattr(probe, key, value)
        try:
            probe.clean()
        except DjangoValidationError as exc:
            raise django_errors(exc) from None
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Override:
        validated_data["created_by"] = caller(self) if caller(self).is_authenticated else None
        return super().create(validated_data)


class OnCallSerializer(serializers.Serializer):
    user = serializers.IntegerField()
    username = serializers.CharField()
    source = serializers.CharField()
    layer = serializers.IntegerField(allow_null=True)
    override = serializers.IntegerField(allow_null=True)


class ScheduleOnCallSerializer(serializers.Serializer):
    schedule = serializers.IntegerField()
    at = serializers.DateTimeField()
    oncall = OnCallSerializer(many=True)


class ShiftSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    user = serializers.IntegerField(allow_null=True, help_text="null: a gap, nobody on call.")
    username = serializers.CharField(allow_null=True)
    source = serializers.ChoiceField(choices=[s.value for s in engine.Source])
    layer = serializers.IntegerField(allow_null=True)
    override = serializers.IntegerField(allow_null=True)


class ShiftsSerializer(serializers.Serializer):
    schedule = serializers.IntegerField()
    timezone = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    shifts = ShiftSerializer(many=True)


class OnCallNowEntrySerializer(serializers.Serializer):
    schedule = serializers.IntegerField()
    name = serializers.CharField()
    team = serializers.IntegerField()
    timezone = serializers.CharField()
    oncall = OnCallSerializer(many=True)
    next_handoff = serializers.DateTimeField(allow_null=True)


class OnCallNowSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    schedules = OnCallNowEntrySerializer(many=True)


# --------------------------------------------------------------------------- query parameters


def parse_instant(raw: str | None, name: str, tz_name: str, default: datetime) -> datetime:
    """ISO 8601; a value without an offset is read in ``tz_name``. A ``+`` that a
    client did not URL-encode arrives as a space and is put back."""
    if raw is None or raw == "":
        return default
    try:
        value = parse_datetime(raw.strip().replace(" ", "+"))
    except ValueError:
        value = None
    if value is None:
        raise serializers.ValidationError(
            {name: f"{raw!r} is not an ISO 8601 date-time, e.g. 2024-03-31T09:00:00+02:00."}
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz_name))
    return value


def oncall_payload(entries: tuple[engine.OnCall, ...], users: dict[int, Any]) -> list[dict[str, Any]]:
    return [
        {
            "user": oc.user_id,
            "username": users[oc.user_id].get_username() if oc.user_id in users else None,
            "source": str(oc.source),
            "layer": oc.layer_id,
            "override": oc.override_id,
        }
        for oc in entries
    ]


def shift_payload(shift: engine.Shift, users: dict[int, Any]) -> dict[str, Any]:
    user = users.get(shift.user_id) if shift.user_id is not None else None
    return {
        "start": shift.start.isoformat(),
        "end": shift.end.isoformat(),
        "user": shift.user_id,
        "username": user.get_username() if user else None,
        "source": str(shift.source),
        "layer": shift.layer_id,
        "override": shift.override_id,
    }


AT_PARAM = OpenApiParameter("at", OpenApiTypes.DATETIME, description="Instant (ISO 8601); default now.")


# --------------------------------------------------------------------------- viewsets


class ScheduleFilter(django_filters.FilterSet):
    class Meta:
        model = Schedule
        fields = ["team", "timezone"]


class ScheduleViewSet(TeamScopedModelViewSet):
    queryset = Schedule.objects.select_related("team").order_by("team__name", "name")
    serializer_class = ScheduleSerializer
    filterset_class = ScheduleFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]

    @extend_schema(parameters=[AT_PARAM], responses=ScheduleOnCallSerializer)
    @action(detail=True, methods=["get"])
    def oncall(self, request: Request, pk: str | None = None) -> Response:
        schedule = self.get_object()
        at = parse_instant(request.query_params.get("at"), "at", schedule.timezone, timezone.now())
        entries = selectors.schedule_oncall_at(schedule=schedule, at=at)
        users = selectors.users_by_id(oc.user_id for oc in entries)
        return Response(
            {"schedule": schedule.pk, "at": at.isoformat(), "oncall": oncall_payload(entries, users)}
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("start", OpenApiTypes.DATETIME, description="Default now."),
            OpenApiParameter(
                "end", OpenApiTypes.DATETIME, description="Default start + 14 days; at most a year."
            ),
            OpenApiParameter("include_gaps", OpenApiTypes.BOOL, description="Default true."),
        ]
    )
    @action(detail=True, methods=["get"])
    def shifts(self, request: Request, pk: str | None = None) -> Response:
        schedule = self.get_object()
        params = request.query_params
        start = parse_instant(params.get("start"), "start", schedule.timezone, timezone.now())
        end = parse_instant(params.get("end"), "end", schedule.timezone, start + timedelta(days=14))
        if end <= start:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        if end - start > MAX_SPAN:
            raise serializers.ValidationError({"end": "Ask for at most 366 days at a time."})
        include_gaps = params.get("include_gaps", "true").lower() not in ("false", "0", "no")
        shifts = selectors.schedule_shifts(schedule=schedule, start=start, end=end, include_gaps=include_gaps)
        users = selectors.users_by_id(s.user_id for s in shifts)
        return Response(
            {
                "schedule": schedule.pk,
                "timezone": schedule.timezone,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "shifts": [shift_payload(s, users) for s in shifts],
            }
        )


class RotationViewSet(TeamScopedModelViewSet):
    team_field = "schedule__team"
    queryset = Rotation.objects.select_related("schedule").order_by("schedule_id", "-priority")
    serializer_class = RotationSerializer
    filterset_fields = ["schedule"]

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        if self.action == "list":  # members are written on the other actions: never prefetched there
            queryset = queryset.prefetch_related(rotation_current_members_prefetch())
        return queryset

    def team_id_from_data(self, data: dict[str, Any]) -> int | None:
        schedule = data.get("schedule")
        return schedule.team_id if schedule is not None else None

    @extend_schema(request=MembersSerializer, responses=RotationMemberSerializer(many=True))
    @action(detail=True, methods=["get", "put"])
    def members(self, request: Request, pk: str | None = None) -> Response:
        """GET: the full member history. PUT: a new ordered list from ``effective_from``
        (default now); rows before that instant are kept, so past shifts do not change."""
        rotation = self.get_object()
        if request.method == "PUT":
            self.check_team_write(rotation.schedule.team_id)
            body = MembersSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            _check_members(rotation.schedule, body.validated_data["members"])
            try:
                rotation_members_set(
                    rotation=rotation,
                    user_ids=body.validated_data["members"],
                    effective_from=body.validated_data.get("effective_from"),
                )
            except DjangoValidationError as exc:
                raise django_errors(exc) from None
        rows = rotation.members.order_by("effective_from", "position", "id")
        return Response(RotationMemberSerializer(rows, many=True).data)


class OverrideFilter(django_filters.FilterSet):
    ends_after = django_filters.IsoDateTimeFilter(field_name="end", lookup_expr="gt")
    starts_before = django_filters.IsoDateTimeFilter(field_name="start", lookup_expr="lt")

    class Meta:
        model = Override
        fields = ["schedule", "kind", "user"]


class OverrideViewSet(TeamScopedModelViewSet):
    team_field = "schedule__team"
    responders_can_write = True  # covering for a colleague needs no manager
    queryset = Override.objects.select_related("schedule").order_by("start", "id")
    serializer_class = OverrideSerializer
    filterset_class = OverrideFilter

    def team_id_from_data(self, data: dict[str, Any]) -> int | None:
        schedule = data.get("schedule")
        return schedule.team_id if schedule is not None else None

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        schedule = serializer.validated_data.get("schedule")
        if schedule is not None and schedule.pk != serializer.instance.schedule_id:
            raise serializers.ValidationError({"schedule": "An override cannot move to another schedule."})
        super().perform_update(serializer)


class OnCallNowViewSet(TeamScopedViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Who is on call at ``at`` in every schedule of the caller's teams."""

    permission_classes = [IsAuthenticated]
    queryset = Schedule.objects.select_related("team").order_by("team__name", "name")
    filterset_fields = ["team"]
    pagination_class = None
    serializer_class = OnCallNowSerializer

    @extend_schema(
        parameters=[
            AT_PARAM,
            OpenApiParameter(
                "user",
                OpenApiTypes.STR,
                description="A user id or `me`: only the schedules where that person is on call.",
            ),
        ],
        responses=OnCallNowSerializer,
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        at = parse_instant(request.query_params.get("at"), "at", "UTC", timezone.now())
        raw_user = request.query_params.get("user")
        user_id: int | None = None
        if raw_user == "me":
            user_id = request.user.pk
        elif raw_user:
            if not raw_user.isdigit():
                raise serializers.ValidationError({"user": "Give a user id or `me`."})
            user_id = int(raw_user)
        schedules = list(self.filter_queryset(self.get_queryset()))
        results = selectors.schedules_oncall_at(schedules=schedules, at=at, with_next_handoff=True)
        if user_id is not None:
            results = [r for r in results if any(oc.user_id == user_id for oc in r.oncall)]
        users = selectors.users_by_id(oc.user_id for r in results for oc in r.oncall)
        return Response(
            {
                "at": at.isoformat(),
                "schedules": [
                    {
                        "schedule": r.schedule.pk,
                        "name": r.schedule.name,
                        "team": r.schedule.team_id,
                        "timezone": r.schedule.timezone,
                        "oncall": oncall_payload(r.oncall, users),
                        "next_handoff": r.next_handoff.isoformat() if r.next_handoff else None,
                    }
                    for r in results
                ],
            }
        )


def register_api(router: Any) -> None:
    """Called by ircore.api_urls when it builds the /api/v1/ router."""
    router.register("schedules", ScheduleViewSet, basename="schedule")
    router.register("rotations", RotationViewSet, basename="rotation")
    router.register("overrides", OverrideViewSet, basename="override")
    router.register("oncall", OnCallNowViewSet, basename="oncall")
    from oncall.api_escalation import register_escalation_api  # escalation endpoints, own module

    register_escalation_api(router)
