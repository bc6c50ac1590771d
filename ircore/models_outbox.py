"""The task outbox (imported by ircore.models): django-q2 tasks that could not be handed
to the broker, kept in the database until the clock hands them over (ircore.tasks).

It lives in ircore because the queue is shared infrastructure: oncall, statuspage and
inbound email all enqueue through ircore.tasks.task_enqueue."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxTask(models.Model):
    """One task waiting for the broker: the arguments ``async_task`` was called with.
    ``key`` (a hash of func, args and options) is unique: every task here is keyed by
    ids and idempotent on them, so the same task queued again while the first waits
    (the clock re-dispatching a due escalation after each claim lease) is kept once."""

    func = models.CharField(max_length=200, help_text="Dotted path of the task function.")
    args = models.JSONField(default=list, blank=True)
    options = models.JSONField(
        default=dict, blank=True, help_text="Keyword arguments for async_task (group, task_name...)."
    )
    key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed hand-overs by the clock.")
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["pk"]  # created order: the order the clock hands them over
        verbose_name = "queued task awaiting the broker"
        verbose_name_plural = "queued tasks awaiting the broker"

    def __str__(self) -> str:
        return f"{self.func}{tuple(self.args)}"
