"""One row per (subscriber, update) and per (subscriber, component change): the record
that a subscriber was told, and the claim that makes a repeated task send nothing twice
(a re-run fan-out, a task handed over twice, a worker that died mid-send)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from statuspage.models import Subscriber


class SubscriberDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    subscriber = models.ForeignKey(
        "statuspage.Subscriber", on_delete=models.CASCADE, related_name="deliveries"
    )
    update = models.ForeignKey(
        "statuspage.PublicUpdate", null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    change = models.ForeignKey(
        "statuspage.ComponentStatusChange",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    # The subscriber's kind when the row was made (email or webhook).
    channel = models.CharField(max_length=10, choices=Subscriber.Kind.choices)
    # As it was when the row was made: the subscriber's address may change or go.
    address = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "subscriber deliveries"
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(update__isnull=False, change__isnull=True)
                    | Q(update__isnull=True, change__isnull=False)
                ),
                name="sp_delivery_update_or_change",
            ),
            models.UniqueConstraint(
                fields=["subscriber", "update"],
                condition=Q(update__isnull=False),
                name="sp_delivery_unique_update",
            ),
            models.UniqueConstraint(
                fields=["subscriber", "change"],
                condition=Q(change__isnull=False),
                name="sp_delivery_unique_change",
            ),
        ]
        # The clock's stuck-send sweep: one index lookup when nothing is stuck.
        indexes = [models.Index(fields=["status", "claimed_until"], name="sp_delivery_lease")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.address} ({self.status})"
