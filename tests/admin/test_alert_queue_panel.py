"""The alert queue shows up on the dashboard only when something is wrong, and in
/healthz for monitoring."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from incidents.alert_queue import events_enqueue, queue_drain, queue_health
from incidents.events import AlertEvent
from incidents.models import QueuedEvent


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
