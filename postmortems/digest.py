"""The weekly digest: one email per person with their open action items (overdue
first). Run by the django-q2 schedule created in migration 0003."""

from __future__ import annotations

import logging
from datetime import date
from itertools import groupby

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from ircore.email import email_send
from postmortems.models import ActionItem

logger = logging.getLogger(__name__)
DIGEST_SCHEDULE_NAME = "postmortems: weekly action item digest"


def action_item_digest_send(*, today: date | None = None) -> int:
    """Send the digest to every active owner with an email address; returns how many
    were sent. One person's failure is logged and does not stop the others."""
    today = today or timezone.localdate()
    items = (
        ActionItem.objects.filter(status__in=ActionItem.OPEN_STATUSES, owner__is_active=True)
        .exclude(owner__email="")
        .select_related("owner", "postmortem")
        .order_by("owner_id", "due_date", "id")
    )
    users = get_user_model()
    sent = 0
    base = settings.PUBLIC_URL
    for _owner_id, group in groupby(items, key=lambda item: item.owner_id):
        owned = list(group)
        owner: users = owned[0].owner  # type: ignore[valid-type]
        rows = [
            {
                "item": item,
                "overdue": bool(item.due_date and item.due_date < today),
                "url": base + reverse("admin:postmortems_actionitem_change", args=[item.pk]),
                "postmortem_url": base
                + reverse("admin:postmortems_postmortem_change", args=[item.postmortem_id]),
            }
            for item in owned
        ]
        rows.sort(key=lambda row: (not row["overdue"], row["item"].due_date or date.max))
        context = {
            "owner": owner,
            "name": owner.get_full_name() or owner.get_username(),
            "rows": rows,
            "overdue_count": sum(1 for row in rows if row["overdue"]),
            "today": today,
            "list_url": base + reverse("admin:postmortems_actionitem_changelist") + "?mine=yes",
        }
        try:
            email_send(name="actionitem_digest", to=[owner.email], context=context)
        except Exception:  # noqa: BLE001 - one bad address must not stop everyone's digest
            logger.exception("Action item digest to %s failed", owner.email)
            continue
        sent += 1
    return sent
