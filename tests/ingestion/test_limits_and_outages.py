"""413, 429 and 503 on every ingestion endpoint, with real bodies and a really
unavailable database; nothing half-written. And a processing failure in the queue's
applier: kept as a failed alert, never lost, re-processable."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine

from incidents.alert_queue import queue_apply_batch
from incidents.models import Alert, Incident, QueuedEvent, TimelineEntry
from incidents.services import alert_reprocess
from tests.ingestion.conftest import alert_inserts_refused, database_unavailable, post_json
from tests.ingestion.test_alertmanager import am_alert, grafana_notification, notification

ENQUEUE = "/integrations/pagerduty/v2/enqueue"
CHANGE = "/integrations/pagerduty/v2/change/enqueue"


def _pd_event(integration, **payload_extra):
    return {"routing_key": integration.token, "event_action": "trigger", "dedup_key": "k",
            "payload": {"summary": "disk full", "source": "db1", "severity": "error", **payload_extra}}


@pytest.fixture
def endpoints(service_a, make_integration):
    """(name, integration, url, body builder) for each ingestion endpoint."""
    generic = make_integration(service_a, "generic")
    pd = make_integration(service_a, "pagerduty")
    am = make_integration(service_a, "alertmanager")
    grafana = make_integration(service_a, "grafana")
    return {
        "generic": (generic, f"/integrations/generic/{generic.token}/",
                    lambda n: {"summary": f"disk full {n}", "dedup_key": f"g{n}"}),
        "pagerduty": (pd, ENQUEUE, lambda n: {**_pd_event(pd), "dedup_key": f"p{n}"}),
        "pagerduty-change": (pd, CHANGE, lambda n: {"routing_key": pd.token,
                                                    "payload": {"summary": f"deploy {n}"}}),
        "alertmanager": (am, f"/integrations/alertmanager/{am.token}/",
                         lambda n: notification(am_alert(f"a{n}"))),
        "grafana": (grafana, f"/integrations/grafana/{grafana.token}/",
                    lambda n: grafana_notification(am_alert(f"f{n}"))),
    }


ENDPOINTS = ["generic", "pagerduty", "pagerduty-change", "alertmanager", "grafana"]


def _stored() -> tuple[int, int, int, int]:
    return (Alert.objects.count(), Incident.objects.count(), TimelineEntry.objects.count(),
            QueuedEvent.objects.count())


@pytest.mark.parametrize("name", ENDPOINTS)
def test_oversized_body_is_413(client, endpoints, settings, name):
    integration, url, build = endpoints[name]
    body = build(1)
    padding = "x" * (settings.INGEST_MAX_BODY_BYTES + 1)
    if name == "generic":
        body["details"] = padding
    elif name.startswith("pagerduty"):
        body["payload"]["custom_details"] = {"blob": padding}
    else:
        body["alerts"][0]["annotations"]["description"] = padding
    raw = json.dumps(body).encode()
    assert len(raw) > settings.INGEST_MAX_BODY_BYTES
    r = post_json(client, url, raw)
    assert r.status_code == 413, r.content
    assert "512 KB" in r.json()["message"]
    assert _stored() == (0, 0, 0, 0)


def test_body_just_under_the_limit_is_accepted(client, endpoints, settings):
    integration, url, build = endpoints["pagerduty"]
    body = build(1)
    body["payload"]["custom_details"] = {"blob": ""}
    room = settings.INGEST_MAX_BODY_BYTES - len(json.dumps(body).encode())
    body["payload"]["custom_details"]["blob"] = "y" * room
    raw = json.dumps(body).encode()
    assert len(raw) == settings.INGEST_MAX_BODY_BYTES
    r = post_json(client, url, raw)
    assert r.status_code == 202
    assert len(Alert.objects.get().details) > room


@pytest.mark.parametrize("name", ENDPOINTS)
def test_rate_limit_answers_429_with_retry_after(client, endpoints, name):
    integration, url, build = endpoints[name]
    integration.rate_limit_per_minute = 2
    integration.save()
    with time_machine.travel(dt.datetime(2026, 3, 2, 10, 0, 15, tzinfo=dt.UTC), tick=False):
        assert post_json(client, url, build(1)).status_code == 202
        assert post_json(client, url, build(2)).status_code == 202
        before = _stored()
        r = post_json(client, url, build(3))
        assert r.status_code == 429, r.content
        assert r["Retry-After"] == "45"
        assert "2 events per minute" in r.json()["message"]
        if name.startswith("pagerduty"):
            assert r.json()["status"] == "throttle event"
        assert _stored() == before
    # The next minute is a new window.
    with time_machine.travel(dt.datetime(2026, 3, 2, 10, 1, 1, tzinfo=dt.UTC), tick=False):
        assert post_json(client, url, build(4)).status_code == 202


def test_rate_limit_counts_alerts_of_a_notification(client, endpoints):
    integration, url, _ = endpoints["alertmanager"]
    integration.rate_limit_per_minute = 3
    integration.save()
    with time_machine.travel(dt.datetime(2026, 3, 2, 10, 0, 0, tzinfo=dt.UTC), tick=False):
        assert post_json(client, url, notification(am_alert("a"), am_alert("b"))).status_code == 202
        r = post_json(client, url, notification(am_alert("c"), am_alert("d")))
        assert r.status_code == 429
    assert set(Alert.objects.values_list("dedup_key", flat=True)) == {"a", "b"}


@pytest.mark.parametrize("name", ENDPOINTS)
def test_database_unavailable_is_503_and_nothing_is_written(client, endpoints, name):
    integration, url, build = endpoints[name]
    before = _stored()
    with database_unavailable():
        r = post_json(client, url, build(1), apply=False)
    assert r.status_code == 503, r.content
    assert r["Retry-After"] == "30"
    assert "not stored" in r.json()["message"]
    assert _stored() == before  # not even queued
    # And once the database is back, the sender's retry goes through.
    assert post_json(client, url, build(1)).status_code == 202
    assert QueuedEvent.objects.count() == 0
    if name == "pagerduty-change":
        assert TimelineEntry.objects.filter(kind="change").count() == 1
    else:
        assert Alert.objects.count() == 1 and Incident.objects.count() == 1


@pytest.fixture
def failing_alert_insert(db):
    """A real database error while applying one event: inserting an alert whose dedup key
    is 'boom' aborts (a constraint or a bug that only this event hits), except as a failed
    alert. Returns a function that removes the cause."""
    with alert_inserts_refused("boom", message="simulated storage failure", failed_too=False) as remove:
        yield remove


def test_processing_failure_of_one_event_is_a_failed_alert_and_reprocessing_completes(
    client, endpoints, failing_alert_insert
):
    integration, url, _ = endpoints["alertmanager"]
    # The failure happens in the applier, after the answer: the notification is accepted.
    r = post_json(client, url, notification(am_alert("good"), am_alert("boom"), am_alert("after")),
                  apply=False)
    assert r.status_code == 202, r.content
    assert r.json()["dedup_keys"] == ["good", "boom", "after"]
    assert post_json(client, url, notification(am_alert("good")), apply=False).status_code == 202
    assert QueuedEvent.objects.count() == 4 and Alert.objects.count() == 0

    assert queue_apply_batch() == 4  # one batch: it fails, then its events go one by one
    assert QueuedEvent.objects.count() == 0
    # The others of the batch are applied, in order ...
    good = Incident.objects.get(dedup_key="good")
    assert list(good.alerts.order_by("pk").values_list("outcome", flat=True)) == ["opened", "grouped"]
    assert good.alert_count == 2
    assert Alert.objects.get(dedup_key="after").outcome == "opened"
    # ... and the failing one is kept, marked failed with the error, without side effects.
    failed = Alert.objects.get(dedup_key="boom")
    assert (failed.outcome, failed.incident, failed.integration) == ("failed", None, integration)
    assert "simulated storage failure" in failed.outcome_detail
    assert failed.summary == "BlackBox Probe Failure: https://a.example.org"
    assert failed.payload["alerts"] == [am_alert("boom")]
    assert not Incident.objects.filter(dedup_key="boom").exists()
    assert TimelineEntry.objects.filter(incident__dedup_key="boom").count() == 0
    assert Incident.objects.count() == 2

    # Once the cause is gone, the console's re-process (Alerts -> "Re-process selected
    # failed alerts") runs it through the pipeline; the failed row is replaced.
    failing_alert_insert()
    result = alert_reprocess(alert=failed)
    assert result.outcome == "opened"
    assert not Alert.objects.filter(pk=failed.pk).exists()
    alert = Alert.objects.get(dedup_key="boom")
    assert alert.outcome == "opened" and alert.incident.dedup_key == "boom"
    assert alert.incident.timeline.filter(kind="triggered").count() == 1
    assert Alert.objects.count() == 4 and Incident.objects.count() == 3


def test_retry_after_partial_failure_is_harmless(client, endpoints):
    integration, url, _ = endpoints["alertmanager"]
    post_json(client, url, notification(am_alert("good")))
    # A sender that retries the whole notification (its request timed out, say): the
    # already stored alert joins its incident instead of opening a second one.
    r = post_json(client, url, notification(am_alert("good"), am_alert("boom")))
    assert r.status_code == 202 and r.json()["dedup_keys"] == ["good", "boom"]
    assert list(Alert.objects.order_by("pk").values_list("dedup_key", "outcome")) == [
        ("good", "opened"), ("good", "grouped"), ("boom", "opened")]
    assert Incident.objects.count() == 2
