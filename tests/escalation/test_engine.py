"""Time-travel scenarios through the real pipeline: alert -> incident -> signals ->
escalation -> notifications -> email (locmem backend), with the clock moving time."""

from __future__ import annotations

from datetime import time

import pytest
from django.core import mail

from incidents.models import Incident, TimelineEntry
from incidents.services import (
    incident_acknowledge,
    incident_escalate,
    incident_reopen,
    incident_resolve,
)
from oncall.escalation import escalation_step_run
from oncall.models import (
    ContactMethod,
    Escalation,
    EscalationChain,
    EscalationRoute,
    EscalationStep,
    Notification,
    NotificationRule,
)

pytestmark = pytest.mark.django_db


def recipients() -> list[str]:
    return [m.to[0] for m in mail.outbox]


def timeline(incident: Incident, kind: str) -> list[str]:
    return list(incident.timeline.filter(kind=kind).values_list("message", flat=True))


def test_step_one_then_step_two_after_the_delay_then_ack_stops(clock, chain, trigger, responder, secondary):
    incident = trigger()
    assert recipients() == ["rita@example.com"]
    assert mail.outbox[0].subject == f"[{incident.ref}] [SEV1] Database down on payments-api"
    clock.advance(minutes=4, seconds=59)
    assert recipients() == ["rita@example.com"]  # not yet
    clock.advance(seconds=1)
    assert recipients() == ["rita@example.com", "sam@example.com"]
    esc = Escalation.objects.get(incident=incident)
    assert esc.state == "exhausted" and esc.pages_sent == 2 and not esc.warning

    # A chain with a further step: ack stops it before the step is due.
    step3 = EscalationStep.objects.create(chain=chain, position=2, delay_minutes=5)
    step3.users.set([responder])
    other = trigger(summary="Disk full")
    mail.outbox.clear()
    clock.run(incident_acknowledge, incident=other, user=secondary, via="web")
    clock.advance(minutes=30)
    # Only the "acknowledged" updates to the one person paged, nothing more.
    assert recipients() == ["rita@example.com"]
    assert "acknowledged by Sam" in mail.outbox[0].body
    assert Escalation.objects.get(incident=other).state == "stopped"
    notes = Notification.objects.filter(incident=other)
    assert sorted(notes.values_list("kind", "status")) == [("page", "sent"), ("update", "sent")]
    assert any("Step 1 of 3: notifying Rita by email" in m for m in timeline(other, "escalation"))
    assert any("Notified Rita by email" in m for m in timeline(other, "notification"))


def test_resolve_stops_and_cancels_delayed_pages(clock, chain, trigger, responder):
    webhook = ContactMethod.objects.create(user=responder, kind="webhook", address="http://127.0.0.1:9/x",
                                           verified_at=clock.now)
    email = ContactMethod.objects.create(user=responder, kind="email", address="rita@example.com",
                                         verified_at=clock.now)
    NotificationRule.objects.create(user=responder, contact_method=email, delay_minutes=0)
    NotificationRule.objects.create(user=responder, contact_method=webhook, delay_minutes=2)
    incident = trigger()
    assert recipients() == ["rita@example.com"]
    delayed = Notification.objects.get(incident=incident, contact_method=webhook)
    assert delayed.status == "pending"
    clock.run(incident_resolve, incident=incident, user=None, via="web")
    clock.advance(minutes=20)
    delayed.refresh_from_db()
    assert delayed.status == "cancelled" and "resolved" in delayed.error
    assert Escalation.objects.get(incident=incident).state == "stopped"
    assert Notification.objects.filter(incident=incident, kind="page", status="sent").count() == 1


def test_repeat_loops_then_exhausts(clock, team_a, trigger, responder):
    chain = EscalationChain.objects.create(team=team_a, name="Loop", is_default=True, repeat=2)
    EscalationStep.objects.create(chain=chain, delay_minutes=10).users.set([responder])
    incident = trigger()
    for minutes in (10, 10, 10, 10):
        clock.advance(minutes=minutes)
    assert recipients() == ["rita@example.com"] * 3
    assert sorted(Notification.objects.filter(incident=incident).values_list("loop", flat=True)) == [0, 1, 2]
    assert Escalation.objects.get(incident=incident).state == "exhausted"
    assert any("(loop 3 of 3)" in m for m in timeline(incident, "escalation"))


def test_ack_timeout_retriggers_and_escalates_again(clock, chain, trigger, service_a, secondary):
    service_a.ack_timeout = 15
    service_a.save()
    incident = trigger()
    clock.advance(minutes=1)
    clock.run(incident_acknowledge, incident=incident, user=secondary, via="web")
    mail.outbox.clear()
    clock.advance(minutes=14)
    assert mail.outbox == []
    clock.advance(minutes=1)
    incident.refresh_from_db()
    assert incident.status == "triggered"
    assert any("Acknowledgement timed out after 15 min" in m for m in timeline(incident, "escalation"))
    assert recipients() == ["rita@example.com"]  # step 1 again, as a new generation
    assert Escalation.objects.get(incident=incident).generation == 2


def test_manual_escalate_jumps_to_next_step_and_unacks(clock, chain, trigger, secondary):
    incident = trigger()
    clock.run(incident_acknowledge, incident=incident, user=secondary, via="web")
    mail.outbox.clear()
    clock.run(incident_escalate, incident=incident, user=secondary, via="web")
    incident.refresh_from_db()
    assert incident.status == "triggered"
    assert recipients() == ["sam@example.com"]


def test_reopen_restarts_from_step_one(clock, chain, trigger):
    incident = trigger()
    clock.run(incident_resolve, incident=incident, user=None, via="web")
    mail.outbox.clear()
    clock.run(incident_reopen, incident=incident, user=None, via="web")
    assert recipients() == ["rita@example.com"]
    assert Escalation.objects.get(incident=incident).generation == 2


def test_rerunning_a_step_or_a_stale_task_sends_nothing_twice(clock, chain, trigger):
    incident = trigger()
    esc = Escalation.objects.get(incident=incident)
    # A stale task (old fence) and a second run at the same instant: both no-ops.
    assert escalation_step_run(escalation_id=esc.pk, fence=esc.fence - 1) == []
    clock.tick()
    clock.tick()
    assert recipients() == ["rita@example.com"]
    # Even when the step state is rewound, the notification key makes it a no-op.
    Escalation.objects.filter(pk=esc.pk).update(step_index=0, next_at=clock.now)
    clock.tick()
    assert Notification.objects.filter(incident=incident).count() == 1
    assert recipients() == ["rita@example.com"]


def test_schedule_target_pages_whoever_is_on_call_with_override(clock, team_a, trigger, responder, manager):
    from datetime import date, timedelta

    from oncall.models import Override, Rotation, Schedule
    from oncall.services import rotation_members_set

    schedule = Schedule.objects.create(team=team_a, name="Primary", timezone="UTC")
    rotation = Rotation.objects.create(schedule=schedule, name="Weekly", shift_unit="weeks",
                                       handoff_date=date(2026, 1, 5), handoff_time=time(9))
    rotation_members_set(rotation=rotation, user_ids=[responder.pk])
    Override.objects.create(schedule=schedule, kind="replace", user=manager, replaced_user=responder,
                            start=clock.now - timedelta(hours=1), end=clock.now + timedelta(hours=1))
    chain = EscalationChain.objects.create(team=team_a, name="Sched", is_default=True)
    EscalationStep.objects.create(chain=chain).schedules.set([schedule])
    trigger()
    assert recipients() == ["maya@example.com"]


def test_empty_step_and_nobody_on_call_escalate_on_with_warnings(clock, team_a, trigger, secondary):
    from oncall.models import Schedule

    empty_schedule = Schedule.objects.create(team=team_a, name="Nobody", timezone="UTC")
    chain = EscalationChain.objects.create(team=team_a, name="Gaps", is_default=True)
    EscalationStep.objects.create(chain=chain, position=0, delay_minutes=5)  # no targets
    EscalationStep.objects.create(chain=chain, position=1, delay_minutes=5).schedules.set([empty_schedule])
    EscalationStep.objects.create(chain=chain, position=2).users.set([secondary])
    incident = trigger()
    assert recipients() == ["sam@example.com"]  # at once, not after 10 minutes
    warnings = timeline(incident, "warning")
    assert "Step 1 of 3 reached nobody; escalating to the next step" in warnings
    assert "Step 2 of 3: nobody is on call in schedule 'Nobody'" in warnings


def test_chain_that_pages_nobody_raises_a_visible_warning(clock, team_a, trigger):
    chain = EscalationChain.objects.create(team=team_a, name="Empty", is_default=True, repeat=1)
    EscalationStep.objects.create(chain=chain)
    incident = trigger()
    esc = Escalation.objects.get(incident=incident)
    assert esc.state == "exhausted" and esc.warning == "The escalation chain paged no one."
    assert "The escalation chain paged no one." in timeline(incident, "warning")
    assert mail.outbox == []


def test_no_route_and_no_default_chain_warns(clock, team_a, trigger, responder):
    incident = trigger()
    # No chain at all in the team: the warning is on the escalation (console), not the timeline.
    assert Escalation.objects.get(incident=incident).warning.startswith("No escalation route matched")
    assert timeline(incident, "warning") == []
    chain = EscalationChain.objects.create(team=team_a, name="Only SEV1")
    EscalationStep.objects.create(chain=chain).users.set([responder])
    EscalationRoute.objects.create(team=team_a, name="SEV1", chain=chain, severities=["SEV1"])
    minor = trigger(summary="minor", severity="SEV4")
    assert timeline(minor, "warning") == [Escalation.objects.get(incident=minor).warning]
    assert mail.outbox == []


def test_maintenance_pages_nobody(clock, chain, trigger, team_a, service_a):
    from datetime import timedelta

    from incidents.models import MaintenanceWindow

    window = MaintenanceWindow.objects.create(team=team_a, starts_at=clock.now - timedelta(minutes=5),
                                              ends_at=clock.now + timedelta(hours=1))
    window.services.set([service_a])
    incident = trigger()
    clock.advance(minutes=30)
    assert incident.in_maintenance and mail.outbox == []
    assert not Escalation.objects.filter(incident=incident).exists()


def test_routes_by_severity_and_time_of_day(clock, team_a, trigger, responder, secondary, manager):
    primary = EscalationChain.objects.create(team=team_a, name="Primary")
    EscalationStep.objects.create(chain=primary).users.set([responder])
    business = EscalationChain.objects.create(team=team_a, name="Business hours")
    EscalationStep.objects.create(chain=business).users.set([secondary])
    EscalationRoute.objects.create(team=team_a, name="SEV1 any time", position=0, chain=primary,
                                   severities=["SEV1"])
    EscalationRoute.objects.create(team=team_a, name="SEV3 in hours", position=1, chain=business,
                                   severities=["SEV3"], days=["mon", "tue", "wed", "thu", "fri"],
                                   start_time=time(9), end_time=time(17), timezone="Europe/Berlin")
    EscalationRoute.objects.create(team=team_a, name="SEV3 at night", position=2, chain=business,
                                   severities=["SEV3"], wait_until=time(9), timezone="Europe/Berlin")
    trigger(summary="critical", severity="SEV1")
    assert recipients() == ["rita@example.com"]
    sev3_day = trigger(summary="minor by day", severity="SEV3")  # Monday 11:00 Berlin
    assert recipients() == ["rita@example.com", "sam@example.com"]
    assert Escalation.objects.get(incident=sev3_day).route.name == "SEV3 in hours"

    clock.advance(minutes=10 * 60)  # Monday 21:00 Berlin
    night = trigger(summary="minor at night", severity="SEV3")
    esc = Escalation.objects.get(incident=night)
    assert esc.route.name == "SEV3 at night" and len(mail.outbox) == 2
    assert any("first page held until Tue 2026-03-03 09:00" in m for m in timeline(night, "escalation"))
    clock.advance(minutes=11 * 60 + 59)  # 08:59 Berlin
    assert len(mail.outbox) == 2
    clock.advance(minutes=1)
    assert recipients()[-1] == "sam@example.com"


def test_two_rules_on_one_contact_method_send_one_message(clock, chain, trigger, responder):
    email = ContactMethod.objects.create(user=responder, kind="email", address="rita.pager@example.com",
                                         verified_at=clock.now)
    NotificationRule.objects.create(user=responder, contact_method=email, delay_minutes=0, urgency="high")
    NotificationRule.objects.create(user=responder, contact_method=email, delay_minutes=3, urgency="any")
    trigger()
    clock.advance(minutes=4)
    assert recipients() == ["rita.pager@example.com"]


def test_low_urgency_rules_and_unverified_methods(clock, chain, trigger, responder):
    unverified = ContactMethod.objects.create(user=responder, kind="email", address="new@example.com")
    low = ContactMethod.objects.create(user=responder, kind="email", address="low@example.com",
                                       verified_at=clock.now)
    NotificationRule.objects.create(user=responder, contact_method=unverified)
    NotificationRule.objects.create(user=responder, contact_method=low, urgency="low")
    trigger(summary="sev1", severity="SEV1")  # no usable high-urgency rule: the account email
    trigger(summary="sev4", severity="SEV4")
    assert recipients() == ["rita@example.com", "low@example.com"]


def test_auto_resolve_after_quiet_period(clock, chain, trigger, service_a):
    service_a.auto_resolve_timeout = 30
    service_a.save()
    incident = trigger()
    clock.advance(minutes=29)
    trigger()  # a new alert restarts the quiet period
    clock.advance(minutes=29)
    incident.refresh_from_db()
    assert incident.status == "triggered"
    clock.advance(minutes=1)
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.timeline.filter(kind=TimelineEntry.Kind.RESOLVED,
                                     message__contains="automatically after 30 min").exists()


def test_editing_the_chain_does_not_change_a_running_escalation(clock, chain, trigger, manager):
    incident = trigger()
    step2 = chain.steps.get(position=1)
    step2.users.set([manager])
    clock.advance(minutes=5)
    assert recipients() == ["rita@example.com", "sam@example.com"]
    assert Escalation.objects.get(incident=incident).frozen["name"] == "Default"


def test_maintenance_window_starting_pauses_and_ending_resumes(clock, chain, trigger, team_a, service_a):
    from datetime import timedelta

    from incidents.models import MaintenanceWindow

    incident = trigger()
    assert recipients() == ["rita@example.com"]
    window = MaintenanceWindow.objects.create(team=team_a, starts_at=clock.now + timedelta(minutes=1),
                                              ends_at=clock.now + timedelta(minutes=30))
    window.services.set([service_a])
    clock.advance(minutes=1)
    assert Escalation.objects.get(incident=incident).stop_reason == "maintenance"
    clock.advance(minutes=10)
    assert recipients() == ["rita@example.com"]  # step 2 did not page during maintenance
    clock.advance(minutes=19)
    assert recipients() == ["rita@example.com", "rita@example.com"]  # ended: from step 1 again
    assert "A maintenance window started: paging paused until it ends." in timeline(incident, "maintenance")


def test_updates_go_to_the_people_paged_unless_they_opted_out(clock, chain, trigger, responder, secondary):
    incident = trigger()
    clock.advance(minutes=5)  # sam paged too
    ContactMethod.objects.filter(user=secondary).update(send_updates=False)
    mail.outbox.clear()
    clock.run(incident_resolve, incident=incident, user=responder, via="web")
    assert recipients() == ["rita@example.com"]
    assert "was resolved by Rita" in mail.outbox[0].body
    assert mail.outbox[0].subject.startswith(f"Re: [{incident.ref}]")
    # Resolving twice (a second resolve is refused) sends nothing more.
    clock.run(incident_resolve, incident=incident, user=responder, via="web")
    assert len(mail.outbox) == 1
