"""Transports: one small module per contact-method kind. ``deliver`` sends one
Notification row and returns the Message-ID (email) or the HTTP status (webhook);
errors are raised as TransportError (``retry`` says whether trying again may help)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from oncall.models_escalation import Notification


class TransportError(Exception):
    def __init__(self, message: str, *, retry: bool = True):
        super().__init__(message)
        self.retry = retry


def deliver(notification: Notification) -> str:
    from oncall.transports import email, webhook

    if notification.channel == "email":
        return email.deliver(notification)
    if notification.channel == "webhook":
        return webhook.deliver(notification)
    raise TransportError(f"unknown channel {notification.channel!r}", retry=False)
