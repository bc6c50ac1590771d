"""Serializers for /api/v1/. Configuration objects are written through ModelSerializers
(as in the admin); every incident change goes through incidents.services."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import serializers

from incidents import services
from incidents.api.base import (
    ScopedRelatedFieldsMixin,
    caller,
    check_same_team,
    choice_error,
    immutable,
    team_member_ids,
    visible_users,
)
from incidents.integration_options import integration_options_errors
from incidents.models import (
    Alert,
    Incident,
    Integration,
    MaintenanceWindow,
    Priority,
    Service,
    Severity,
    TimelineEntry,
    TriageRule,
)
from ircore import permissions
from ircore.models import Team

SEVERITY_ERRORS = choice_error("severity", Severity.values)
PRIORITY_ERRORS = choice_error("priority", Priority.values)


def _visible_services(user: Any) -> QuerySet[Service]:
    return permissions.scope_queryset(Service.objects.select_related("team"), user)


# --------------------------------------------------------------------------- services


class ServiceSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ["id", "team", "name", "description", "ack_timeout", "auto_resolve_timeout", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"ack_timeout": {"min_value": 1}, "auto_resolve_timeout": {"min_value": 1}}

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {"team": permissions.visible_teams(user)}

    def validate_team(self, team: Any) -> Any:
        # Incidents keep the team they were opened in; moving services would split them.
        return immutable(self, "team", team, "A service cannot move to another team.")


# --------------------------------------------------------------------------- integrations


class IntegrationSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    team = serializers.IntegerField(source="service.team_id", read_only=True)
    token = serializers.CharField(read_only=True, help_text="Secret; part of the URL or the routing key.")
    url = serializers.CharField(read_only=True, help_text="Where the monitoring tool sends its events.")

    class Meta:
        model = Integration
        fields = ["id", "service", "team", "name", "kind", "enabled", "options", "rate_limit_per_minute",
                  "token", "url", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {
            "kind": choice_error("integration kind", Integration.Kind.values),
            "rate_limit_per_minute": {"min_value": 1},
        }

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {"service": _visible_services(user)}

    def validate_kind(self, kind: str) -> str:
        if self.instance is not None and kind != self.instance.kind:
            raise serializers.ValidationError(
                "The kind of an integration cannot change (senders are configured for it); "
                "create a new integration instead."
            )
        return kind

    def validate_options(self, options: Any) -> dict:
        if not isinstance(options, dict):
            raise serializers.ValidationError('Must be a JSON object, e.g. {"group_by": "group"}.')
        return options

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = attrs.get("kind") or (self.instance.kind if self.instance else "")
        options = attrs.get("options", self.instance.options if self.instance else {})
        errors = integration_options_errors(kind=kind, options=options)
        if errors:
            raise serializers.ValidationError({"options": errors})
        return super().validate(attrs)


# --------------------------------------------------------------------------- triage rules


class TriageRuleSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = TriageRule
        fields = [
            "id", "team", "name", "position", "enabled",
            "match_service", "match_integration", "match_keywords", "match_source", "match_labels",
            "match_severity",
            "set_severity", "set_priority", "route_to_service", "suppress", "set_dedup_key",
            "continue_processing", "created_at",
        ]
        read_only_fields = ["created_at"]
        extra_kwargs = {
            "match_severity": SEVERITY_ERRORS,
            "set_severity": SEVERITY_ERRORS,
            "set_priority": PRIORITY_ERRORS,
        }

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        services = _visible_services(user)
        return {
            "team": permissions.visible_teams(user),
            "match_service": services,
            "route_to_service": services,
            "match_integration": permissions.scope_queryset(
                Integration.objects.select_related("service"), user, "service__team"
            ),
        }

    def validate_team(self, team: Any) -> Any:
        return immutable(self, "team", team, "A triage rule cannot move to another team.")

    def validate_match_labels(self, labels: Any) -> dict:
        if not isinstance(labels, dict) or not all(
            isinstance(value, str | int | float | bool) for value in labels.values()
        ):
            raise serializers.ValidationError(
                'Must be a JSON object of label name to value pattern, e.g. {"env": "prod*"}.'
            )
        return {str(key): str(value) for key, value in labels.items()}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def current(name: str) -> Any:
            if name in attrs:
                return attrs[name]
            return getattr(self.instance, name) if self.instance is not None else None

        team = current("team")
        if team is not None:
            check_same_team(
                team,
                match_service=current("match_service"),
                route_to_service=current("route_to_service"),
                match_integration=current("match_integration"),
            )
        return attrs


# --------------------------------------------------------------------------- maintenance


class MaintenanceWindowSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    team = serializers.PrimaryKeyRelatedField(
        queryset=Team.objects.none(),  # replaced per request (scoped_querysets)
        required=False,
        help_text="Defaults to the services' team.",
    )
    is_active = serializers.SerializerMethodField()

    class Meta:
        model = MaintenanceWindow
        fields = ["id", "team", "services", "starts_at", "ends_at", "reason", "is_active", "created_by",
                  "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"services": {"allow_empty": False}}

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {"team": permissions.visible_teams(user), "services": _visible_services(user)}

    def get_is_active(self, window: MaintenanceWindow) -> bool:
        return window.covers(timezone.now())

    def validate_team(self, team: Any) -> Any:
        return immutable(self, "team", team, "A maintenance window cannot move to another team.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance
        starts = attrs.get("starts_at", instance.starts_at if instance else None)
        ends = attrs.get("ends_at", instance.ends_at if instance else None)
        if starts is not None and ends is not None and ends <= starts:
            raise serializers.ValidationError(
                {"ends_at": f"The window must end after it starts ({starts.isoformat()})."}
            )
        team = attrs.get("team", instance.team if instance else None)
        if "services" in attrs:
            chosen = list(attrs["services"])
            if team is None:
                teams = {service.team for service in chosen}
                if len(teams) != 1:
                    raise serializers.ValidationError(
                        {"team": "The services belong to several teams: say which team owns the window."}
                    )
                attrs["team"] = team = teams.pop()
            check_same_team(team, services=chosen)
        elif team is None:
            raise serializers.ValidationError({"services": "This field is required."})
        return attrs


# --------------------------------------------------------------------------- alerts, timeline


class AlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = [
            "id", "incident", "service", "integration", "action", "dedup_key", "sent_dedup_key", "summary",
            "details", "severity", "priority", "source", "labels", "links", "outcome", "outcome_detail",
            "in_maintenance", "received_at",
        ]
        read_only_fields = fields


class AlertDetailSerializer(AlertSerializer):
    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "payload"]
        read_only_fields = fields


class TimelineEntrySerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = TimelineEntry
        fields = ["id", "kind", "message", "actor", "via", "data", "created_at"]
        read_only_fields = fields


class ServiceTimelineEntrySerializer(TimelineEntrySerializer):
    class Meta(TimelineEntrySerializer.Meta):
        fields = ["id", "incident", *TimelineEntrySerializer.Meta.fields[1:]]
        read_only_fields = fields


class NoteSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=20000, help_text="The note, kept on the incident timeline.")


# --------------------------------------------------------------------------- incidents


class IncidentDeclareSerializer(ScopedRelatedFieldsMixin, serializers.Serializer):
    """Open an incident by hand (no alert): a customer report, an outage someone noticed."""

    service = serializers.PrimaryKeyRelatedField(queryset=Service.objects.none())
    title = serializers.CharField(max_length=1024)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.SEV3,
                                       **SEVERITY_ERRORS)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False,
                                       help_text="Defaults from the severity (SEV1 -> P1 ...).",
                                       **PRIORITY_ERRORS)

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {"service": _visible_services(user)}


# Querysets are replaced per request (scoped_querysets).
_USER_FIELD = {"slug_field": "username", "queryset": get_user_model().objects.none()}
ROLE_FIELDS = ("commander", "communication_lead", "responders", "stakeholders", "war_room_url")
WRITABLE_INCIDENT_FIELDS = ("severity", "priority", *ROLE_FIELDS)


class IncidentSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    """PATCH changes severity, priority and roles through incidents.services (each
    change on the timeline); status changes are the POST actions."""

    ref = serializers.CharField(read_only=True, help_text="Human reference, INC-<number>.")
    service_name = serializers.CharField(source="service.name", read_only=True)
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    commander = serializers.SlugRelatedField(**_USER_FIELD, allow_null=True, required=False)
    communication_lead = serializers.SlugRelatedField(**_USER_FIELD, allow_null=True, required=False)
    responders = serializers.SlugRelatedField(**_USER_FIELD, many=True, required=False)
    stakeholders = serializers.SlugRelatedField(**_USER_FIELD, many=True, required=False)

    class Meta:
        model = Incident
        fields = [
            "id", "number", "ref", "title", "description", "status", "severity", "priority",
            "service", "service_name", "team", "dedup_key", "alert_count", "last_alert_at",
            "triggered_at", "acknowledged_at", "acknowledged_by", "mitigated_at", "resolved_at",
            "resolved_by", "commander", "communication_lead", "responders", "stakeholders",
            "war_room_url", "in_maintenance", "updated_at",
        ]
        read_only_fields = [f for f in fields if f not in WRITABLE_INCIDENT_FIELDS]
        extra_kwargs = {"severity": SEVERITY_ERRORS, "priority": PRIORITY_ERRORS}

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        users = visible_users(user)
        return {name: users for name in ("commander", "communication_lead", "responders", "stakeholders")}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # Fail loudly rather than silently ignore fields the caller meant to change.
        if hasattr(data, "keys"):
            errors: dict[str, str] = {}
            for name in data.keys():
                if name == "status":
                    errors[name] = ("Change the status with POST .../acknowledge/, .../resolve/ or "
                                    ".../reopen/ on the incident.")
                elif name in self.fields and name not in WRITABLE_INCIDENT_FIELDS:
                    errors[name] = "This field is read-only."
                elif name not in self.fields:
                    errors[name] = f"Unknown field; writable fields: {', '.join(WRITABLE_INCIDENT_FIELDS)}."
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Whoever runs the incident must be in its team; stakeholders may be anyone the
        # caller can see (managers, other teams' leads).
        incident: Incident = self.instance  # type: ignore[assignment]
        in_team_roles: dict[str, list[Any]] = {}
        for name in ("commander", "communication_lead"):
            if attrs.get(name) is not None:
                in_team_roles[name] = [attrs[name]]
        if attrs.get("responders"):
            in_team_roles["responders"] = list(attrs["responders"])
        user_ids = {user.pk for users in in_team_roles.values() for user in users}
        members = team_member_ids(incident.team_id, user_ids) if user_ids else set()
        errors = {}
        for name, users in in_team_roles.items():
            outside = [u.get_username() for u in users if u.pk not in members and not u.is_superuser]
            if outside:
                errors[name] = f"{', '.join(outside)}: not a member of team {incident.team}."
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def update(self, instance: Incident, validated_data: dict[str, Any]) -> Incident:
        user = caller(self)
        via = services.Via.API
        with transaction.atomic():
            if "severity" in validated_data:
                services.incident_set_severity(
                    incident=instance, severity=validated_data["severity"], user=user, via=via
                )
            if "priority" in validated_data:
                services.incident_set_priority(
                    incident=instance, priority=validated_data["priority"], user=user, via=via
                )
            roles = {name: validated_data[name] for name in ROLE_FIELDS if name in validated_data}
            if roles:
                services.incident_assign_roles(incident=instance, user=user, via=via, **roles)
        return instance
