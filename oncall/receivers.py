"""What on-call does when an incident changes (signals from incidents, sent after
commit). Connected in OncallConfig.ready()."""

from __future__ import annotations

from typing import Any

from incidents import signals
from incidents.models import Incident
from oncall import escalation, heartbeats, notify


def on_triggered(sender: Any, incident: Incident, reopened: bool = False, **kwargs: Any) -> None:
    if incident.in_maintenance and not reopened:
        return  # incidents already wrote "in maintenance: nobody is paged"
    escalation.escalation_start(incident=incident, restart=reopened, reason="Reopened" if reopened else "")


def on_acknowledged(sender: Any, incident: Incident, **kwargs: Any) -> None:
    escalation.escalation_stop(incident=incident, reason="acknowledged")
    escalation.escalation_set_ack_deadline(incident=incident)
    notify.updates_create(incident=incident, event="acknowledged")


def on_unacknowledged(sender: Any, incident: Incident, **kwargs: Any) -> None:
    # Back to triggered (by hand or by the acknowledgement timeout): page again.
    escalation.escalation_start(incident=incident, restart=True, reason="Un-acknowledged")


def on_resolved(sender: Any, incident: Incident, **kwargs: Any) -> None:
    escalation.escalation_stop(incident=incident, reason="resolved")
    notify.updates_create(incident=incident, event="resolved")


def on_escalation_requested(sender: Any, incident: Incident, **kwargs: Any) -> None:
    escalation.escalation_escalate(incident=incident)


def connect() -> None:
    signals.incident_triggered.connect(on_triggered, dispatch_uid="oncall.escalation.triggered")
    signals.incident_acknowledged.connect(on_acknowledged, dispatch_uid="oncall.escalation.acknowledged")
    signals.incident_unacknowledged.connect(
        on_unacknowledged, dispatch_uid="oncall.escalation.unacknowledged"
    )
    signals.incident_resolved.connect(on_resolved, dispatch_uid="oncall.escalation.resolved")
    signals.incident_escalation_requested.connect(
        on_escalation_requested, dispatch_uid="oncall.escalation.requested"
    )
    heartbeats.connect()
