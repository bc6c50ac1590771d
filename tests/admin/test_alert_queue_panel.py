"""The alert queue shows up on the dashboard only when something is wrong, and in
/healthz for monitoring."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from incidents.alert_queue import events_enqueue, queue_drain, queue_health
from incidents.events import AlertEvent
from incidents.models import Alert, QueuedEvent


def queue_panel(response) -> dict | None:
    panels = [p for p in response.context["dashboard_panels"]
              if p["template"].endswith("alert_queue_panel.html")]
    return panels[0] if panels else None


def test_quiet_when_the_queue_keeps_up(login, responder, service_a, make_integration):
    events_enqueue(integration=make_integration(service_a, "generic"), events=[AlertEvent(summary="fresh")])
    response = login(responder).get("/admin/")
    assert response.status_code == 200 and queue_panel(response) is None


def test_warns_when_events_wait_and_when_one_is_stuck(login, responder, service_a, make_integration):
    integration = make_integration(service_a, "generic")
    events_enqueue(integration=integration, events=[AlertEvent(summary="old")],
                   received_at=timezone.now() - timedelta(minutes=3))
    events_enqueue(integration=integration, events=[AlertEvent(summary="newer")])
    QueuedEvent.objects.create(integration=integration, service=service_a, event="{}",
                               received_at=timezone.now(), error="DataError('refused')")
    response = login(responder).get("/admin/")
    panel = queue_panel(response)
    assert panel is not None and panel["lagging"]
    assert (panel["waiting"], panel["stuck"]) == (2, 1)
    assert 170 < panel["oldest_seconds"] < 240
    text = response.content.decode()
    assert "2 accepted alert events waiting, the oldest for" in text
    assert "Is the <code>clock</code> process running" in text
    assert "1 event could neither be applied nor kept as a failed alert" in text

    queue_drain()
    assert queue_health() == {"waiting": 0, "oldest_seconds": None, "stuck": 1}
    panel = queue_panel(login(responder).get("/admin/"))
    assert panel is not None and not panel["lagging"]


def test_healthz_reports_the_queue(client, service_a, make_integration):
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "alert_queue": {"waiting": 0, "oldest_seconds": None, "stuck": 0}}
    events_enqueue(integration=make_integration(service_a, "generic"), events=[AlertEvent(summary="x")],
                   received_at=timezone.now() - timedelta(seconds=90))
    response = client.get("/healthz")
    assert response.status_code == 200  # a backlog is for monitoring, not for the load balancer
    queue = response.json()["alert_queue"]
    assert queue["waiting"] == 1 and queue["oldest_seconds"] >= 90


def test_superusers_review_and_retry_stuck_events(login, admin_user, responder, service_a, make_integration):
    integration = make_integration(service_a, "generic")
    events_enqueue(integration=integration, events=[AlertEvent(summary="fine", dedup_key="fine")])
    stuck = QueuedEvent.objects.create(
        integration=integration, service=service_a, received_at=timezone.now(),
        event='{"action": "trigger", "summary": "disk full", "dedup_key": "disk"}',
        error="DataError('refused')",
    )
    admin = login(admin_user)
    dashboard = admin.get("/admin/").content.decode()
    assert "/admin/incidents/queuedevent/?error__isempty=0" in dashboard
    listing = admin.get("/admin/incidents/queuedevent/?error__isempty=0")
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [stuck]
    assert "refused" in listing.content.decode()
    assert admin.get(f"/admin/incidents/queuedevent/{stuck.pk}/change/").status_code == 200

    response = admin.post("/admin/incidents/queuedevent/",
                          {"action": "retry", "_selected_action": [stuck.pk]}, follow=True)
    assert "1 event(s) handed back to the applier." in response.content.decode()
    assert queue_drain() == 2
    assert not QueuedEvent.objects.exists()
    assert Alert.objects.get(dedup_key="disk").outcome == "opened"

    # Raw events of every team: not for responders, in the menu or by URL.
    as_responder = login(responder)
    assert as_responder.get("/admin/incidents/queuedevent/").status_code == 403
    assert "queuedevent" not in as_responder.get("/admin/").content.decode()
