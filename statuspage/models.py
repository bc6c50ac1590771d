"""Public status pages: components, public incidents and maintenance, subscribers.

Writes go through ``statuspage.services`` so a component's status and its
``ComponentStatusChange`` log (the source of uptime) always change together.
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from incidents.models import Incident, Service, Severity
from ircore.models import Team


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone (e.g. UTC, Europe/Berlin).")


class ComponentStatus(models.TextChoices):
    OPERATIONAL = "operational", "Operational"
    DEGRADED_PERFORMANCE = "degraded_performance", "Degraded performance"
    PARTIAL_OUTAGE = "partial_outage", "Partial outage"
    MAJOR_OUTAGE = "major_outage", "Major outage"
    UNDER_MAINTENANCE = "under_maintenance", "Under maintenance"


class Impact(models.TextChoices):
    NONE = "none", "None"
    MINOR = "minor", "Minor"
    MAJOR = "major", "Major"
    CRITICAL = "critical", "Critical"


class StatusPage(models.Model):
    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public"
        LOGIN_ONLY = "login_only", "Signed-in staff only"

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="status_pages")
    slug = models.SlugField(max_length=100, unique=True, help_text="The page is served at /status/<slug>/.")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Shown under the title (plain text).")
    visibility = models.CharField(max_length=20, choices=Visibility.choices, default=Visibility.PUBLIC)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    logo_url = models.URLField(blank=True, max_length=500)
    support_url = models.URLField(blank=True, max_length=500, help_text="Link for visitors who need help.")
    allow_subscriptions = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Bumped by every change to anything shown on the page (see statuspage.signals):
    # the render cache key, ETag and Last-Modified derive from it.
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return f"/status/{self.slug}/"

    @property
    def is_public(self) -> bool:
        return self.visibility == self.Visibility.PUBLIC

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        try:
            return zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo("UTC")

    @property
    def public_url(self) -> str:
        return f"{settings.PUBLIC_URL}{self.get_absolute_url()}"


class ComponentGroup(models.Model):
    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    expanded = models.BooleanField(default=False, help_text="Show the group open on the page.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["page", "position", "id"]

    def __str__(self) -> str:
        return self.name


class Component(models.Model):
    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="components")
    group = models.ForeignKey(
        ComponentGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="components"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=30,
        choices=ComponentStatus.choices,
        default=ComponentStatus.OPERATIONAL,
        help_text="Changes are logged (uptime is computed from the log).",
    )
    show_uptime = models.BooleanField(default=True, help_text="Show the 90-day uptime bar.")
    only_show_if_degraded = models.BooleanField(default=False)
    services = models.ManyToManyField(
        Service, through="ComponentServiceLink", blank=True, related_name="status_components"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["page", "position", "id"]

    def __str__(self) -> str:
        return self.name


class ComponentStatusChange(models.Model):
    """Append-only: one row per status change; uptime history is computed from it."""

    class Source(models.TextChoices):
        MANUAL = "manual", "Console or API"
        INCIDENT = "incident", "Linked incident"
        MAINTENANCE = "maintenance", "Maintenance"
        PUBLIC_INCIDENT = "public_incident", "Public incident update"

    component = models.ForeignKey(Component, on_delete=models.CASCADE, related_name="status_changes")
    old_status = models.CharField(max_length=30, choices=ComponentStatus.choices)
    new_status = models.CharField(max_length=30, choices=ComponentStatus.choices)
    changed_at = models.DateTimeField()
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["changed_at", "id"]
        indexes = [models.Index(fields=["component", "changed_at"], name="sp_change_component_at")]

    def __str__(self) -> str:
        return f"{self.component}: {self.old_status} -> {self.new_status}"


class ComponentServiceLink(models.Model):
    """Ties a component to a service: incidents on the service drive the component."""

    class Mode(models.TextChoices):
        AUTOMATIC = "automatic", "Publish automatically"
        DRAFT = "draft", "Open a draft for the communication lead"
        COMPONENT_ONLY = "component_only", "Change the component only"

    component = models.ForeignKey(Component, on_delete=models.CASCADE, related_name="service_links")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="status_links")
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.DRAFT)
    sev1_status = models.CharField(
        max_length=30,
        choices=ComponentStatus.choices,
        blank=True,
        default=ComponentStatus.MAJOR_OUTAGE,
        verbose_name="status on SEV1",
    )
    sev2_status = models.CharField(
        max_length=30,
        choices=ComponentStatus.choices,
        blank=True,
        default=ComponentStatus.PARTIAL_OUTAGE,
        verbose_name="status on SEV2",
    )
    sev3_status = models.CharField(
        max_length=30,
        choices=ComponentStatus.choices,
        blank=True,
        default=ComponentStatus.DEGRADED_PERFORMANCE,
        verbose_name="status on SEV3",
    )
    sev4_status = models.CharField(
        max_length=30,
        choices=ComponentStatus.choices,
        blank=True,
        default="",
        verbose_name="status on SEV4",
        help_text="Empty: leave the component as it is.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["component", "service"], name="sp_unique_component_service"),
        ]

    def __str__(self) -> str:
        return f"{self.service} -> {self.component}"

    def clean(self) -> None:
        # Another team's incidents must not drive this team's public page.
        if self.service_id and self.component_id and self.service.team_id != self.component.page.team_id:
            raise ValidationError({"service": "The service belongs to another team than the status page."})

    def status_for(self, severity: str) -> str:
        return {
            Severity.SEV1: self.sev1_status,
            Severity.SEV2: self.sev2_status,
            Severity.SEV3: self.sev3_status,
            Severity.SEV4: self.sev4_status,
        }.get(severity, "")


class PublicIncident(models.Model):
    class Status(models.TextChoices):
        INVESTIGATING = "investigating", "Investigating"
        IDENTIFIED = "identified", "Identified"
        MONITORING = "monitoring", "Monitoring"
        RESOLVED = "resolved", "Resolved"

    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="incidents")
    name = models.CharField(max_length=300)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.INVESTIGATING)
    impact = models.CharField(max_length=20, choices=Impact.choices, default=Impact.MINOR)
    published = models.BooleanField(default=True, help_text="Drafts are not shown on the page.")
    components = models.ManyToManyField(Component, blank=True, related_name="incidents")
    source_incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="public_incidents"
    )
    started_at = models.DateTimeField()
    monitoring_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["page", "source_incident"],
                condition=Q(source_incident__isnull=False),
                name="sp_one_public_incident_per_incident",
            ),
        ]
        indexes = [models.Index(fields=["page", "-started_at"], name="sp_incident_page_started")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return f"/status/{self.page.slug}/incidents/{self.pk}/"

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.RESOLVED


class Maintenance(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        IN_PROGRESS = "in_progress", "In progress"
        VERIFYING = "verifying", "Verifying"
        COMPLETED = "completed", "Completed"

    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="maintenances")
    name = models.CharField(max_length=300)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED)
    impact = models.CharField(max_length=20, choices=Impact.choices, default=Impact.NONE)
    published = models.BooleanField(default=True)
    components = models.ManyToManyField(Component, blank=True, related_name="maintenances")
    scheduled_for = models.DateTimeField()
    scheduled_until = models.DateTimeField()
    auto_transition = models.BooleanField(
        default=True,
        help_text="Start at 'scheduled for' and complete at 'scheduled until' by itself, with a standard "
        "update (components under maintenance meanwhile).",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-scheduled_for", "-id"]
        verbose_name_plural = "maintenance"
        constraints = [
            models.CheckConstraint(
                condition=Q(scheduled_until__gt=models.F("scheduled_for")),
                name="sp_maintenance_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return f"/status/{self.page.slug}/maintenance/{self.pk}/"

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.COMPLETED


class PublicUpdate(models.Model):
    """One message on a public incident or a maintenance (exactly one of the two)."""

    incident = models.ForeignKey(
        PublicIncident, null=True, blank=True, on_delete=models.CASCADE, related_name="updates"
    )
    maintenance = models.ForeignKey(
        Maintenance, null=True, blank=True, on_delete=models.CASCADE, related_name="updates"
    )
    # Incident statuses or maintenance statuses, depending on the parent.
    status = models.CharField(max_length=20)
    body = models.TextField(help_text="Markdown; HTML is sanitized.")
    body_html = models.TextField(editable=False, default="")
    affected_components = models.JSONField(
        default=list, blank=True, help_text="[{code, name, old_status, new_status}] as Statuspage sends."
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(incident__isnull=False, maintenance__isnull=True)
                    | Q(incident__isnull=True, maintenance__isnull=False)
                ),
                name="sp_update_has_one_parent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.status}: {self.body[:60]}"

    @property
    def status_label(self) -> str:
        return self.status.replace("_", " ").capitalize()


class Subscriber(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="subscribers")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EMAIL)
    email = models.EmailField(blank=True)
    webhook_url = models.URLField(blank=True, max_length=500)
    components = models.ManyToManyField(
        Component,
        blank=True,
        related_name="subscribers",
        help_text="Only notify about these components; empty means everything.",
    )
    confirmed_at = models.DateTimeField(
        null=True, blank=True, help_text="Email subscribers receive nothing until they confirm."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["page", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["page", "email"], condition=Q(kind="email"), name="sp_unique_email_subscriber"
            ),
            models.UniqueConstraint(
                fields=["page", "webhook_url"],
                condition=Q(kind="webhook"),
                name="sp_unique_webhook_subscriber",
            ),
            models.CheckConstraint(
                condition=(Q(kind="email") & ~Q(email="")) | (Q(kind="webhook") & ~Q(webhook_url="")),
                name="sp_subscriber_has_address",
            ),
        ]

    def __str__(self) -> str:
        return self.email or self.webhook_url

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None


class UpdateTemplate(models.Model):
    """Text for an update. ``page`` empty: a template shipped with ircore for every page.

    ``event`` set: used by automatic updates from linked incidents (the page's own
    template wins over the shipped one). Placeholders: {{ incident_title }},
    {{ service }}, {{ components }}, {{ severity }}, {{ page }}.
    """

    class Event(models.TextChoices):
        TRIGGERED = "triggered", "Incident opened"
        ACKNOWLEDGED = "acknowledged", "Incident acknowledged"
        RESOLVED = "resolved", "Incident resolved"

    page = models.ForeignKey(
        StatusPage, null=True, blank=True, on_delete=models.CASCADE, related_name="update_templates"
    )
    name = models.CharField(max_length=200)
    event = models.CharField(max_length=20, choices=Event.choices, blank=True)
    update_status = models.CharField(max_length=20, choices=PublicIncident.Status.choices)
    title = models.CharField(
        max_length=300, blank=True, help_text="Public incident name (for 'Incident opened')."
    )
    body = models.TextField(help_text="Markdown with placeholders.")

    class Meta:
        ordering = ["page", "name"]

    def __str__(self) -> str:
        return self.name


from statuspage.models_delivery import SubscriberDelivery  # noqa: E402,F401 (own module)
