"""Webhook transport: JSON POST signed with HMAC-SHA256 (``X-Ircore-Signature:
sha256=<hex>``) under a per-webhook secret; refuses private and loopback addresses
unless ONCALL_WEBHOOK_ALLOW_PRIVATE is set (an open redirect to the metadata service or
the admin of a router is the classic abuse of user-supplied webhook URLs)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from ircore.outbound import OutboundURLRefused, outbound_url_check
from oncall.transports import TransportError
from oncall.transports.email import incident_url

SIGNATURE_HEADER = "X-Ircore-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_address(url: str) -> None:
    try:
        outbound_url_check(url, allow_private=getattr(settings, "ONCALL_WEBHOOK_ALLOW_PRIVATE", False),
                           allow_setting="ONCALL_WEBHOOK_ALLOW_PRIVATE")
    except OutboundURLRefused as exc:
        raise TransportError(str(exc), retry=False) from exc
    except socket.gaierror as exc:
        raise TransportError(f"cannot resolve {urlsplit(url).hostname}: {exc}") from exc


def payload_for(notification: Any) -> dict[str, Any]:
    incident = notification.incident
    data: dict[str, Any] = {
        "event": notification.event or notification.kind,
        "notification_id": notification.pk,
        "kind": notification.kind,
        "step": None if notification.step_index is None else notification.step_index + 1,
        "loop": notification.loop,
        "user": notification.user.get_username() if notification.user else None,
    }
    if notification.kind == "verify" and notification.contact_method:
        data["verification_code"] = notification.contact_method.verification_code
    if incident is not None:
        data["incident"] = {
            "id": incident.pk, "ref": incident.ref, "title": incident.title, "status": incident.status,
            "severity": incident.severity, "priority": incident.priority, "service": incident.service.name,
            "team": incident.team.slug, "triggered_at": incident.triggered_at, "url": incident_url(incident),
        }
    return data


def post(url: str, secret: str, payload: dict[str, Any], *, delivery: str = "") -> int:
    check_address(url)
    body = json.dumps(payload, cls=DjangoJSONEncoder).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "ircore-webhook/1",
               SIGNATURE_HEADER: sign(secret, body)}
    if delivery:
        # The same on every retry: a receiver drops a copy it has already seen.
        headers["X-Ircore-Delivery"] = delivery
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    timeout = getattr(settings, "ONCALL_WEBHOOK_TIMEOUT", 10)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (checked above)
            return response.status
    except urllib.error.HTTPError as exc:
        # 4xx other than 408/429 will not change on a retry; 5xx may.
        retry = exc.code >= 500 or exc.code in (408, 429)
        raise TransportError(f"HTTP {exc.code} {exc.reason} from {url}", retry=retry) from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransportError(f"webhook not delivered: {reason}") from exc


def deliver(notification: Any) -> str:
    if notification.webhook_id:
        secret = notification.webhook.secret
    elif notification.contact_method_id:
        secret = notification.contact_method.secret
    else:
        raise TransportError("webhook notification without a webhook or contact method", retry=False)
    return str(post(notification.address, secret, payload_for(notification), delivery=str(notification.pk)))
