"""Text a database cannot hold: accepted events must still become alerts.

Python's json reads NaN and Infinity (not JSON; PostgreSQL's jsonb refuses them), and
JSON escapes can carry NUL characters (PostgreSQL's text and jsonb refuse them) and
unpaired surrogates (UTF-8 cannot encode them). Such an event used to be answered 202
and then stay in the queue forever, marked stuck, on PostgreSQL. Now non-JSON numbers
are a 400 naming the problem, and NUL / lone surrogates are stored as U+FFFD.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from incidents.alert_queue import queue_drain
from incidents.events import AlertEvent
from incidents.models import Alert, Incident, QueuedEvent
from incidents.services import alert_ingest
from tests.ingestion.conftest import post_json

pytestmark = pytest.mark.django_db

ENQUEUE = "/integrations/pagerduty/v2/enqueue"
REPLACEMENT = "\ufffd"


def pd_body(integration, key: str, summary: str = "disk full", details: str = '{"free": "1%"}') -> str:
    # Written by hand: json.dumps cannot produce the escapes and words under test.
    return (f'{{"routing_key": "{integration.token}", "event_action": "trigger", "dedup_key": "{key}", '
            f'"payload": {{"summary": "{summary}", "source": "db-1", "severity": "error", '
            f'"custom_details": {details}}}}}')


def nothing_stuck() -> bool:
    return not QueuedEvent.objects.exists()


@pytest.mark.parametrize("word", ["NaN", "Infinity", "-Infinity"])
def test_pagerduty_non_json_numbers_are_a_400_naming_them(client, pd_integration, word):
    r = post_json(client, ENQUEUE, pd_body(pd_integration, "k", details=f'{{"load": {word}}}'))
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "invalid event" and body["message"] == "Malformed JSON"
    assert f"{word.lstrip('-')} is not a JSON value" in body["errors"][0]
    assert not QueuedEvent.objects.exists() and not Alert.objects.exists()


def test_alertmanager_non_json_number_is_a_400(client, am_integration):
    body = ('{"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": '
            '{"alertname": "X"}, "annotations": {}, "fingerprint": "f1", "startsAt": "2026-01-01T00:00:00Z", '
            '"values": {"B": NaN}}]}')
    r = post_json(client, f"/integrations/alertmanager/{am_integration.token}/", body)
    assert r.status_code == 400 and "NaN is not a JSON value" in r.json()["errors"][0]
    assert not QueuedEvent.objects.exists()


def test_generic_form_labels_with_a_non_json_number_are_a_400(client, service_a, make_integration):
    integration = make_integration(service_a, "generic")
    r = client.post(f"/integrations/generic/{integration.token}/",
                    "summary=x&labels=%7B%22n%22%3A%20NaN%7D",
                    content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400 and "'labels' must be JSON" in r.json()["errors"][0]
    assert not QueuedEvent.objects.exists()


def test_nul_and_lone_surrogates_are_stored_as_replacement_characters(client, pd_integration):
    r = post_json(client, ENQUEUE, pd_body(
        pd_integration, "nul\\u0000key", summary="disk \\u0000 full \\ud800 on db-1 \\ud83d\\ude00",
        details='{"a\\u0000b": "x\\udc00y", "list": ["\\u0000"], "fine": "caf\\u00e9"}'))
    assert r.status_code == 202, r.content
    assert r.json()["dedup_key"] == f"nul{REPLACEMENT}key"  # the key the sender can ack with
    assert nothing_stuck()
    alert = Alert.objects.get()
    assert alert.outcome == "opened"
    # The emoji (a valid surrogate pair in the JSON) is kept; the rest replaced.
    assert alert.summary == f"disk {REPLACEMENT} full {REPLACEMENT} on db-1 \U0001F600"
    details = alert.payload["payload"]["custom_details"]
    assert details == {f"a{REPLACEMENT}b": f"x{REPLACEMENT}y", "list": [REPLACEMENT], "fine": "café"}
    assert f"a{REPLACEMENT}b: x{REPLACEMENT}y" in alert.details
    assert Incident.objects.get().dedup_key == f"nul{REPLACEMENT}key"

    # A repeat (the batch path, written with COPY on PostgreSQL) is grouped the same way.
    r = post_json(client, ENQUEUE, pd_body(pd_integration, "nul\\u0000key", summary="again \\u0000"))
    assert r.status_code == 202 and nothing_stuck()
    assert Alert.objects.order_by("-pk").first().outcome == "grouped"
    assert Incident.objects.get().alert_count == 2


def test_alertmanager_nul_in_labels_and_annotations(client, am_integration):
    body = ('{"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": '
            '{"alertname": "Disk\\u0000Full", "severity": "critical"}, "annotations": '
            '{"summary": "full \\u0000"}, "fingerprint": "fp\\u0000", "startsAt": "2026-01-01T00:00:00Z"}]}')
    r = post_json(client, f"/integrations/alertmanager/{am_integration.token}/", body)
    assert r.status_code == 202, r.content
    assert nothing_stuck()
    alert = Alert.objects.get()
    assert (alert.summary, alert.labels["alertname"], alert.severity) == (
        f"full {REPLACEMENT}", f"Disk{REPLACEMENT}Full", "SEV1")


def test_an_event_queued_before_the_fix_is_applied_not_stuck(pd_integration, caplog):
    # As an older version stored it: the NUL escape inside the queued JSON.
    event = ('{"action": "trigger", "summary": "old \\u0000 event", "details": "", "severity": "SEV2", '
             '"priority": "", "dedup_key": "old", "source": "", "labels": {"k": "v\\u0000"}, "links": [], '
             '"payload": {"x": "\\u0000"}}')
    QueuedEvent.objects.create(integration=pd_integration, service=pd_integration.service, event=event,
                               received_at=datetime(2026, 12, 1, tzinfo=UTC))
    caplog.set_level(logging.CRITICAL, logger="incidents")
    assert queue_drain() == 1
    assert nothing_stuck()
    alert = Alert.objects.get()
    assert (alert.outcome, alert.summary, alert.labels, alert.payload) == (
        "opened", f"old {REPLACEMENT} event", {"k": f"v{REPLACEMENT}"}, {"x": REPLACEMENT})


def test_direct_ingestion_email_path_stores_nul(pd_integration):
    # Email alerts and the console's test alert call alert_ingest without the queue.
    result = alert_ingest(integration=pd_integration, event=AlertEvent(
        summary="mail \x00 body", details="line\x00two", labels={"from\x00": "x"},
        payload={"n": float("nan")}, dedup_key="mail-1"))
    alert = result.alert
    alert.refresh_from_db()
    assert (alert.summary, alert.details, alert.labels, alert.payload) == (
        f"mail {REPLACEMENT} body", f"line{REPLACEMENT}two", {f"from{REPLACEMENT}": "x"}, {"n": "nan"})
    assert json.dumps(alert.payload)  # valid JSON again
