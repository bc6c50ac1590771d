"""Paging with REDIS_URL set and the task broker unreachable (ircore.tasks): the alert is
taken, the first step waits in the outbox (kept once however often the clock
re-dispatches it after a claim lease), and pages as soon as the broker answers."""

from __future__ import annotations

import pytest
from django.core import mail
from django_q.conf import Conf

from ircore.models import OutboxTask
from ircore.testing import unreachable_redis_url
from oncall.models import Escalation

pytestmark = pytest.mark.django_db


def test_a_page_queued_during_the_outage_is_sent_once_the_broker_answers(
    clock, chain, trigger, use_broker, monkeypatch
):
    use_broker(unreachable_redis_url())
    incident = trigger()  # the alert is taken: no error reaches the sender
    esc = Escalation.objects.get(incident=incident)
    step = ("oncall.tasks.escalation_step", [esc.pk, esc.fence], {"group": "oncall"})
    assert list(OutboxTask.objects.values_list("func", "args", "options")) == [step]

    for _ in range(3):  # each claim lease the clock hands the due step out again
        clock.advance(seconds=31)
    row = OutboxTask.objects.get()
    assert (row.func, row.args, row.options) == step and row.attempts == 3  # one flush try per tick
    assert mail.outbox == []

    # The broker answers again (here django-q2 runs the task in-process, as the other tests do).
    monkeypatch.setattr(Conf, "ORM", "default")
    monkeypatch.setattr(Conf, "SYNC", True)
    clock.tick()
    assert [m.to[0] for m in mail.outbox] == ["rita@example.com"]
    assert OutboxTask.objects.count() == 0
    clock.advance(seconds=31)
    assert [m.to[0] for m in mail.outbox] == ["rita@example.com"]  # paged once
