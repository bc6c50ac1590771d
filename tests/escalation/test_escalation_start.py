"""What escalation_start reads in one statement each: whether a maintenance window
covers the moment it runs (with the locked incident), and the team's default chain
together with whether the team has any chain."""

from __future__ import annotations

from datetime import timedelta

import pytest

from incidents.events import AlertEvent
from incidents.models import MaintenanceWindow
from incidents.services import alert_ingest
from oncall.models import Escalation, EscalationChain, EscalationRoute, EscalationStep

pytestmark = pytest.mark.django_db


def test_a_window_that_started_after_the_alert_still_pages_nobody(clock, chain, team_a, service_a,
                                                                  make_integration):
    """The incident opened outside maintenance; by the time the escalation starts (after
    commit, at its own now) a window covers the service: nobody is paged."""
    window = MaintenanceWindow.objects.create(team=team_a, starts_at=clock.now - timedelta(seconds=30),
                                              ends_at=clock.now + timedelta(hours=1))
    window.services.set([service_a])
    result = clock.run(alert_ingest, integration=make_integration(service_a),
                       event=AlertEvent(summary="disk full", dedup_key="disk"),
                       received_at=clock.now - timedelta(minutes=1))
    assert not result.incident.in_maintenance
    assert not Escalation.objects.filter(incident=result.incident).exists()


def test_a_window_of_another_service_does_not_stop_paging(clock, chain, team_a, service_a, trigger):
    from incidents.models import Service

    other = Service.objects.create(team=team_a, name="ledger")
    window = MaintenanceWindow.objects.create(team=team_a, starts_at=clock.now - timedelta(minutes=5),
                                              ends_at=clock.now + timedelta(hours=1))
    window.services.set([other])
    incident = trigger()
    assert Escalation.objects.get(incident=incident).chain == chain


def test_the_default_chain_is_picked_over_older_chains(clock, team_a, trigger, responder):
    older = EscalationChain.objects.create(team=team_a, name="Older, not default")
    EscalationStep.objects.create(chain=older).users.set([responder])
    default = EscalationChain.objects.create(team=team_a, name="Default", is_default=True)
    EscalationStep.objects.create(chain=default).users.set([responder])
    incident = trigger()
    escalation = Escalation.objects.get(incident=incident)
    assert escalation.chain == default and escalation.route is None


def test_routes_are_tried_by_position_then_id(clock, team_a, trigger, responder):
    chains = [EscalationChain.objects.create(team=team_a, name=f"Chain {n}") for n in range(3)]
    for chain in chains:
        EscalationStep.objects.create(chain=chain).users.set([responder])
    EscalationRoute.objects.create(team=team_a, name="Later", chain=chains[0], position=2)
    first = EscalationRoute.objects.create(team=team_a, name="First", chain=chains[1], position=1)
    EscalationRoute.objects.create(team=team_a, name="Same position, higher id", chain=chains[2], position=1)
    escalation = Escalation.objects.get(incident=trigger())
    assert escalation.route == first and escalation.chain == chains[1]
