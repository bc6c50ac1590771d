from __future__ import annotations

import secrets
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q

from ircore.models import Team


class Severity(models.TextChoices):
    SEV1 = "SEV1", "SEV1 (critical)"
    SEV2 = "SEV2", "SEV2 (major)"
    SEV3 = "SEV3", "SEV3 (minor)"
    SEV4 = "SEV4", "SEV4 (low)"


class Priority(models.TextChoices):
    P1 = "P1", "P1"
    P2 = "P2", "P2"
    P3 = "P3", "P3"
    P4 = "P4", "P4"
    P5 = "P5", "P5"


class AlertAction(models.TextChoices):
    TRIGGER = "trigger", "Trigger"
    ACKNOWLEDGE = "acknowledge", "Acknowledge"
    RESOLVE = "resolve", "Resolve"


def new_token() -> str:
    # URL-safe, unguessable, and short enough to live in a URL path or an email
    # local part (<integration token>@<inbound domain>).
    return secrets.token_hex(16)


class Service(models.Model):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="services")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    ack_timeout = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Minutes an acknowledged incident may stay unresolved before it re-triggers.",
    )
    auto_resolve_timeout = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Minutes without new alerts after which an open incident resolves itself.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="unique_service_name_per_team"),
        ]

    def __str__(self) -> str:
        return self.name


class Integration(models.Model):
    class Kind(models.TextChoices):
        GENERIC = "generic", "Generic JSON / form webhook"
        PAGERDUTY = "pagerduty", "PagerDuty Events API v2"
        ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
        GRAFANA = "grafana", "Grafana alerting"
        EMAIL = "email", "Email"
        HEARTBEAT = "heartbeat", "Heartbeat"

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="integrations")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    enabled = models.BooleanField(default=True)
    options = models.JSONField(
        default=dict, blank=True,
        help_text="Per-kind options, e.g. {\"group_by\": \"group\"} for Alertmanager/Grafana.",
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Events accepted per minute; empty uses the INGEST_RATE_LIMIT_PER_MINUTE setting.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["service__name", "name"]

    def __str__(self) -> str:
        return f"{self.service} / {self.name}"

    @property
    def team_id(self) -> int:
        return self.service.team_id

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from incidents.integration_options import integration_options_errors

        errors = integration_options_errors(kind=self.kind, options=self.options)
        if errors:
            raise ValidationError({"options": errors})

    @property
    def url(self) -> str:
        base = settings.PUBLIC_URL
        if self.kind == self.Kind.PAGERDUTY:
            return f"{base}/integrations/pagerduty/v2/enqueue"
        if self.kind == self.Kind.EMAIL:
            return f"mailto:{self.token}@{settings.INBOUND_EMAIL_DOMAIN}"
        return f"{base}/integrations/{self.kind}/{self.token}/"


class Incident(models.Model):
    class Status(models.TextChoices):
        TRIGGERED = "triggered", "Triggered"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    number = models.PositiveBigIntegerField(unique=True, editable=False)
    # Not indexed alone: incident_team_triggered and incident_service_key (Meta) start with
    # these columns and serve the same look-ups. Every index is more work for each update
    # of a row that is not a HOT update (alert counts change on every grouped alert).
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="incidents", db_index=False)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="incidents", db_index=False)
    title = models.CharField(max_length=1024)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.TRIGGERED)
    severity = models.CharField(max_length=4, choices=Severity.choices, default=Severity.SEV3)
    priority = models.CharField(max_length=2, choices=Priority.choices, default=Priority.P3)
    dedup_key = models.CharField(max_length=255)
    in_maintenance = models.BooleanField(
        default=False, help_text="Opened during a maintenance window: kept, but does not page."
    )
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name="incident commander",
    )
    communication_lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    responders = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="incidents_responding"
    )
    stakeholders = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="incidents_watching"
    )
    war_room_url = models.URLField(blank=True, max_length=500)
    alert_count = models.PositiveIntegerField(default=0)
    last_alert_at = models.DateTimeField(null=True, blank=True)
    triggered_at = models.DateTimeField(db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-triggered_at"]
        constraints = [
            # The dedup guarantee lives in the database, so concurrent triggers with one
            # key cannot open two incidents whatever the number of web processes.
            models.UniqueConstraint(
                fields=["service", "dedup_key"],
                condition=~Q(status="resolved"),
                name="one_open_incident_per_dedup_key",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-triggered_at"], name="incident_status_triggered"),
            models.Index(fields=["team", "-triggered_at"], name="incident_team_triggered"),
            models.Index(fields=["service", "dedup_key"], name="incident_service_key"),
        ]

    def __str__(self) -> str:
        return f"{self.ref} {self.title}"

    REF_PREFIX = "INC-"

    @property
    def ref(self) -> str:
        return f"{Incident.REF_PREFIX}{self.number}"  # Incident.REF_PREFIX: alert_batch._Locked borrows this

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.RESOLVED


class Alert(models.Model):
    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        OPENED = "opened", "Opened an incident"
        GROUPED = "grouped", "Added to an open incident"
        ACKNOWLEDGED = "acknowledged", "Acknowledged the incident"
        RESOLVED = "resolved", "Resolved the incident"
        NO_OPEN_INCIDENT = "no_open_incident", "No open incident for this key"
        SUPPRESSED = "suppressed", "Suppressed by a triage rule"
        FAILED = "failed", "Processing failed"

    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="alerts")
    # No index of its own: alert_incident_received (incident, -received_at) serves every
    # look-up by incident, and each index is paid on every alert inserted.
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts", db_index=False
    )
    action = models.CharField(max_length=20, choices=AlertAction.choices, default=AlertAction.TRIGGER)
    dedup_key = models.CharField(max_length=255)
    # The key the sender gave (or was answered, if it gave none) before triage rules
    # rewrote it: what it will acknowledge or resolve with.
    sent_dedup_key = models.CharField(max_length=255, blank=True, default="")
    summary = models.CharField(max_length=1024)
    details = models.TextField(blank=True)
    severity = models.CharField(max_length=4, choices=Severity.choices, default=Severity.SEV3)
    priority = models.CharField(max_length=2, choices=Priority.choices, blank=True)
    source = models.CharField(max_length=255, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    links = models.JSONField(default=list, blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="The event as received.")
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.PENDING)
    outcome_detail = models.TextField(blank=True)
    in_maintenance = models.BooleanField(default=False)
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["incident", "-received_at"], name="alert_incident_received"),
        ]

    def __str__(self) -> str:
        return self.summary[:80]


class QueuedEvent(models.Model):
    """An accepted event that the applier has not turned into an alert yet.

    The ingestion endpoints answer 2xx once this row is committed: it is the durable
    copy, and the only write on the request path. The applier (a thread of
    ``manage.py clock``, see ``incidents.alert_queue``) takes the oldest rows in
    batches, triages and deduplicates them into alerts and incidents, and deletes them
    in the same transaction. The row stays narrow on purpose (no foreign-key checks,
    no index but the primary key, the event and its payload as JSON text) because every event pays
    for its insert and its delete."""

    integration = models.ForeignKey(
        Integration, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    # Kept too, so an event whose integration was deleted meanwhile still becomes an alert.
    service = models.ForeignKey(
        Service, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    event = models.TextField(help_text="The validated AlertEvent as JSON, without its payload.")
    # Apart from `event` so the applier can write it to the alert as it is (most events
    # are grouped into an open incident: nothing needs to read it), and the endpoint can
    # store the body it received rather than encode it again. Empty for events queued
    # before this column existed: their payload is inside `event`.
    payload = models.TextField(blank=True, default="", help_text="The event's payload as JSON.")
    received_at = models.DateTimeField()
    # Set when the event could not be applied, nor even kept as a failed alert (the
    # database refused both): the row stays here, out of the applier's way, for an
    # operator to look at, instead of blocking every event queued after it.
    error = models.TextField(blank=True, default="")
    # What the endpoint's triage decided (``incidents.endpoint_route``): the service after
    # routing; the dedup key after rules for a trigger (empty for an acknowledge or
    # resolve); the severity and priority only for a trigger that is not suppressed. On
    # PostgreSQL the applier adds such an event to its open incident in one set-based
    # statement per batch (``incidents.batch_repeats``); anything else it triages itself.
    # Empty for events queued before these columns existed, or by a web process of that
    # version still running during an upgrade (hence the database defaults).
    triaged_service_id = models.BigIntegerField(null=True, blank=True)
    triaged_key = models.CharField(max_length=255, blank=True, default="", db_default="")
    triaged_severity = models.CharField(max_length=8, blank=True, default="", db_default="")
    triaged_priority = models.CharField(max_length=8, blank=True, default="", db_default="")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"queued event {self.pk} from integration {self.integration_id}"


class TimelineEntry(models.Model):
    """Append-only record of what happened to an incident (or, for change events, to a
    service). Source of the admin timeline, postmortem timelines and metrics."""

    class Kind(models.TextChoices):
        ALERT = "alert", "Alert received"
        TRIGGERED = "triggered", "Triggered"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        UNACKNOWLEDGED = "unacknowledged", "Un-acknowledged"
        RESOLVED = "resolved", "Resolved"
        REOPENED = "reopened", "Reopened"
        MITIGATED = "mitigated", "Mitigated"
        TRIAGE = "triage", "Triage rule applied"
        SEVERITY = "severity", "Severity changed"
        PRIORITY = "priority", "Priority changed"
        ROLE = "role", "Role assigned"
        NOTE = "note", "Note"
        MAINTENANCE = "maintenance", "Maintenance"
        NOTIFICATION = "notification", "Notification"
        ESCALATION = "escalation", "Escalation"
        STATUS_PAGE = "status_page", "Status page"
        CHANGE = "change", "Change event"
        WARNING = "warning", "Warning"
        INFO = "info", "Info"

    class Via(models.TextChoices):
        WEB = "web", "console"
        API = "api", "API"
        EMAIL = "email", "email reply"
        INTEGRATION = "integration", "integration"
        SYSTEM = "system", "ircore"

    # Indexed by the composite indexes below (incident/service first), not on their own:
    # every entry written pays for each index.
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="timeline", db_index=False
    )
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="timeline", db_index=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    message = models.TextField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    via = models.CharField(max_length=20, choices=Via.choices, default=Via.SYSTEM)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "timeline entries"
        indexes = [
            models.Index(fields=["incident", "created_at"], name="timeline_incident_created"),
            models.Index(fields=["service", "created_at"], name="timeline_service_created"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message[:60]}"


class TriageRule(models.Model):
    """Ordered rule: every condition that is set must match; then the actions apply.
    Rules run in ``position`` order; the first match stops unless it says continue."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="triage_rules")
    name = models.CharField(max_length=120)
    position = models.PositiveIntegerField(default=0, db_index=True)
    enabled = models.BooleanField(default=True)
    # Conditions (empty = not checked).
    match_service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Only alerts for this service.",
    )
    match_integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Only alerts from this integration.",
    )
    match_keywords = models.TextField(
        blank=True,
        help_text="One keyword or phrase per line (or comma-separated); any of them in the "
        "summary or details matches, case-insensitive.",
    )
    match_source = models.CharField(
        max_length=255, blank=True, help_text="Shell-style pattern on the alert source, e.g. db-*."
    )
    match_labels = models.JSONField(
        default=dict, blank=True,
        help_text='All must match; values may use * patterns, e.g. {"env": "prod*"}.',
    )
    match_severity = models.CharField(max_length=4, choices=Severity.choices, blank=True)
    # Actions.
    set_severity = models.CharField(max_length=4, choices=Severity.choices, blank=True)
    set_priority = models.CharField(max_length=2, choices=Priority.choices, blank=True)
    route_to_service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    suppress = models.BooleanField(default=False, help_text="Keep the alert, open no incident.")
    set_dedup_key = models.CharField(
        max_length=255, blank=True,
        help_text="Group matching alerts under this key. {source}, {summary} and {labels[name]} "
        "are replaced by the alert's values.",
    )
    continue_processing = models.BooleanField(
        default=False, help_text="Also evaluate the rules after this one when it matches."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "position", "id"]

    def __str__(self) -> str:
        return self.name


class MaintenanceWindow(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="maintenance_windows")
    services = models.ManyToManyField(Service, related_name="maintenance_windows")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="maintenance_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return self.reason or f"Maintenance {self.starts_at:%Y-%m-%d %H:%M}"

    # In force from starts_at up to, not including, ends_at: one rule for queries
    # (``in_force_at``) and for windows already read (``covers``).
    @staticmethod
    def in_force_at(at: datetime) -> Q:
        return Q(starts_at__lte=at, ends_at__gt=at)

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


class Problem(models.Model):
    """ITIL problem: the underlying cause behind one or more incidents. Once its cause
    and workaround are known (status ``known_error``) new incidents that match its rule
    are flagged with it (incidents.problems.known_error_match)."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        INVESTIGATING = "investigating", "Investigating"
        KNOWN_ERROR = "known_error", "Known error"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    number = models.PositiveBigIntegerField(unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="problems")
    title = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    impact = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    workaround = models.TextField(blank=True)
    incidents = models.ManyToManyField(Incident, blank=True, related_name="problems")
    # Known-error match rule: the service, plus keywords and/or a dedup-key pattern.
    match_service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="A new incident on this service may match this known error.",
    )
    match_keywords = models.TextField(
        blank=True,
        help_text="One keyword or phrase per line (or comma-separated); any of them in the incident "
        "title or description matches, case-insensitive.",
    )
    match_dedup_key = models.CharField(
        max_length=255, blank=True,
        help_text="Shell-style pattern on the incident's dedup key, e.g. disk-full-*.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-number"]
        indexes = [
            models.Index(fields=["match_service", "status"], name="problem_match_service_status"),
        ]

    def __str__(self) -> str:
        return f"{self.ref} {self.title}"

    @property
    def ref(self) -> str:
        return f"PRB-{self.number}"
