"""Triage at the endpoint: what the rules decide for an event, stored with it in the queue.

Most of an alert stream repeats incidents that are already open. The applier adds
such repeats to their incidents with one set-based statement per batch
(``incidents.batch_repeats``) instead of triaging and writing each in Python; for that
it needs what triage decides, which the endpoint works out when it stores the event: the
service after routing and the dedup key after rules (for a trigger), the severity and
priority (for a trigger that is not suppressed: the only kind that statement takes).
A repeat added that way is thus triaged with the rules in force when it arrived;
the applier triages every other event itself, with the rules in force then.

The rules come from a per-process cache, as integrations do (``ingestion.common``):
saving or deleting a rule or a service clears this process's entries at once; other
processes see the change within ``TEAM_TRIAGE_CACHE_SECONDS``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, NamedTuple

from django.db import DatabaseError

from incidents.events import DEFAULT_PRIORITY_FOR_SEVERITY, AlertEvent
from incidents.models import AlertAction, Integration, Service, TriageRule
from incidents.services import team_rules
from incidents.triage import triage_apply
from ircore.process_cache import ProcessCache

log = logging.getLogger(__name__)

TEAM_TRIAGE_CACHE_SECONDS = 5.0


class TeamTriage(NamedTuple):
    rules: list[TriageRule]
    service_ids: frozenset[int]  # where a rule may route an event: the team's own services


_teams: ProcessCache[TeamTriage] = ProcessCache(TEAM_TRIAGE_CACHE_SECONDS)


def team_triage_cache_clear(**_: Any) -> None:
    _teams.clear()


def team_triage(team_id: int) -> TeamTriage:
    cached = _teams.get(team_id)
    if cached is not None:
        return cached
    services = frozenset(Service.objects.filter(team_id=team_id).values_list("pk", flat=True))
    return _teams.put(team_id, TeamTriage(team_rules(team_id), services))


class Triaged(NamedTuple):
    """``QueuedEvent``'s triaged_* columns, in order."""

    service_id: int
    key: str  # "" for an acknowledge or resolve
    severity: str  # "" unless a trigger that is not suppressed
    priority: str


def event_triaged(integration: Integration, event: AlertEvent) -> Triaged:
    """What the rules as they are now decide for ``event`` (stored already, with its
    dedup key): the same triage as ``alert_batch.AlertBatch._plan``. If triage fails (a
    bug an event's content hits), the event is stored all the same, without a key: the
    applier triages it and keeps it as a failed alert if that fails again."""
    try:
        return _triaged(integration, event)
    except DatabaseError:
        raise  # the event could not be stored either: the endpoint answers 503
    except Exception:  # noqa: BLE001 - never refuse an event for this
        log.exception("Triage at the endpoint failed; the applier will triage the event")
        return Triaged(integration.service_id, "", "", "")


def _triaged(integration: Integration, event: AlertEvent) -> Triaged:
    triage = team_triage(integration.service.team_id)
    service_id = integration.service_id
    triaged, suppress = event, False
    if triage.rules:
        triaged = replace(event)  # the rules change the event they are given
        result = triage_apply(triage.rules, triaged, service_id=service_id, integration_id=integration.pk)
        if result.route_to_service_id in triage.service_ids:  # only within the team, as alert_ingest does
            service_id = result.route_to_service_id
        suppress = result.suppress
    if triaged.action != AlertAction.TRIGGER:
        # An acknowledge or resolve may act on an incident of another key (the one this
        # integration's trigger was re-keyed or routed to): no key of its own, so the
        # applier's statement adds nothing queued after it.
        return Triaged(service_id, "", "", "")
    key = triaged.dedup_key[:255]
    if suppress:
        return Triaged(service_id, key, "", "")
    return Triaged(service_id, key, triaged.severity,
                   triaged.priority or DEFAULT_PRIORITY_FOR_SEVERITY[triaged.severity])
