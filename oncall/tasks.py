"""django-q2 tasks: thin, take ids, call a service (DESIGN.md §5)."""

from __future__ import annotations

from ircore.tasks import task_enqueue
from oncall import escalation, notify


def enqueue(func: str, *args: object) -> None:
    task_enqueue(func, *args, group="oncall")


def escalation_step(escalation_id: int, fence: int | None = None) -> int:
    ids = escalation.escalation_step_run(escalation_id=escalation_id, fence=fence)
    for notification_id in ids:  # committed: send at once rather than through the queue
        notify.notification_send(notification_id=notification_id)
    return len(ids)


def notification_send(notification_id: int) -> str:
    return notify.notification_send(notification_id=notification_id)
