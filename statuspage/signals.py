"""Cache invalidation: any change to what a page shows bumps StatusPage.changed_at,
from which the render cache key, ETag and Last-Modified derive. Receivers on the
models (not only in services) so admin and API edits invalidate too."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from statuspage.models import Component, ComponentGroup, Maintenance, PublicIncident, PublicUpdate, StatusPage


def _page_id(instance: Any) -> int | None:
    if isinstance(instance, PublicUpdate):
        parent = instance.incident if instance.incident_id else instance.maintenance
        return getattr(parent, "page_id", None)
    return getattr(instance, "page_id", None)


def _touch(page_id: int | None) -> None:
    if page_id:
        from statuspage.services import page_touch

        page_touch(page_id=page_id)


@receiver(pre_save, sender=StatusPage, dispatch_uid="statuspage_page_changed")
def _page_changed(sender: type, instance: StatusPage, **kwargs: Any) -> None:
    instance.changed_at = timezone.now()


@receiver(post_save, sender=StatusPage, dispatch_uid="statuspage_page_saved")
@receiver(post_delete, sender=StatusPage, dispatch_uid="statuspage_page_deleted")
def _page_saved(sender: type, instance: StatusPage, **kwargs: Any) -> None:
    from statuspage.services import page_row_key

    key = page_row_key(instance.slug)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def _on_change(sender: type, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw:
        return
    try:
        _touch(_page_id(instance))
    except (PublicIncident.DoesNotExist, Maintenance.DoesNotExist):
        pass  # parent deleted in the same cascade


for _model in (Component, ComponentGroup, PublicIncident, Maintenance, PublicUpdate):
    post_save.connect(_on_change, sender=_model, dispatch_uid=f"statuspage_touch_save_{_model.__name__}")
    post_delete.connect(_on_change, sender=_model, dispatch_uid=f"statuspage_touch_delete_{_model.__name__}")


def _on_m2m(sender: type, instance: Any, action: str, **kwargs: Any) -> None:
    if action.startswith("post_") and isinstance(instance, PublicIncident | Maintenance):
        _touch(instance.page_id)


for _through in (PublicIncident.components.through, Maintenance.components.through):
    m2m_changed.connect(_on_m2m, sender=_through, dispatch_uid=f"statuspage_touch_m2m_{_through.__name__}")
