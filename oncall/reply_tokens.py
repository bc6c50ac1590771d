"""Reply-To tokens: ``reply.<token>@<INBOUND_EMAIL_DOMAIN>`` on every page email.

A token names one Notification row and an expiry day, signed with an HMAC keyed from
SECRET_KEY. It is lowercase base32 so it survives mail systems that fold the case of
local parts, and short (the whole local part stays well under 64 characters). The
inbound email handler calls ``reply_token_verify`` and then checks that the sender is
the notified address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

PREFIX = "reply."
DEFAULT_LIFETIME = timedelta(days=7)
_EPOCH_DAY = 86400


class ReplyTokenError(ValueError):
    pass


@dataclass(frozen=True)
class ReplyToken:
    notification_id: int
    expires_at: datetime


def _b36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rem = divmod(value, 36)
        out = digits[rem] + out
        if not value:
            return out


def _sign(payload: str) -> str:
    key = hashlib.sha256(b"ircore.reply-token:" + settings.SECRET_KEY.encode()).digest()
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:15]
    return base64.b32encode(mac).decode().lower()  # 15 bytes: 24 characters, no padding


def reply_token_make(*, notification_id: int, now: datetime | None = None,
                     lifetime: timedelta = DEFAULT_LIFETIME) -> str:
    expires = (now or timezone.now()) + lifetime
    # Whole days: a shorter token, at most one day of extra life.
    day = int(expires.timestamp()) // _EPOCH_DAY + 1
    payload = f"{_b36(notification_id)}.{_b36(day)}"
    return f"{payload}.{_sign(payload)}"


def reply_address(*, notification_id: int, now: datetime | None = None) -> str:
    token = reply_token_make(notification_id=notification_id, now=now)
    return f"{PREFIX}{token}@{settings.INBOUND_EMAIL_DOMAIN}"


def reply_token_verify(token: str, *, now: datetime | None = None) -> ReplyToken:
    """``token`` with or without the ``reply.`` prefix and the domain. Raises
    ReplyTokenError with a reason a log can show."""
    token = token.strip().lower().split("@", 1)[0].removeprefix(PREFIX)
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise ReplyTokenError("malformed reply token")
    ident, day, signature = parts
    if not hmac.compare_digest(_sign(f"{ident}.{day}"), signature):
        raise ReplyTokenError("bad reply token signature")
    try:
        notification_id, expiry_day = int(ident, 36), int(day, 36)
    except ValueError:
        raise ReplyTokenError("malformed reply token") from None
    expires_at = datetime.fromtimestamp(expiry_day * _EPOCH_DAY, tz=UTC)
    if (now or timezone.now()) >= expires_at:
        raise ReplyTokenError("reply token expired")
    return ReplyToken(notification_id=notification_id, expires_at=expires_at)
