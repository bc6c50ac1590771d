"""Subscribers: email double opt-in and one-click unsubscribe with signed links, webhook
subscribers, and delivery of updates to both (called from django-q2 tasks)."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterable

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from ircore.email import email_send
from ircore.outbound import OutboundURLRefused, outbound_url_check
from statuspage.models import Component, ComponentStatusChange, PublicUpdate, StatusPage, Subscriber
from statuspage.v2 import webhook_payload

log = logging.getLogger(__name__)

CONFIRM_SALT = "statuspage.subscriber.confirm"
UNSUBSCRIBE_SALT = "statuspage.subscriber.unsubscribe"
CONFIRM_MAX_AGE = 3 * 24 * 3600
WEBHOOK_TIMEOUT = 10


class SubscriberTokenError(Exception):
    """A confirm or unsubscribe link that is forged, for another page, or expired."""


def _token(subscriber: Subscriber, salt: str) -> str:
    # The address is part of the signed value: a link keeps working only for the
    # subscription it was made for, even if the row id were reused.
    return signing.dumps({"s": subscriber.pk, "a": str(subscriber)}, salt=salt, compress=True)


def confirm_url(subscriber: Subscriber) -> str:
    path = reverse("statuspage:confirm", args=[subscriber.page.slug, _token(subscriber, CONFIRM_SALT)])
    return f"{settings.PUBLIC_URL}{path}"


def unsubscribe_url(subscriber: Subscriber) -> str:
    path = reverse(
        "statuspage:unsubscribe", args=[subscriber.page.slug, _token(subscriber, UNSUBSCRIBE_SALT)]
    )
    return f"{settings.PUBLIC_URL}{path}"


def _load(page: StatusPage, token: str, salt: str, max_age: int | None) -> Subscriber | None:
    try:
        data = signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise SubscriberTokenError("This link has expired. Please subscribe again.") from exc
    except signing.BadSignature as exc:
        raise SubscriberTokenError("This link is not valid.") from exc
    subscriber = Subscriber.objects.filter(pk=data.get("s"), page=page).first()
    if subscriber is not None and str(subscriber) != data.get("a"):
        raise SubscriberTokenError("This link is not valid.")
    return subscriber


def _check_components(page: StatusPage, component_ids: Iterable[int]) -> list[int]:
    ids = sorted(set(component_ids))
    if ids and Component.objects.filter(page=page, pk__in=ids).count() != len(ids):
        raise ValidationError("Some of the chosen components are not on this page.")
    return ids


def subscriber_subscribe_email(
    *, page: StatusPage, email: str, component_ids: Iterable[int] = ()
) -> Subscriber:
    """Create (or refresh) an unconfirmed subscription and mail the confirmation link.
    An already confirmed address gets no mail (no way to spam someone through us)."""
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError("Please enter a valid email address, like name@example.com.") from None
    ids = _check_components(page, component_ids)
    with transaction.atomic():
        subscriber, created = Subscriber.objects.get_or_create(
            page=page, kind=Subscriber.Kind.EMAIL, email=email
        )
        if subscriber.is_confirmed:
            return subscriber
        subscriber.components.set(ids)
        from statuspage import tasks

        transaction.on_commit(lambda: tasks.confirmation_enqueue(subscriber_id=subscriber.pk))
    return subscriber


def subscriber_confirm(*, page: StatusPage, token: str) -> Subscriber:
    subscriber = _load(page, token, CONFIRM_SALT, CONFIRM_MAX_AGE)
    if subscriber is None:
        raise SubscriberTokenError("This subscription no longer exists. Please subscribe again.")
    Subscriber.objects.filter(pk=subscriber.pk, confirmed_at__isnull=True).update(confirmed_at=timezone.now())
    subscriber.refresh_from_db()
    return subscriber


def subscriber_unsubscribe(*, page: StatusPage, token: str) -> bool:
    """True when a subscription was removed; False when it was already gone."""
    subscriber = _load(page, token, UNSUBSCRIBE_SALT, None)
    if subscriber is None:
        return False
    subscriber.delete()
    return True


def subscriber_add_webhook(*, page: StatusPage, url: str, component_ids: Iterable[int] = ()) -> Subscriber:
    url = (url or "").strip()
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError("Please enter a valid http(s) URL for the webhook.") from None
    ids = _check_components(page, component_ids)
    try:
        with transaction.atomic():
            # Webhooks are added by staff (console/API), so they need no opt-in.
            subscriber = Subscriber.objects.create(
                page=page, kind=Subscriber.Kind.WEBHOOK, webhook_url=url, confirmed_at=timezone.now()
            )
            subscriber.components.set(ids)
    except IntegrityError:
        raise ValidationError("This webhook is already subscribed to the page.") from None
    return subscriber


# --------------------------------------------------------------------------- delivery


def confirmation_send(*, subscriber_id: int) -> bool:
    subscriber = Subscriber.objects.select_related("page").filter(pk=subscriber_id).first()
    if subscriber is None or subscriber.is_confirmed or subscriber.kind != Subscriber.Kind.EMAIL:
        return False
    page = subscriber.page
    email_send(
        name="statuspage-confirm",
        to=[subscriber.email],
        context={
            "page": page,
            "confirm_url": confirm_url(subscriber),
            "page_url": page.public_url,
            "components": list(subscriber.components.all()),
        },
    )
    return True


def recipients_for(*, page: StatusPage, component_ids: set[int]) -> list[Subscriber]:
    """Confirmed subscribers who want news about any of these components (or all)."""
    result = []
    for subscriber in page.subscribers.filter(confirmed_at__isnull=False).prefetch_related("components"):
        wanted = {c.pk for c in subscriber.components.all()}
        if not wanted or not component_ids or wanted & component_ids:
            result.append(subscriber)
    return result


def _unsubscribe_headers(subscriber: Subscriber, url: str) -> dict[str, str]:
    return {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"{subscriber.page.title} status <{subscriber.page.slug}.status.ircore>",
    }


class WebhookRefused(OutboundURLRefused):
    """The URL points at a private/loopback address (and that is not allowed)."""


def webhook_check_address(url: str) -> None:
    """Refuse private, loopback and link-local targets unless STATUSPAGE_WEBHOOK_ALLOW_PRIVATE."""
    try:
        outbound_url_check(url, allow_private=getattr(settings, "STATUSPAGE_WEBHOOK_ALLOW_PRIVATE", False),
                           allow_setting="STATUSPAGE_WEBHOOK_ALLOW_PRIVATE")
    except OutboundURLRefused as exc:
        raise WebhookRefused(str(exc)) from exc


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could lead past the address check: treat it as the answer (an error).
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def webhook_post(url: str, payload: dict) -> int:
    """POST the JSON; raises on refusal, network errors and non-2xx answers."""
    webhook_check_address(url)
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "ircore-statuspage/1"},
    )
    with _opener.open(request, timeout=WEBHOOK_TIMEOUT) as response:
        return response.status


def update_deliver(*, update_id: int, subscriber_id: int) -> str:
    """Send one update to one subscriber; raises on failure so the task is retried."""
    update = (
        PublicUpdate.objects.select_related("incident__page", "maintenance__page")
        .filter(pk=update_id)
        .first()
    )
    subscriber = Subscriber.objects.select_related("page").filter(pk=subscriber_id).first()
    if update is None or subscriber is None or not subscriber.is_confirmed:
        return "skipped"
    item = update.incident or update.maintenance
    page = item.page
    if subscriber.kind == Subscriber.Kind.WEBHOOK:
        webhook_post(
            subscriber.webhook_url,
            webhook_payload(page, unsubscribe_url=unsubscribe_url(subscriber), item=item),
        )
        return "webhook"
    is_maintenance = update.maintenance_id is not None
    leave_url = unsubscribe_url(subscriber)  # once: header and footer carry the same link
    email_send(
        name="statuspage-update",
        to=[subscriber.email],
        headers=_unsubscribe_headers(subscriber, leave_url),
        context={
            "page": page,
            "item": item,
            "update": update,
            "is_maintenance": is_maintenance,
            "status_label": update.status.replace("_", " ").capitalize(),
            "item_url": f"{settings.PUBLIC_URL}{item.get_absolute_url()}",
            "unsubscribe_url": leave_url,
            "tz": page.tz,
            "components": list(item.components.all()),
        },
    )
    return "email"


def component_change_deliver(*, change_id: int, subscriber_id: int) -> str:
    change = ComponentStatusChange.objects.select_related("component__page").filter(pk=change_id).first()
    subscriber = Subscriber.objects.filter(pk=subscriber_id, kind=Subscriber.Kind.WEBHOOK).first()
    if change is None or subscriber is None:
        return "skipped"
    component = change.component
    webhook_post(
        subscriber.webhook_url,
        webhook_payload(
            component.page,
            unsubscribe_url=unsubscribe_url(subscriber),
            component=component,
            change=change,
        ),
    )
    return "webhook"
