"""The demo data pages someone: each demo team gets an on-call schedule (a weekly rotation
of its responders, someone on call now) and a default escalation chain, so an alert on a
demo service pages the person on call, then the team's manager. Re-running the command
adds nothing and keeps the user's edits."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from incidents.alert_queue import events_enqueue, queue_drain
from incidents.events import AlertEvent
from incidents.models import Incident, Integration, Service
from ircore.clock import clock_tick
from ircore.models import Team
from oncall.models import (
    Escalation,
    EscalationChain,
    EscalationStep,
    Notification,
    Rotation,
    RotationMember,
    Schedule,
)
from oncall.selectors import schedule_oncall_at

# team slug -> (a service of the team, its responders in rotation order, its manager, time zone)
DEMO_TEAMS = {
    "payments": ("payments-api", ["rita", "sam"], "maya", "Europe/Berlin"),
    "search": ("search-api", ["sid"], "otto", "America/New_York"),
}


# A Wednesday: far from a Monday 09:00 handoff, so who is on call cannot change mid-test.
MIDWEEK = datetime(2026, 3, 4, 11, 0, tzinfo=UTC)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def paging_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (
        Schedule, Rotation, RotationMember, EscalationChain, EscalationStep)}


@pytest.fixture
def demo(settings, tmp_path, monkeypatch):
    """`ircore_demo` as `make run` runs it; tasks run in-process, mail is kept in memory."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    settings.VAR_DIR = tmp_path
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with time_machine.travel(MIDWEEK, tick=True):
        yield run("ircore_demo")


def user(username: str):
    return get_user_model().objects.get(username=username)


@pytest.mark.django_db(transaction=True)
def test_each_demo_team_has_a_weekly_schedule_and_a_default_chain(demo):
    assert "schedule 'Payments on-call'" in demo and "schedule 'Search on-call'" in demo
    for slug, (_, responders, _, tz) in DEMO_TEAMS.items():
        team = Team.objects.get(slug=slug)
        schedule = Schedule.objects.get(team=team)
        assert schedule.name == f"{team.name} on-call" and schedule.timezone == tz
        (rotation,) = schedule.rotations.all()
        assert (rotation.shift_amount, rotation.shift_unit) == (1, "weeks")
        assert rotation.handoff_date == date(2024, 1, 1) and rotation.handoff_date.weekday() == 0
        members = rotation.members.order_by("position").values_list("user__username", flat=True)
        assert list(members) == responders
        # Someone is on call now, and each responder has a week in turn.
        weeks = [schedule_oncall_at(schedule=schedule, at=MIDWEEK + timedelta(weeks=n))
                 for n in range(len(responders))]
        assert all(len(oncall) == 1 for oncall in weeks)
        assert sorted(get_user_model().objects.get(pk=oncall[0].user_id).username
                      for oncall in weeks) == sorted(responders)
        chain = EscalationChain.objects.get(team=team)
        assert chain.is_default and chain.name == "On-call, then manager"
        first, second = chain.steps.order_by("position")
        assert list(first.schedules.all()) == [schedule] and first.delay_minutes == 5
        assert second.team_managers and not second.schedules.exists()


@pytest.mark.django_db(transaction=True)
def test_an_alert_on_each_demo_team_pages_the_person_on_call_then_the_manager(demo):
    # The demo's own SEV1 incident paged Payments' on-call person already.
    db_down = Incident.objects.get(dedup_key="demo-payments-db")
    assert Notification.objects.filter(incident=db_down, kind="page", status="sent").exists()
    for slug, (service_name, responders, manager, _) in DEMO_TEAMS.items():
        service = Service.objects.get(team__slug=slug, name=service_name)
        integration = Integration.objects.filter(service=service, kind="generic").first() \
            or Integration.objects.create(service=service, kind="generic", name="test webhook")
        mail.outbox.clear()
        now = timezone.now()
        events_enqueue(integration=integration,
                       events=[AlertEvent(summary=f"{service_name} is down", severity="SEV2",
                                          dedup_key=f"oncall-test-{slug}")])
        assert queue_drain() == 1
        incident = Incident.objects.get(service=service, dedup_key=f"oncall-test-{slug}")
        escalation = Escalation.objects.get(incident=incident)
        assert escalation.chain == EscalationChain.objects.get(team__slug=slug, is_default=True)
        assert escalation.state == "active" and not escalation.warning

        # Step 1: whoever the schedule has on call now, one of the team's demo responders.
        oncall = schedule_oncall_at(schedule=Schedule.objects.get(team__slug=slug), at=now)
        assert len(oncall) == 1
        person = get_user_model().objects.get(pk=oncall[0].user_id)
        assert person.username in responders
        pages = Notification.objects.filter(incident=incident, kind="page")
        assert [(n.step_index, n.user, n.channel, n.address, n.status) for n in pages] == [
            (0, person, "email", person.email, "sent")]
        assert [m.to for m in mail.outbox] == [[person.email]]
        assert mail.outbox[0].subject.startswith(f"[{incident.ref}] [SEV2]")

        # Step 2, five minutes later with nobody acknowledging: the team's manager.
        with time_machine.travel(now + timedelta(minutes=5, seconds=30), tick=False):
            clock_tick(force=True)
        step2 = pages.filter(step_index=1)
        assert [(n.user, n.address, n.status) for n in step2] == [
            (user(manager), user(manager).email, "sent")]


@pytest.mark.django_db(transaction=True)
def test_rerunning_the_demo_adds_no_paging_and_keeps_edits(demo):
    before = paging_counts()
    assert before["Schedule"] == 2 and before["EscalationChain"] == 2
    # The user renames the schedule and changes a step: a re-run neither adds a second
    # schedule or chain nor undoes the edits.
    Schedule.objects.filter(name="Payments on-call").update(name="Payments primary", timezone="UTC")
    EscalationStep.objects.filter(chain__team__slug="payments", position=0).update(delay_minutes=15)
    assert "nothing changed" in run("ircore_demo")
    assert paging_counts() == before
    schedule = Schedule.objects.get(team__slug="payments")
    assert (schedule.name, schedule.timezone) == ("Payments primary", "UTC")
    assert EscalationStep.objects.get(chain__team__slug="payments", position=0).delay_minutes == 15
    # A team whose paging the user removed and set up their own way is left to them.
    Schedule.objects.filter(team__slug="search").delete()
    EscalationChain.objects.filter(team__slug="search").update(name="Ours", is_default=False)
    assert "nothing changed" in run("ircore_demo")
    assert list(EscalationChain.objects.filter(team__slug="search").values_list("name", "is_default")) == [
        ("Ours", False)]
    assert not Schedule.objects.filter(team__slug="search").exists()


@pytest.mark.django_db(transaction=True)
def test_admin_only_creates_no_paging(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    run("ircore_demo", "--admin-only")
    assert set(paging_counts().values()) == {0}
