"""Heartbeat integrations: a monitored job pings ``/integrations/heartbeat/<token>/``;
no ping within the interval (plus grace) opens an incident, pings resuming resolve it.

incidents only announces the ping (``heartbeat_pinged``, sent synchronously so the
ping is recorded before the 2xx); whoever keeps the heartbeat state (oncall) receives
it and its clock job calls ``heartbeat_event`` when a heartbeat goes missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.dispatch import Signal

from incidents.events import AlertEvent
from incidents.models import AlertAction, Integration, Severity

# Sent with sender=Integration, integration=..., at=datetime. Receivers run inside the
# request, before the answer.
heartbeat_pinged = Signal()

DEFAULT_INTERVAL = 300
DEFAULT_GRACE = 60


@dataclass(frozen=True)
class HeartbeatOptions:
    interval: int
    grace: int

    @property
    def seconds(self) -> int:
        return self.interval + self.grace


def heartbeat_options(integration: Integration) -> HeartbeatOptions:
    """``options``: ``{"interval": seconds, "grace": seconds}``; bad values raise
    ValueError with a message for the console."""
    options = integration.options or {}
    values = {}
    for name, default, minimum in (("interval", DEFAULT_INTERVAL, 10), ("grace", DEFAULT_GRACE, 0)):
        value = options.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"Heartbeat option {name!r} must be a whole number of seconds >= {minimum}.")
        values[name] = value
    return HeartbeatOptions(**values)


def heartbeat_dedup_key(integration: Integration) -> str:
    return f"heartbeat-{integration.pk}"


def heartbeat_event(*, integration: Integration, missing: bool, last_ping_at: datetime | None) -> AlertEvent:
    """The alert a missed (``missing``) or resumed heartbeat feeds into alert_ingest."""
    last = f"{last_ping_at:%Y-%m-%d %H:%M:%S %Z}" if last_ping_at else "never"
    if missing:
        options = heartbeat_options(integration)
        return AlertEvent(
            action=AlertAction.TRIGGER, severity=integration.options.get("severity", Severity.SEV2)
            if integration.options.get("severity") in Severity.values else Severity.SEV2,
            summary=f"Heartbeat {integration.name!r} missed: no ping for {options.interval}s "
            f"(+{options.grace}s grace)",
            details=f"Last ping: {last}.", dedup_key=heartbeat_dedup_key(integration),
            source="heartbeat", payload={"heartbeat": "missed", "last_ping_at": last},
        )
    return AlertEvent(
        action=AlertAction.RESOLVE, summary=f"Heartbeat {integration.name!r} resumed",
        dedup_key=heartbeat_dedup_key(integration), source="heartbeat",
        payload={"heartbeat": "resumed", "last_ping_at": last},
    )
