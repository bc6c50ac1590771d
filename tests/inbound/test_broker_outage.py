"""Inbound email with REDIS_URL set and the task broker unreachable (ircore.tasks): the
message is stored and its processing waits in the outbox (the clock's inbound_requeue
would also hand it over again, two minutes later), then runs once the broker answers."""

from __future__ import annotations

from django_q.conf import Conf

from ircore.models import InboundMessage, OutboxTask
from ircore.tasks import outbox_flush
from ircore.testing import unreachable_redis_url
from tests.inbound.conftest import make_email


def test_a_message_received_during_the_outage_is_processed_once_the_broker_answers(
    deliver, use_broker, monkeypatch
):
    use_broker(unreachable_redis_url())
    message = deliver(make_email(to="nobody@in.example.net"), to="nobody@in.example.net")
    assert message.status == InboundMessage.Status.RECEIVED
    assert list(OutboxTask.objects.values_list("func", "args", "options")) == [
        ("ircore.inbound.inbound_process", [message.pk], {"group": "inbound-email"})
    ]

    monkeypatch.setattr(Conf, "ORM", "default")  # the broker answers (tasks run in-process)
    monkeypatch.setattr(Conf, "SYNC", True)
    assert outbox_flush(None) == 1
    message.refresh_from_db()
    assert message.status != InboundMessage.Status.RECEIVED and message.processed_at is not None
    assert OutboxTask.objects.count() == 0
