"""django-filter FilterSets for /api/v1/. Related ids are plain numbers, not model
choices: validating them against a table would tell a caller which other teams' ids
exist; filtering an already team-scoped queryset by them reveals nothing."""

from __future__ import annotations

import re

import django_filters as filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from incidents.models import (
    Alert,
    AlertAction,
    Incident,
    Integration,
    MaintenanceWindow,
    Priority,
    Service,
    Severity,
    TimelineEntry,
    TriageRule,
)

_REF = re.compile(r"^(?:inc-?)?(\d{1,18})$", re.IGNORECASE)
# Strict true/false: django-filter's BooleanFilter quietly ignores "maybe" or "yes".
_BOOL_CHOICES = [("true", "true"), ("false", "false")]


class ServiceFilter(filters.FilterSet):
    team = filters.NumberFilter(field_name="team")
    name = filters.CharFilter(field_name="name", lookup_expr="iexact")

    class Meta:
        model = Service
        fields = ["team", "name"]


class ServiceTimelineFilter(filters.FilterSet):
    kind = filters.MultipleChoiceFilter(choices=TimelineEntry.Kind.choices)
    incident = filters.NumberFilter(field_name="incident")
    without_incident = filters.ChoiceFilter(
        choices=_BOOL_CHOICES, method="filter_without_incident",
        label="Only entries about the service itself, such as change events (true), or only "
        "incident entries (false).",
    )
    after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = TimelineEntry
        fields = ["kind", "incident", "without_incident", "after", "before"]

    def filter_without_incident(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(incident__isnull=value == "true")


class IntegrationFilter(filters.FilterSet):
    service = filters.NumberFilter(field_name="service")
    team = filters.NumberFilter(field_name="service__team")
    kind = filters.MultipleChoiceFilter(choices=Integration.Kind.choices)

    class Meta:
        model = Integration
        fields = ["service", "team", "kind", "enabled"]


class TriageRuleFilter(filters.FilterSet):
    team = filters.NumberFilter(field_name="team")

    class Meta:
        model = TriageRule
        fields = ["team", "enabled"]


class MaintenanceWindowFilter(filters.FilterSet):
    team = filters.NumberFilter(field_name="team")
    service = filters.NumberFilter(field_name="services", distinct=True)
    active = filters.ChoiceFilter(
        choices=_BOOL_CHOICES, method="filter_active",
        label="Only windows in progress now (true) or not (false).",
    )
    ends_after = filters.IsoDateTimeFilter(field_name="ends_at", lookup_expr="gt")
    starts_before = filters.IsoDateTimeFilter(field_name="starts_at", lookup_expr="lt")

    class Meta:
        model = MaintenanceWindow
        fields = ["team", "service", "active", "ends_after", "starts_before"]

    def filter_active(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        active = MaintenanceWindow.in_force_at(timezone.now())
        return queryset.filter(active) if value == "true" else queryset.exclude(active)


class IncidentFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=Incident.Status.choices)
    severity = filters.MultipleChoiceFilter(choices=Severity.choices)
    priority = filters.MultipleChoiceFilter(choices=Priority.choices)
    service = filters.NumberFilter(field_name="service")
    team = filters.NumberFilter(field_name="team")
    dedup_key = filters.CharFilter(field_name="dedup_key")
    open = filters.ChoiceFilter(
        choices=_BOOL_CHOICES, method="filter_open", label="Only open (true) or only resolved (false)."
    )
    triggered_after = filters.IsoDateTimeFilter(field_name="triggered_at", lookup_expr="gte")
    triggered_before = filters.IsoDateTimeFilter(field_name="triggered_at", lookup_expr="lt")
    search = filters.CharFilter(
        method="filter_search", label="Words in the title or dedup key, or a reference (INC-42 or 42)."
    )

    class Meta:
        model = Incident
        fields = ["status", "severity", "priority", "service", "team", "dedup_key", "in_maintenance"]

    def filter_open(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        resolved = Q(status=Incident.Status.RESOLVED)
        return queryset.exclude(resolved) if value == "true" else queryset.filter(resolved)

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        for term in value.split():
            match = Q(title__icontains=term) | Q(dedup_key__icontains=term)
            ref = _REF.match(term)
            if ref:
                match |= Q(number=int(ref.group(1)))
            queryset = queryset.filter(match)
        return queryset


class AlertFilter(filters.FilterSet):
    incident = filters.NumberFilter(field_name="incident")
    service = filters.NumberFilter(field_name="service")
    integration = filters.NumberFilter(field_name="integration")
    outcome = filters.MultipleChoiceFilter(choices=Alert.Outcome.choices)
    action = filters.MultipleChoiceFilter(choices=AlertAction.choices)
    severity = filters.MultipleChoiceFilter(choices=Severity.choices)
    # The key the sender was answered finds its alerts even when a triage rule grouped
    # them under a key of its own.
    dedup_key = filters.CharFilter(method="filter_dedup_key")
    received_after = filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="gte")
    received_before = filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="lt")

    class Meta:
        model = Alert
        fields = ["incident", "service", "integration", "outcome", "action", "severity", "dedup_key",
                  "in_maintenance"]

    def filter_dedup_key(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(dedup_key=value) | Q(sent_dedup_key=value))
