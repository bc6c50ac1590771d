"""Heartbeat state (kept in oncall, which may import incidents): record pings, open an
incident when one goes missing, resolve it when pings resume."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from incidents.heartbeats import heartbeat_event, heartbeat_options, heartbeat_pinged
from incidents.models import Integration
from incidents.services import alert_ingest
from oncall.models_escalation import HeartbeatState

log = logging.getLogger(__name__)


def heartbeat_record(*, integration: Integration, at: datetime) -> HeartbeatState:
    with transaction.atomic():
        state, _ = HeartbeatState.objects.get_or_create(integration=integration)
        state = HeartbeatState.objects.select_for_update().get(pk=state.pk)
        was_expired = state.expired
        state.last_ping_at = at
        state.due_at = at + timedelta(seconds=heartbeat_options(integration).seconds)
        state.expired = False
        state.save()
        if was_expired:
            alert_ingest(integration=integration, received_at=at,
                         event=heartbeat_event(integration=integration, missing=False, last_ping_at=at))
    return state


def on_ping(sender: Any, integration: Integration, at: datetime, **kwargs: Any) -> None:
    heartbeat_record(integration=integration, at=at)


def heartbeats_expire(now: datetime) -> int:
    """Clock job: heartbeats past due open (or join) their incident, once per silence."""
    count = 0
    with transaction.atomic():
        states = list(
            HeartbeatState.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(expired=False, due_at__lte=now, integration__enabled=True)
            .select_related("integration__service")[:100]
        )
        for state in states:
            state.expired = True
            state.save(update_fields=["expired"])
            try:
                event = heartbeat_event(integration=state.integration, missing=True,
                                        last_ping_at=state.last_ping_at)
            except ValueError:
                log.warning("heartbeat %s has bad options; not alerting", state.integration_id)
                continue
            alert_ingest(integration=state.integration, event=event, received_at=now)
            count += 1
    return count


def connect() -> None:
    heartbeat_pinged.connect(on_ping, dispatch_uid="oncall.heartbeats.ping")
