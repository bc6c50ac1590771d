"""Weekly digest of open action items: content, who gets it, the django-q2 schedule."""

from datetime import date, timedelta

from django.core import mail
from django_q.models import Schedule

from postmortems import services
from postmortems.digest import DIGEST_SCHEDULE_NAME, action_item_digest_send
from postmortems.tasks import action_item_digest


def test_schedule_is_installed_weekly(db):
    schedule = Schedule.objects.get(name=DIGEST_SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        "postmortems.tasks.action_item_digest",
        Schedule.WEEKLY,
        -1,
    )
    assert schedule.next_run.weekday() == 0 and schedule.next_run.hour == 8


def test_digest_one_mail_per_owner_with_open_items_overdue_first(
    resolved_incident, responder, secondary, manager
):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    today = date(2026, 6, 10)
    services.action_item_create(
        postmortem=pm, user=responder, title="Later one", owner=responder, due_date=today + timedelta(days=5)
    )
    services.action_item_create(
        postmortem=pm,
        user=responder,
        title="Late <one>",
        owner=responder,
        due_date=today - timedelta(days=1),
        ticket_url="https://t.example/1",
    )
    services.action_item_create(postmortem=pm, user=responder, title="Done", owner=secondary, status="done")
    services.action_item_create(postmortem=pm, user=responder, title="No owner")
    manager.email = ""
    manager.save()
    services.action_item_create(postmortem=pm, user=responder, title="No address", owner=manager)
    assert action_item_digest_send(today=today) == 1
    (message,) = mail.outbox
    assert message.to == ["rita@example.com"]
    assert message.subject == "Your open action items: 2 (1 overdue)"
    assert message.body.index("[OVERDUE] Late <one>") < message.body.index("Later one")
    html = message.alternatives[0][0]
    assert "Late &lt;one&gt;" in html and "/admin/postmortems/actionitem/" in html


def test_task_wrapper_sends(resolved_incident, responder):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    services.action_item_create(postmortem=pm, user=responder, title="x", owner=responder)
    assert action_item_digest() == 1 and len(mail.outbox) == 1
