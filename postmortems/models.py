from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.utils import timezone

from incidents.models import Incident, Problem, TimelineEntry
from ircore.models import Team


class PostmortemTemplate(models.Model):
    """Markdown skeleton for a new postmortem. ``team`` empty = offered to every team
    (the built-in ones). Placeholders such as ``{{ incidents }}`` are filled on creation
    (see postmortems.rendering.TEMPLATE_PLACEHOLDERS)."""

    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="postmortem_templates",
        help_text="Empty: available to every team.",
    )
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=255, blank=True)
    body = models.TextField(help_text="Markdown. Placeholders: {{ title }}, {{ incidents }}, {{ services }}, "
                            "{{ severity }}, {{ started }}, {{ resolved }}, {{ duration }}, {{ team }}.")
    is_default = models.BooleanField(default=False, help_text="Preselected when starting a postmortem.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="unique_pm_template_name_per_team"),
        ]

    def __str__(self) -> str:
        return self.name


class Postmortem(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        PUBLISHED = "published", "Published"

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="postmortems")
    title = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    incidents = models.ManyToManyField(Incident, related_name="postmortems")
    problems = models.ManyToManyField(Problem, blank=True, related_name="postmortems")
    template = models.ForeignKey(
        PostmortemTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(blank=True, help_text="Markdown: headings, tables, fenced code.")
    contributing_factors = models.TextField(
        blank=True, help_text="One factor per line (process, tooling, change, capacity, ...)."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Who writes it.",
    )
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="postmortems_to_review"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    timeline_refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["team", "status"], name="postmortem_team_status")]

    def __str__(self) -> str:
        return self.title

    @property
    def ref(self) -> str:
        return f"PM-{self.pk}"


class PostmortemTimelineItem(models.Model):
    """A copy of one incident timeline entry, frozen into the postmortem. Copies can be
    hidden or annotated; a refresh (while draft) adds new entries and keeps both."""

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="timeline")
    source = models.ForeignKey(
        TimelineEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    incident_ref = models.CharField(max_length=32)
    at = models.DateTimeField()
    kind = models.CharField(max_length=20, choices=TimelineEntry.Kind.choices)
    message = models.TextField()
    actor = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=20, blank=True)
    milestone = models.BooleanField(default=False)
    hidden = models.BooleanField(default=False)
    annotation = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["postmortem", "source"], name="unique_pm_timeline_source"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.message[:60]}"


class ActionItem(models.Model):
    class Kind(models.TextChoices):
        MITIGATE = "mitigate", "Mitigate"
        PREVENT = "prevent", "Prevent"
        PROCESS = "process", "Process"
        OTHER = "other", "Other"

    class Priority(models.TextChoices):
        HIGH = "high", "High"
        MEDIUM = "medium", "Medium"
        LOW = "low", "Low"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        WONT_DO = "wont_do", "Won't do"

    OPEN_STATUSES = (Status.OPEN, Status.IN_PROGRESS)

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="action_items")
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="action_items",
    )
    due_date = models.DateField(null=True, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PREVENT)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    ticket_url = models.URLField(blank=True, max_length=500, help_text="Tracking ticket (Jira, GitHub, ...).")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_date", "id"]
        indexes = [models.Index(fields=["status", "due_date"], name="actionitem_status_due")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_overdue(self) -> bool:
        return bool(
            self.due_date and self.status in self.OPEN_STATUSES and self.due_date < timezone.localdate()
        )

    @classmethod
    def overdue_q(cls, today: date | None = None) -> models.Q:
        """``is_overdue`` as a query filter."""
        return models.Q(status__in=cls.OPEN_STATUSES, due_date__lt=today or timezone.localdate())


class PostmortemChange(models.Model):
    """Who changed what on a postmortem (and its action items and timeline copy)."""

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="changes")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=40)
    message = models.TextField()
    fields = models.JSONField(default=dict, blank=True, help_text="{field: [old, new]}")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.message[:60]}"
