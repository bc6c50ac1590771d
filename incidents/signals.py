"""Signals through which `incidents` tells the apps above it what happened.

All are sent after the transaction that made the change has committed (see
``incidents.services.send_on_commit``), with ``sender=Incident`` and ``incident=``.
Extra keyword arguments: ``user`` (may be None), ``via`` (TimelineEntry.Via), and for
``incident_triggered`` ``reopened`` (bool).
"""

from django.dispatch import Signal

incident_triggered = Signal()
incident_acknowledged = Signal()
incident_unacknowledged = Signal()
incident_resolved = Signal()
incident_escalation_requested = Signal()
incident_updated = Signal()
