"""The payload's own column in the queue (``QueuedEvent.payload``).

An event whose payload is the whole request body (a PagerDuty event, a one-alert
Alertmanager notification, a generic JSON event) keeps the body's bytes as its payload,
if they are plain ASCII, rather than encoding the same value again; the applier writes
that text to the alert as it is when the alert is grouped into an open incident, and
decodes it when it goes through ``alert_ingest``. Whatever the path, the alert's payload
is the value that was sent.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from incidents.alert_queue import queue_drain
from incidents.models import Alert, QueuedEvent
from tests.ingestion.conftest import post_json

pytestmark = pytest.mark.django_db

ENQUEUE = "/integrations/pagerduty/v2/enqueue"


def pd_event(integration, key: str, **details) -> dict:
    return {"routing_key": integration.token, "event_action": "trigger", "dedup_key": key,
            "payload": {"summary": f"disk full on {key}", "source": "db-1", "severity": "error",
                        "custom_details": details}}


def am_alert(fingerprint: str) -> dict:
    return {"status": "firing", "labels": {"alertname": "DiskFull", "instance": fingerprint},
            "annotations": {"summary": f"disk full on {fingerprint}"}, "fingerprint": fingerprint,
            "startsAt": "2026-01-01T00:00:00Z"}


def queued_payloads() -> list[str]:
    return list(QueuedEvent.objects.order_by("id").values_list("payload", flat=True))


def test_an_ascii_body_is_stored_as_received_and_every_alert_gets_its_value(client, pd_integration):
    # Spacing json.dumps would not write: the text is the body's, byte for byte.
    body = json.dumps(pd_event(pd_integration, "k1", free="1%", big=10**30), indent=1)
    assert post_json(client, ENQUEUE, body, apply=False).status_code == 202
    assert queued_payloads() == [body]
    assert json.loads(QueuedEvent.objects.get().event).keys().isdisjoint({"payload"})
    queue_drain()
    # The repeat is grouped into the incident the first one opened (the text written as is).
    assert post_json(client, ENQUEUE, body).status_code == 202
    opened, grouped = Alert.objects.order_by("id")
    assert (opened.outcome, grouped.outcome) == ("opened", "grouped")
    assert opened.payload == grouped.payload == json.loads(body)
    assert not QueuedEvent.objects.exists()


def test_a_body_that_is_not_ascii_is_encoded_again(client, pd_integration):
    event = pd_event(pd_integration, "k2", note="café ☕")
    body = json.dumps(event, ensure_ascii=False).encode()
    assert post_json(client, ENQUEUE, body, apply=False).status_code == 202
    [payload] = queued_payloads()
    assert payload == json.dumps(event) and payload.isascii()
    queue_drain()
    post_json(client, ENQUEUE, body)
    assert [a.payload["payload"]["custom_details"]["note"] for a in Alert.objects.all()] == ["café ☕"] * 2


@pytest.mark.parametrize("escape", ["\\u0000", "\\uD800", "\\udc00", "\\uDBFF tail"])
def test_escapes_no_database_holds_are_replaced_even_in_upper_case(client, pd_integration, escape):
    body = json.dumps(pd_event(pd_integration, "k3")).replace("db-1", f"db-1 {escape}")
    # Once to open the incident (alert_ingest), once grouped (the applier's own write).
    for _ in range(2):
        assert post_json(client, ENQUEUE, body).status_code == 202
    assert not QueuedEvent.objects.exists()  # nothing stuck
    sources = [a.payload["payload"]["source"] for a in Alert.objects.order_by("id")]
    assert len(sources) == 2 and all(s.startswith("db-1 \ufffd") for s in sources)


def test_a_valid_surrogate_pair_in_upper_case_is_kept(client, pd_integration):
    body = json.dumps(pd_event(pd_integration, "k4")).replace("db-1", "db-1 \\uD83D\\uDE00")
    for _ in range(2):
        assert post_json(client, ENQUEUE, body).status_code == 202
    assert [a.payload["payload"]["source"] for a in Alert.objects.all()] == ["db-1 \U0001F600"] * 2


def test_each_alert_of_a_notification_gets_its_own_payload(client, am_integration):
    url = f"/integrations/alertmanager/{am_integration.token}/"
    head = {"version": "4", "status": "firing", "groupKey": "{}:{}"}
    one = {**head, "alerts": [am_alert("a1")]}
    two = {**head, "alerts": [am_alert("a1"), am_alert("b2")]}
    assert post_json(client, url, json.dumps(one), apply=False).status_code == 202
    assert post_json(client, url, json.dumps(two), apply=False).status_code == 202
    first, *pair = queued_payloads()
    assert first == json.dumps(one)  # the whole body: stored as received
    assert [json.loads(p)["alerts"] for p in pair] == [[am_alert("a1")], [am_alert("b2")]]
    queue_drain()
    payloads = [a.payload for a in Alert.objects.order_by("id")]
    assert payloads == [one, {**two, "alerts": [am_alert("a1")]}, {**two, "alerts": [am_alert("b2")]}]


def test_a_form_body_is_never_taken_for_json(client, service_a, make_integration):
    integration = make_integration(service_a, "generic")
    r = client.post(f"/integrations/generic/{integration.token}/", "summary=from+a+form&dedup_key=f",
                    content_type="application/x-www-form-urlencoded")
    assert r.status_code == 202
    [payload] = queued_payloads()
    assert json.loads(payload)["summary"] == "from a form"
    queue_drain()
    assert Alert.objects.get().payload["summary"] == "from a form"


def test_an_event_queued_with_its_payload_inside_is_still_applied(pd_integration, caplog):
    # As versions before the payload column stored it.
    event = ('{"action": "trigger", "summary": "old event", "details": "", "severity": "SEV2", '
             '"priority": "", "dedup_key": "old", "source": "", "labels": {}, "links": [], '
             '"payload": {"from": "before"}}')
    for _ in range(2):
        QueuedEvent.objects.create(integration=pd_integration, service=pd_integration.service, event=event,
                                   received_at=datetime(2026, 12, 1, tzinfo=UTC))
    caplog.set_level(logging.CRITICAL, logger="incidents")
    assert queue_drain() == 2
    assert [(a.outcome, a.payload) for a in Alert.objects.order_by("id")] == [
        ("opened", {"from": "before"}), ("grouped", {"from": "before"})]


def test_event_text_holds_every_field_but_the_payload():
    """``event_encode`` spells the fields out (``events._head``): a field added to
    ``AlertEvent`` must not be left out of the queue."""
    from incidents.events import _HEAD, AlertEvent, event_encode, event_from_json

    event = AlertEvent(action="trigger", summary="s", details="d", severity="SEV2", priority="P2",
                       dedup_key="k", source="db-1", labels={"env": "prod"},
                       links=[{"href": "https://example.com", "text": "x"}], payload={"n": 1})
    _, text, payload = event_encode(event)
    assert sorted(json.loads(text)) == sorted(_HEAD)
    assert event_from_json(text, payload) == event
    assert set(_HEAD) | {"payload"} == set(AlertEvent.__dataclass_fields__)
