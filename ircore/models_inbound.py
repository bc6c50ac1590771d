"""Inbound email: every received message, stored before it is acted on, and the
security log of the ones that were refused (imported by ircore.models)."""

from __future__ import annotations

from django.db import models


class InboundMessage(models.Model):
    """One email as received by the SMTP listener or an ESP webhook. ``message_key``
    (a hash of the Message-ID, or of the raw bytes when there is none) is unique, so a
    message delivered twice is stored and acted on once."""

    class Via(models.TextChoices):
        SMTP = "smtp", "SMTP listener"
        WEBHOOK = "webhook", "ESP inbound webhook"
        TEST = "test", "Direct (tests, console)"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        REFUSED = "refused", "Refused"
        IGNORED = "ignored", "No handler"
        FAILED = "failed", "Failed"

    message_key = models.CharField(max_length=64, unique=True)
    message_id = models.CharField(max_length=998, blank=True)
    received_via = models.CharField(max_length=10, choices=Via.choices)
    esp = models.CharField(max_length=30, blank=True, help_text="The ESP for webhook deliveries.")
    mail_from = models.CharField(max_length=998, blank=True, help_text="The envelope sender.")
    recipients = models.JSONField(default=list, help_text="Envelope recipients in our domain.")
    remote_addr = models.CharField(max_length=100, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    size = models.PositiveIntegerField(default=0)
    raw = models.BinaryField(help_text="The message as received (RFC 5322 bytes).")
    extra = models.JSONField(
        default=dict, blank=True, help_text="What the ESP added, e.g. its stripped reply text."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    result = models.TextField(blank=True)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(db_index=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="Last hand-over to the task queue (the clock re-queues lost ones)."
    )
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["status", "enqueued_at"], name="inbound_status_enqueued")]

    def __str__(self) -> str:
        return f"{self.subject[:60] or '(no subject)'} from {self.mail_from or '?'}"


class SecurityLogEntry(models.Model):
    """Something ircore refused for a security reason (a forged reply token, a reply
    from another address, an auto-reply that would loop...). Superusers only."""

    class Reason(models.TextChoices):
        BAD_TOKEN = "bad_token", "Tampered or malformed reply token"
        EXPIRED_TOKEN = "expired_token", "Expired reply token"
        SENDER_MISMATCH = "sender_mismatch", "Sender is not the notified address"
        AUTO_REPLY = "auto_reply", "Automatic reply"
        LOOP = "loop", "Mail from ircore itself"
        OVERSIZE = "oversize", "Message over the size limit"
        MALFORMED = "malformed", "Malformed message"
        UNKNOWN_RECIPIENT = "unknown_recipient", "Unknown recipient"
        NOT_ALLOWED = "not_allowed", "Not allowed"

    created_at = models.DateTimeField(db_index=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.TextField(blank=True)
    sender = models.CharField(max_length=998, blank=True)
    recipient = models.CharField(max_length=998, blank=True)
    remote_addr = models.CharField(max_length=100, blank=True)
    message = models.ForeignKey(
        InboundMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="security_log"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "security log entry"
        verbose_name_plural = "security log"

    def __str__(self) -> str:
        return f"{self.get_reason_display()}: {self.sender or '?'}"
