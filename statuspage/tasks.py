"""django-q2 tasks: thin, take ids, call the subscriber/export code. The *_enqueue
helpers are called after commit so a task never sees a row that is not there yet."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from ircore.tasks import task_enqueue

log = logging.getLogger(__name__)
# A lost task (worker crash) must not block exports for long.
EXPORT_PENDING_SECONDS = 120


def notify_enqueue(*, update_id: int) -> None:
    task_enqueue("statuspage.tasks.notify_update", update_id, task_name=f"statuspage-notify-{update_id}")


def confirmation_enqueue(*, subscriber_id: int) -> None:
    task_enqueue("statuspage.tasks.send_confirmation", subscriber_id)


def component_change_enqueue(*, change_id: int) -> None:
    transaction.on_commit(lambda: task_enqueue("statuspage.tasks.notify_component_change", change_id))


def _export_pending_key(page_id: int) -> str:
    return f"statuspage:export-pending:{page_id}"


def export_enqueue(*, page_id: int) -> None:
    """One export task per burst of changes: a change while an export is queued adds
    nothing (the queued task reads the state when it runs, and clears the flag first)."""
    if not getattr(settings, "STATUSPAGE_EXPORT_DIR", ""):
        return

    def enqueue() -> None:
        if cache.add(_export_pending_key(page_id), 1, EXPORT_PENDING_SECONDS):
            task_enqueue("statuspage.tasks.export_page", page_id)

    transaction.on_commit(enqueue)


def notify_update(update_id: int) -> int:
    """Fan out one update: one delivery row and one task per subscriber, so a failing
    webhook is retried alone and never delays or repeats the others. Running this
    twice queues only the subscribers not told yet (their rows say who was)."""
    from statuspage.deliveries import UPDATE_TASK, deliveries_create
    from statuspage.models import PublicUpdate
    from statuspage.subscribers import recipients_for

    update = (
        PublicUpdate.objects.select_related("incident__page", "maintenance__page")
        .filter(pk=update_id)
        .first()
    )
    if update is None:
        return 0
    item = update.incident or update.maintenance
    component_ids = set(item.components.values_list("pk", flat=True))
    recipients = recipients_for(page=item.page, component_ids=component_ids)
    to_tell = deliveries_create(subscribers=recipients, update=update)
    for subscriber_id in to_tell:
        task_enqueue(UPDATE_TASK, update_id, subscriber_id)
    return len(to_tell)


def deliver_update(update_id: int, subscriber_id: int) -> str:
    """Send one update to one subscriber unless its delivery row says it was sent or
    another worker is sending it. Raises on failure so django-q2 retries."""
    from statuspage.deliveries import delivery_for, delivery_run
    from statuspage.subscribers import WebhookRefused, update_deliver

    row = delivery_for(subscriber_id=subscriber_id, update_id=update_id)
    if row is None:
        return "skipped"
    try:
        return delivery_run(
            row=row, send=lambda: update_deliver(update_id=update_id, subscriber_id=subscriber_id)
        )
    except WebhookRefused as exc:
        # Retrying cannot help: the row says why, and the log tells the operator.
        log.warning("Webhook of subscriber %s refused: %s", subscriber_id, exc)
        return "refused"


def send_confirmation(subscriber_id: int) -> bool:
    from statuspage.subscribers import confirmation_send

    return confirmation_send(subscriber_id=subscriber_id)


def notify_component_change(change_id: int) -> int:
    from statuspage.deliveries import CHANGE_TASK, deliveries_create
    from statuspage.models import ComponentStatusChange, Subscriber
    from statuspage.subscribers import recipients_for

    change = ComponentStatusChange.objects.select_related("component__page").filter(pk=change_id).first()
    if change is None:
        return 0
    recipients = [
        s
        for s in recipients_for(page=change.component.page, component_ids={change.component_id})
        if s.kind == Subscriber.Kind.WEBHOOK
    ]
    to_tell = deliveries_create(subscribers=recipients, change=change)
    for subscriber_id in to_tell:
        task_enqueue(CHANGE_TASK, change_id, subscriber_id)
    return len(to_tell)


def deliver_component_change(change_id: int, subscriber_id: int) -> str:
    from statuspage.deliveries import delivery_for, delivery_run
    from statuspage.subscribers import WebhookRefused, component_change_deliver

    row = delivery_for(subscriber_id=subscriber_id, change_id=change_id)
    if row is None:
        return "skipped"
    try:
        return delivery_run(
            row=row, send=lambda: component_change_deliver(change_id=change_id, subscriber_id=subscriber_id)
        )
    except WebhookRefused as exc:
        log.warning("Webhook of subscriber %s refused: %s", subscriber_id, exc)
        return "refused"


def export_page(page_id: int) -> int:
    """Re-export one page under STATUSPAGE_EXPORT_DIR/<slug>/ (public pages only)."""
    from pathlib import Path

    from statuspage.export import page_export
    from statuspage.models import StatusPage

    cache.delete(_export_pending_key(page_id))  # changes from now on queue another export
    page = StatusPage.objects.filter(pk=page_id).first()
    if page is None or not page.is_public:
        return 0
    return len(page_export(page=page, directory=Path(settings.STATUSPAGE_EXPORT_DIR) / page.slug))
