"""The applier's set-based step on PostgreSQL (``incidents.batch_repeats``): repeats of
open incidents are added in one statement per batch, with the triage the endpoint
stored (``incidents.endpoint_route``), and give exactly what ``alert_ingest`` gives;
whatever that statement must not take is left to ``AlertBatch``, in order.

The random-stream equivalence test in test_alert_queue.py covers the mix; here, the
edge values of the columns the statement derives, and each reason to leave an event
to ``AlertBatch``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.alert_queue import events_enqueue, queue_drain
from incidents.endpoint_route import team_triage
from incidents.events import AlertEvent
from incidents.models import (
    Alert,
    Incident,
    MaintenanceWindow,
    QueuedEvent,
    Service,
    TimelineEntry,
    TriageRule,
)
from incidents.services import alert_ingest, alert_received_message, grouped_detail
from tests.ingestion.test_alert_queue import SignalLog

pytestmark = pytest.mark.postgres

AT = timezone.now().replace(microsecond=0) - timedelta(hours=1)


def enqueue(integration, n: int, **fields) -> int:
    fields.setdefault("summary", f"event {n}")
    fields.setdefault("dedup_key", "k")
    at = AT + timedelta(seconds=n)
    events_enqueue(integration=integration, events=[AlertEvent(**fields)], received_at=at)
    return QueuedEvent.objects.latest("id").pk


EDGE_EVENTS = [
    {"summary": ""},  # "(no summary)"
    {"summary": "é" * 1100, "details": 'line 1\nsays "hi" \\ back'},  # cut at 1,024 characters
    {"source": "s" * 300},  # cut at 255
    {"labels": {"quote": "it's \"x\"", "emoji": "\U0001f525"},
     "links": [{"href": "https://e.example/", "text": "É"}]},
    {"payload": {"nested": {"list": [1, None, True, 2.5]}, "text": "ünïcode \u2028"}},
    {"severity": "SEV4", "priority": "P5"},
    {"dedup_key": "k" * 300},  # the stored key is cut at 255, as the incident's
]


def _alert_row(alert: Alert) -> dict:
    return {
        "action": alert.action, "dedup_key": alert.dedup_key, "sent_dedup_key": alert.sent_dedup_key,
        "summary": alert.summary, "details": alert.details, "severity": alert.severity,
        "priority": alert.priority, "source": alert.source, "labels": alert.labels, "links": alert.links,
        "payload": alert.payload, "outcome": alert.outcome, "in_maintenance": alert.in_maintenance,
        "received_at": alert.received_at, "integration": alert.integration_id,
    }


def test_repeats_are_written_as_alert_ingest_writes_them(service_a, make_integration, repeats_added):
    integration = make_integration(service_a, "generic")
    window = MaintenanceWindow.objects.create(team=service_a.team, starts_at=AT + timedelta(seconds=3),
                                              ends_at=AT + timedelta(seconds=5), reason="upgrade")
    window.services.add(service_a)

    def stream():
        for n, fields in enumerate(EDGE_EVENTS):
            fields = {"summary": f"repeat {n}", "severity": "SEV3", **fields}
            if "dedup_key" not in fields:
                fields["dedup_key"] = "k"
            yield n + 1, fields

    def opening(key: str) -> AlertEvent:
        return AlertEvent(summary="open", dedup_key=key, severity="SEV3")

    # The reference: alert_ingest, one event at a time, after opening the incidents.
    keys = ["k", "k" * 300]
    for key in keys:
        alert_ingest(integration=integration, event=opening(key), received_at=AT)
    for n, fields in stream():
        at = AT + timedelta(seconds=n)
        alert_ingest(integration=integration, event=AlertEvent(**fields), received_at=at)
    expected = [_alert_row(a) for a in Alert.objects.filter(outcome="grouped").order_by("received_at")]
    Incident.objects.update(status="resolved")

    for key in keys:
        events_enqueue(integration=integration, events=[opening(key)], received_at=AT)
    queue_drain()
    first = Alert.objects.latest("id").pk
    queued = [enqueue(integration, n, **fields) for n, fields in stream()]
    queue_drain()

    assert repeats_added == queued  # every repeat went through the set-based statement
    grouped = list(Alert.objects.filter(pk__gt=first).select_related("incident").order_by("received_at"))
    assert [_alert_row(a) for a in grouped] == expected
    assert [a.in_maintenance for a in grouped] == [False, False, True, True, False, False, False]
    for alert in grouped:
        assert alert.outcome_detail == grouped_detail(alert.incident)
        entry = TimelineEntry.objects.get(data__alert_id=alert.pk)
        assert (entry.incident_id, entry.service_id, entry.kind, entry.message, entry.via,
                entry.created_at) == (alert.incident_id, alert.service_id, "alert",
                                      alert_received_message(alert.summary), "integration", alert.received_at)
    open_incidents = Incident.objects.exclude(status="resolved")
    assert sorted(i.alert_count for i in open_incidents) == [2, 7]
    assert max(i.last_alert_at for i in open_incidents) == AT + timedelta(seconds=len(EDGE_EVENTS))


def test_a_severity_raise_and_what_follows_it_are_left_to_the_batch_in_order(
    service_a, make_integration, repeats_added, django_capture_on_commit_callbacks
):
    integration = make_integration(service_a, "generic")
    enqueue(integration, 0, severity="SEV3")
    queue_drain()
    ids = [enqueue(integration, 1, severity="SEV3"), enqueue(integration, 2, severity="SEV1"),
           enqueue(integration, 3, severity="SEV4")]
    with SignalLog() as log, django_capture_on_commit_callbacks(execute=True):
        queue_drain()
    assert repeats_added == ids[:1]
    incident = Incident.objects.get()
    assert (incident.severity, incident.alert_count) == ("SEV1", 4)
    assert [name for name, _, _ in log.sent] == ["incident_updated"]
    kinds = list(TimelineEntry.objects.filter(incident=incident).order_by("id").values_list("kind", "data"))
    alert_ids = list(Alert.objects.order_by("received_at").values_list("id", flat=True))
    assert kinds[1:] == [("alert", {"alert_id": alert_ids[1]}), ("alert", {"alert_id": alert_ids[2]}),
                         ("severity", {}), ("alert", {"alert_id": alert_ids[3]})]


def test_a_resolve_in_the_batch_keeps_later_triggers_out_of_the_old_incident(
    service_a, make_integration, repeats_added
):
    integration = make_integration(service_a, "generic")
    enqueue(integration, 0)
    queue_drain()
    ids = [enqueue(integration, 1), enqueue(integration, 2, action="resolve"), enqueue(integration, 3)]
    queue_drain()
    assert repeats_added == ids[:1]
    first, second = Incident.objects.order_by("number")
    # The resolve's alert counts too.
    assert (first.status, first.alert_count) == ("resolved", 3)
    assert (second.status, second.alert_count) == ("triggered", 1)
    assert Alert.objects.get(received_at=AT + timedelta(seconds=3)).incident == second


def test_events_queued_without_the_endpoints_triage_hold_back_those_after_them(
    service_a, make_integration, repeats_added
):
    integration = make_integration(service_a, "generic")
    enqueue(integration, 0)
    queue_drain()
    # As a version before the triaged columns queued it: a resolve the statement cannot see.
    old = enqueue(integration, 1, action="resolve")
    QueuedEvent.objects.filter(pk=old).update(triaged_service_id=None, triaged_key="")
    enqueue(integration, 2)
    queue_drain()
    assert repeats_added == []
    first, second = Incident.objects.order_by("number")
    assert (first.status, second.alert_count) == ("resolved", 1)


def test_an_event_whose_integration_was_deleted_is_left_to_the_batch(
    service_a, make_integration, repeats_added
):
    integration = make_integration(service_a, "generic")
    other = make_integration(service_a, "pagerduty")
    enqueue(integration, 0)
    queue_drain()
    gone = enqueue(other, 1)
    kept = enqueue(integration, 2, dedup_key="other")  # another key: not held back
    other.delete()
    queue_drain()
    assert repeats_added == []  # "other" has no open incident; the deleted integration's event is not added
    alert = Alert.objects.get(received_at=AT + timedelta(seconds=1))
    assert (alert.outcome, alert.integration_id, alert.incident_id) == ("failed", None, None)
    assert not QueuedEvent.objects.filter(pk__in=[gone, kept]).exists()


def test_the_endpoints_triage_routes_rekeys_and_sets_severity(
    service_a, team_a, make_integration, repeats_added
):
    ledger = Service.objects.create(team=team_a, name="ledger")
    integration = make_integration(service_a, "generic")
    TriageRule.objects.create(team=team_a, position=0, name="db", match_keywords="database",
                              set_severity="SEV2", set_priority="P1", route_to_service=ledger,
                              set_dedup_key="db:{source}", continue_processing=True)
    enqueue(integration, 0, summary="database slow", source="pg1", dedup_key="a")
    queue_drain()
    repeat = enqueue(integration, 1, summary="database slow again", source="pg1", dedup_key="b",
                     severity="SEV4")
    row = QueuedEvent.objects.get(pk=repeat)
    assert (row.triaged_service_id, row.triaged_key, row.triaged_severity, row.triaged_priority) == (
        ledger.pk, "db:pg1", "SEV2", "P1")
    queue_drain()
    assert repeats_added == [repeat]
    alert = Alert.objects.get(received_at=AT + timedelta(seconds=1))
    assert (alert.service_id, alert.dedup_key, alert.sent_dedup_key, alert.severity, alert.priority) == (
        ledger.pk, "db:pg1", "b", "SEV2", "P1")
    assert alert.incident.alert_count == 2


def test_a_route_to_another_teams_service_is_ignored_at_the_endpoint(service_a, service_b, team_a,
                                                                     make_integration):
    integration = make_integration(service_a, "generic")
    TriageRule.objects.create(team=team_a, position=0, name="away", match_keywords="x",
                              route_to_service=service_b)
    pk = enqueue(integration, 0, summary="x")
    assert QueuedEvent.objects.get(pk=pk).triaged_service_id == service_a.pk


def test_acknowledge_resolve_and_suppressed_events_carry_no_severity(service_a, team_a, make_integration):
    integration = make_integration(service_a, "generic")
    TriageRule.objects.create(team=team_a, position=0, name="quiet", match_keywords="noise", suppress=True)
    ack = enqueue(integration, 0, action="acknowledge")
    resolve = enqueue(integration, 1, action="resolve")
    noise = enqueue(integration, 2, summary="noise")
    rows = QueuedEvent.objects.in_bulk([ack, resolve, noise])
    assert [(rows[pk].triaged_key, rows[pk].triaged_severity, rows[pk].triaged_priority)
            for pk in (ack, resolve, noise)] == [("", "", ""), ("", "", ""), ("k", "", "")]


def test_saving_a_rule_reaches_the_endpoints_triage_at_once(service_a, team_a, make_integration):
    integration = make_integration(service_a, "generic")
    assert team_triage(team_a.pk).rules == []
    rule = TriageRule.objects.create(team=team_a, position=0, name="up", match_keywords="disk",
                                     set_severity="SEV1")
    assert QueuedEvent.objects.get(pk=enqueue(integration, 0, summary="disk full")).triaged_severity == "SEV1"
    rule.enabled = False
    rule.save()
    assert QueuedEvent.objects.get(pk=enqueue(integration, 1, summary="disk full")).triaged_severity == "SEV3"
    rule.delete()
    other = Service.objects.create(team=team_a, name="new one")
    assert other.pk in team_triage(team_a.pk).service_ids
