"""Escalation models: how people are reached (contact methods, notification rules,
outgoing webhooks), chains/steps/routes, the running ``Escalation`` of an incident,
every ``Notification`` attempt, and heartbeat state. Imported by oncall.models."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import models
from django.db.models import Q

from ircore.models import Team
from oncall.models import WEEKDAYS, Schedule, validate_timezone

__all__ = [
    "ContactMethod",
    "NotificationRule",
    "OutgoingWebhook",
    "EscalationChain",
    "EscalationStep",
    "EscalationRoute",
    "Escalation",
    "Notification",
    "HeartbeatState",
    "Urgency",
]


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_code() -> str:
    # Typed by a person from an email or a webhook payload: short and unambiguous.
    return f"{secrets.randbelow(10**6):06d}"


def validate_weekdays(value: object) -> None:
    if not isinstance(value, list) or any(day not in WEEKDAYS for day in value):
        raise ValidationError(f"Days must be a list of {', '.join(WEEKDAYS)} (empty: every day).")


def _validate_choice_list(value: object, choices: list[str]) -> None:
    if not isinstance(value, list) or any(v not in choices for v in value):
        raise ValidationError(f"Must be a list of {', '.join(choices)} (empty: any).")


def validate_severities(value: object) -> None:
    _validate_choice_list(value, ["SEV1", "SEV2", "SEV3", "SEV4"])


def validate_priorities(value: object) -> None:
    _validate_choice_list(value, ["P1", "P2", "P3", "P4", "P5"])


class Urgency(models.TextChoices):
    HIGH = "high", "High urgency (SEV1, SEV2)"
    LOW = "low", "Low urgency (SEV3, SEV4)"
    ANY = "any", "Any urgency"


class ContactMethod(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_methods"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.EMAIL)
    label = models.CharField(max_length=100, blank=True)
    address = models.CharField(max_length=500, help_text="Email address, or the webhook's http(s) URL.")
    secret = models.CharField(
        max_length=100, default=new_secret, help_text="Webhooks: key of the X-Ircore-Signature HMAC."
    )
    send_updates = models.BooleanField(
        default=True, help_text="Also send a short update when a paged incident is acknowledged or resolved."
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_code = models.CharField(max_length=12, blank=True, editable=False)
    verification_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__username", "kind", "address"]
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "address"], name="unique_contact_method"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.address}"

    @property
    def verified(self) -> bool:
        return self.verified_at is not None


def validate_contact_address(kind: str, address: str) -> None:
    """The address must fit the kind; admin form and API both check it."""
    if kind == ContactMethod.Kind.EMAIL:
        EmailValidator(message="Enter a valid email address.")(address)
    elif kind == ContactMethod.Kind.WEBHOOK:
        URLValidator(schemes=["http", "https"], message="Enter a valid http(s) URL.")(address)


class NotificationRule(models.Model):
    """"Reach me through this method N minutes after I am paged." A person without
    rules gets an email at once (to their account address)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_rules"
    )
    contact_method = models.ForeignKey(ContactMethod, on_delete=models.CASCADE, related_name="rules")
    delay_minutes = models.PositiveIntegerField(default=0)
    urgency = models.CharField(max_length=10, choices=Urgency.choices, default=Urgency.ANY)

    class Meta:
        ordering = ["user__username", "urgency", "delay_minutes", "id"]

    def __str__(self) -> str:
        return f"{self.contact_method} after {self.delay_minutes} min ({self.urgency})"

    def clean(self) -> None:
        if self.contact_method_id and self.user_id and self.contact_method.user_id != self.user_id:
            raise ValidationError({"contact_method": "This contact method belongs to someone else."})


class OutgoingWebhook(models.Model):
    """A team's webhook target for escalation steps (chat, a ticketing system, ...)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="outgoing_webhooks")
    name = models.CharField(max_length=120)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100, default=new_secret,
                              help_text="Key of the X-Ircore-Signature HMAC-SHA256 over the body.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "name"]

    def __str__(self) -> str:
        return self.name


class EscalationChain(models.Model):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="escalation_chains")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    repeat = models.PositiveIntegerField(
        default=0, help_text="How many more times the whole chain runs when nobody acknowledges."
    )
    is_default = models.BooleanField(
        default=False, help_text="Used for the team's incidents that no route matches."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="unique_chain_name_per_team"),
            models.UniqueConstraint(fields=["team"], condition=Q(is_default=True), name="one_default_chain"),
        ]

    def __str__(self) -> str:
        return self.name


class EscalationStep(models.Model):
    chain = models.ForeignKey(EscalationChain, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0, db_index=True)
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    schedules = models.ManyToManyField(
        Schedule, blank=True, related_name="+", help_text="Whoever is on call when the step runs."
    )
    notify_team = models.BooleanField(default=False, help_text="Every member of the chain's team.")
    team_managers = models.BooleanField(default=False, help_text="The managers of the chain's team.")
    webhooks = models.ManyToManyField(OutgoingWebhook, blank=True, related_name="+")
    delay_minutes = models.PositiveIntegerField(
        default=10, help_text="Minutes before the next step runs if nobody acknowledges."
    )

    class Meta:
        ordering = ["chain", "position", "id"]

    def __str__(self) -> str:
        return f"{self.chain}: step {self.position + 1}"


class EscalationRoute(models.Model):
    """Chooses the chain for an incident. Routes are tried in ``position`` order; every
    condition that is set must match. Empty lists match anything."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="escalation_routes")
    name = models.CharField(max_length=120)
    position = models.PositiveIntegerField(default=0, db_index=True)
    chain = models.ForeignKey(EscalationChain, on_delete=models.CASCADE, related_name="routes")
    services = models.ManyToManyField("incidents.Service", blank=True, related_name="+",
                                      help_text="Empty: every service of the team.")
    severities = models.JSONField(default=list, blank=True,
                                  validators=[validate_severities])
    priorities = models.JSONField(default=list, blank=True,
                                  validators=[validate_priorities])
    days = models.JSONField(default=list, blank=True, validators=[validate_weekdays],
                            help_text='Weekdays, e.g. ["mon","tue","wed","thu","fri"]. Empty: every day.')
    start_time = models.TimeField(null=True, blank=True, help_text="Local time; empty: all day.")
    end_time = models.TimeField(
        null=True, blank=True, help_text="Local time; an end not after the start runs past midnight."
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    wait_until = models.TimeField(
        null=True, blank=True,
        help_text="Hold the first page until this local time on the next weekday (e.g. 09:00: "
        "low-severity incidents at night wait for the morning).",
    )

    class Meta:
        ordering = ["team__name", "position", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if (self.start_time is None) != (self.end_time is None):
            raise ValidationError("Give both a start and an end time, or neither.")
        if self.chain_id and self.team_id and self.chain.team_id != self.team_id:
            raise ValidationError({"chain": "The chain belongs to another team."})


class Escalation(models.Model):
    """The running state for one incident: a frozen copy of the chain taken at start,
    where it is, and when the next step is due. ``fence`` increases on every
    transition so a stale task or clock claim can never run a step twice;
    ``generation`` increases on every (re)start and is part of the notification key."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        STOPPED = "stopped", "Stopped"
        EXHAUSTED = "exhausted", "Chain finished"

    incident = models.OneToOneField("incidents.Incident", on_delete=models.CASCADE, related_name="escalation")
    chain = models.ForeignKey(EscalationChain, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    route = models.ForeignKey(EscalationRoute, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    frozen = models.JSONField(default=dict, help_text="The chain as it was when the escalation started.")
    state = models.CharField(max_length=20, choices=State.choices, default=State.ACTIVE)
    stop_reason = models.CharField(max_length=100, blank=True)
    generation = models.PositiveIntegerField(default=1)
    step_index = models.PositiveIntegerField(default=0)
    loop = models.PositiveIntegerField(default=0)
    next_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    fence = models.PositiveBigIntegerField(default=0)
    ack_deadline = models.DateTimeField(null=True, blank=True, db_index=True)
    pages_sent = models.PositiveIntegerField(default=0)
    warning = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["state", "next_at"], name="escalation_due")]

    def __str__(self) -> str:
        return f"escalation of incident {self.incident_id}"

    @property
    def steps(self) -> list[dict]:
        return list(self.frozen.get("steps", []))


class Notification(models.Model):
    class Kind(models.TextChoices):
        PAGE = "page", "Page"
        UPDATE = "update", "Update"
        TEST = "test", "Test"
        VERIFY = "verify", "Verification"

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    # The idempotency key: (incident, generation, step, loop, person or webhook,
    # contact method, kind). One row per key means a re-run step sends nothing twice.
    key = models.CharField(max_length=200, unique=True)
    incident = models.ForeignKey("incidents.Incident", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="notifications")
    escalation = models.ForeignKey(Escalation, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PAGE)
    event = models.CharField(max_length=20, blank=True, help_text="For updates: acknowledged / resolved.")
    generation = models.PositiveIntegerField(default=1)
    step_index = models.PositiveIntegerField(null=True, blank=True)
    loop = models.PositiveIntegerField(default=0)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="notifications")
    contact_method = models.ForeignKey(ContactMethod, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="notifications")
    webhook = models.ForeignKey(OutgoingWebhook, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="notifications")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    address = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    due_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="notification_due"),
            models.Index(fields=["incident", "created_at"], name="notification_incident"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.address} ({self.status})"


class HeartbeatState(models.Model):
    """Last ping of a heartbeat integration (kept here: incidents' models stay as they
    are). ``due_at`` is when a missing ping opens an incident."""

    integration = models.OneToOneField("incidents.Integration", on_delete=models.CASCADE,
                                       related_name="heartbeat_state")
    last_ping_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    expired = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"heartbeat of {self.integration_id}"
