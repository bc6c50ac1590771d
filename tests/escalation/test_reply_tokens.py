from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oncall.reply_tokens import ReplyTokenError, reply_address, reply_token_make, reply_token_verify

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_round_trip_short_lowercase_and_bound_to_the_notification(settings):
    settings.INBOUND_EMAIL_DOMAIN = "in.example.org"
    address = reply_address(notification_id=123456789, now=NOW)
    local = address.split("@")[0]
    assert len(local) <= 64 and local == local.lower() and local.startswith("reply.")
    token = reply_token_verify(address, now=NOW)
    assert token.notification_id == 123456789
    assert NOW + timedelta(days=7) <= token.expires_at <= NOW + timedelta(days=8)
    # Mail systems may change the case of the local part.
    assert reply_token_verify(address.upper(), now=NOW).notification_id == 123456789


@pytest.mark.parametrize("mangle", [
    lambda t: t.replace(t.split(".")[0], "zz", 1),  # another notification id
    lambda t: t[:-1] + ("a" if t[-1] != "a" else "b"),  # signature changed
    lambda t: ".".join(t.split(".")[:2]),  # no signature
    lambda t: "",
    lambda t: "a.b.c.d",
])
def test_forged_or_malformed_tokens_are_refused(mangle):
    token = reply_token_make(notification_id=42, now=NOW)
    with pytest.raises(ReplyTokenError):
        reply_token_verify(mangle(token), now=NOW)


def test_expired_token_is_refused():
    token = reply_token_make(notification_id=42, now=NOW)
    assert reply_token_verify(token, now=NOW + timedelta(days=7)).notification_id == 42
    with pytest.raises(ReplyTokenError, match="expired"):
        reply_token_verify(token, now=NOW + timedelta(days=9))


def test_another_secret_key_invalidates_tokens(settings):
    token = reply_token_make(notification_id=42, now=NOW)
    settings.SECRET_KEY = "something else entirely" * 2
    with pytest.raises(ReplyTokenError, match="signature"):
        reply_token_verify(token, now=NOW)
