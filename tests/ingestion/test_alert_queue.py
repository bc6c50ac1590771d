"""The ingestion queue (``incidents.alert_queue``) against the real database: applying
queued events in batches gives what ``alert_ingest`` one event at a time gives; a
failing event is kept as a failed alert without holding up the others; the clock's
applier thread and ``manage.py alerts_apply`` empty the queue; the per-process cache
of integrations by token is cleared when an integration is saved.

Concurrent ingestion through a live server with running appliers (PostgreSQL) is in
test_concurrency_pg.py."""

from __future__ import annotations

import io
import json
import logging
import random
import threading
import time
import types
from collections import Counter as Tally
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, connections
from django.utils import timezone

from incidents import signals as incident_signals
from incidents import triage
from incidents.alert_queue import events_enqueue, queue_apply_batch, queue_drain
from incidents.events import AlertEvent, event_encode
from incidents.ingestion import common
from incidents.models import (
    Alert,
    Incident,
    Integration,
    MaintenanceWindow,
    QueuedEvent,
    Service,
    TimelineEntry,
    TriageRule,
)
from incidents.services import alert_ingest, alert_reprocess
from ircore import process_cache
from ircore.clock import clock_run
from ircore.models import Counter
from tests.ingestion.conftest import alert_inserts_refused, database_unavailable

BASE_AT = timezone.now().replace(microsecond=0) - timedelta(hours=3)
STEP = timedelta(seconds=7)


def enqueue(integration, at=None, **fields) -> str:
    fields.setdefault("summary", "something broke")
    return events_enqueue(integration=integration, events=[AlertEvent(**fields)], received_at=at)[0]


def outcomes(**filters) -> list[str]:
    return list(Alert.objects.filter(**filters).order_by("pk").values_list("outcome", flat=True))


# --------------------------------------------------------------------------- equivalence


@pytest.fixture
def world(team_a, team_b, service_a, service_b, make_integration):
    """Two services of one team with an integration each, the team's triage rules
    (suppress, raise severity, route within the team, a dedup key template, and a route
    to another team's service that must be ignored) and a maintenance window on the
    second service covering the middle of the stream."""
    ledger = Service.objects.create(team=team_a, name="ledger")
    integrations = [make_integration(service_a, "generic"), make_integration(ledger, "pagerduty")]
    rules = [
        dict(name="Ignore staging", match_labels={"env": "staging"}, suppress=True),
        dict(name="Database down is SEV1", match_keywords="database down", set_severity="SEV1",
             set_priority="P1", continue_processing=True),
        dict(name="Databases to the ledger", match_source="db*", route_to_service=ledger,
             continue_processing=True),
        dict(name="Not across teams", match_source="web2", route_to_service=service_b,
             continue_processing=True),
        dict(name="One incident per group", match_labels={"group": "*"}, set_dedup_key="grp:{labels[group]}"),
    ]
    for position, rule in enumerate(rules):
        TriageRule.objects.create(team=team_a, position=position, **rule)
    window = MaintenanceWindow.objects.create(
        team=team_a, starts_at=BASE_AT + 100 * STEP - timedelta(seconds=1), ends_at=BASE_AT + 200 * STEP,
        reason="ledger migration",
    )
    window.services.add(ledger)
    return integrations


def random_stream(seed: int, count: int = 300) -> list[tuple[int, dict]]:
    """(integration index, AlertEvent fields) over a few keys, mixing actions."""
    rng = random.Random(seed)
    stream = []
    for n in range(count):
        labels = {"n": str(n)}
        if rng.random() < 0.08:
            labels["env"] = "staging"
        if rng.random() < 0.12:
            labels["group"] = rng.choice(["g1", "g2"])
        stream.append((rng.choice([0, 0, 1]), {
            "action": rng.choices(["trigger", "acknowledge", "resolve"], [6, 2, 2])[0],
            "summary": f"{rng.choice(['disk full', 'database down', 'latency high', '5xx'])} #{n}",
            "details": rng.choice(["", "see dashboard"]),
            "severity": rng.choice(["SEV1", "SEV2", "SEV3", "SEV3", "SEV4", "SEV4"]),
            "priority": rng.choice(["", "", "", "P2", "P5"]),
            "dedup_key": rng.choice(["k1", "k2", "k3", "k4"]),
            "source": rng.choice(["db1", "web1", "web2", ""]),
            "labels": labels,
            "links": rng.choice([[], [{"href": f"https://grafana.example.com/d/{n}", "text": "Dashboard"}]]),
            "payload": {"n": n, "nested": {"quote": 'say "hi"', "list": [1, None, True]}},
        }))
    return stream


class SignalLog:
    """Every incident signal sent on commit, as plain data."""

    NAMES = ("incident_triggered", "incident_acknowledged", "incident_unacknowledged",
             "incident_resolved", "incident_updated", "incident_escalation_requested")

    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def __enter__(self) -> SignalLog:
        for name in self.NAMES:
            getattr(incident_signals, name).connect(self._receiver(name), weak=False,
                                                    dispatch_uid=f"test-queue-{name}")
        return self

    def __exit__(self, *exc) -> None:
        for name in self.NAMES:
            getattr(incident_signals, name).disconnect(dispatch_uid=f"test-queue-{name}")

    def _receiver(self, name: str):
        def receive(sender, incident, **kwargs):
            extra = {k: v for k, v in kwargs.items() if k != "signal"}
            self.sent.append((name, incident.number, json.dumps(extra, sort_keys=True, default=str)))
        return receive


def snapshot(signal_log: SignalLog) -> dict:
    """Alerts (by receive time: one event each), incidents and their timelines (by
    number), and the signals per incident, without database ids."""
    alerts = list(Alert.objects.select_related("service", "incident").order_by("received_at", "pk"))
    received = {alert.pk: alert.received_at.isoformat() for alert in alerts}
    timelines: dict[int, list] = {}
    for entry in TimelineEntry.objects.select_related("incident").order_by("pk"):
        data = dict(entry.data)
        if "alert_id" in data:
            data["alert_id"] = received[data["alert_id"]]
        timelines.setdefault(entry.incident.number if entry.incident else None, []).append(
            (entry.kind, entry.message, entry.via, entry.created_at, entry.service_id, data))
    signals_by_incident: dict[int, list] = {}
    for name, number, extra in signal_log.sent:
        signals_by_incident.setdefault(number, []).append((name, extra))
    return {
        "alerts": [
            {"received_at": a.received_at, "integration": a.integration_id, "action": a.action,
             "outcome": a.outcome, "outcome_detail": a.outcome_detail, "service": a.service.name,
             "dedup_key": a.dedup_key, "sent_dedup_key": a.sent_dedup_key, "summary": a.summary,
             "severity": a.severity, "priority": a.priority, "in_maintenance": a.in_maintenance,
             "labels": a.labels, "links": a.links, "payload": a.payload,
             "incident": a.incident.number if a.incident else None}
            for a in alerts
        ],
        "incidents": {
            i.number: (i.service.name, i.dedup_key, i.title, i.status, i.alert_count, i.severity,
                       i.priority, i.in_maintenance, i.triggered_at, i.last_alert_at,
                       i.acknowledged_at, i.resolved_at)
            for i in Incident.objects.select_related("service")
        },
        "timelines": timelines,
        "signals": signals_by_incident,
    }


def forget_alerts_and_incidents() -> None:
    """Back to the state before the stream: same services, rules and windows."""
    TimelineEntry.objects.all().delete()
    Alert.objects.all().delete()
    Incident.objects.all().delete()
    Counter.objects.filter(name="incident").update(value=0)


@pytest.mark.parametrize("seed", [7, 2026, 31337])
def test_batches_apply_a_random_stream_exactly_as_alert_ingest_does(
    world, seed, django_capture_on_commit_callbacks, caplog, repeats_added
):
    stream = random_stream(seed)
    at = [BASE_AT + n * STEP for n in range(len(stream))]

    # One event at a time, the synchronous path.
    with SignalLog() as one_by_one, django_capture_on_commit_callbacks(execute=True):
        for n, (which, fields) in enumerate(stream):
            alert_ingest(integration=world[which], event=AlertEvent(**fields), received_at=at[n])
    expected = snapshot(one_by_one)

    forget_alerts_and_incidents()

    # The same events through the queue, applied in batches of 37.
    for n, (which, fields) in enumerate(stream):
        events_enqueue(integration=world[which], events=[AlertEvent(**fields)], received_at=at[n])
    assert QueuedEvent.objects.count() == len(stream)
    caplog.set_level(logging.WARNING, logger="incidents")
    with SignalLog() as batched, django_capture_on_commit_callbacks(execute=True):
        assert queue_drain(limit=37) == len(stream)
    # Applied by the batch path itself: a batch that fell back to one event at a time
    # (it logs why) would be equivalent trivially.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert not QueuedEvent.objects.exists()
    actual = snapshot(batched)

    # The stream really exercises what it is meant to.
    alerts = expected["alerts"]
    seen = Tally(alert["outcome"] for alert in alerts)
    assert {"opened", "grouped", "acknowledged", "resolved", "no_open_incident", "suppressed"} <= set(seen)
    assert "failed" not in seen
    assert any(a["in_maintenance"] for a in alerts)
    assert any(a["integration"] == world[0].pk and a["service"] == "ledger" for a in alerts)  # routed
    assert any(a["dedup_key"].startswith("grp:") for a in alerts)
    assert any(e[0] == "severity" for entries in expected["timelines"].values() for e in entries)
    assert any(e[0] == "maintenance" for entries in expected["timelines"].values() for e in entries)
    assert Alert.objects.filter(source="web2", outcome="opened").exists()  # the cross-team rule matched
    assert all(a["service"] in ("payments-api", "ledger") for a in alerts)  # never to another team
    assert len(expected["incidents"]) >= 10
    if connection.vendor == "postgresql":  # both ways of adding a repeat were used
        assert 0 < len(repeats_added) < seen["grouped"]

    assert actual["alerts"] == expected["alerts"]
    assert actual["incidents"] == expected["incidents"]
    assert actual["timelines"] == expected["timelines"]
    assert actual["signals"] == expected["signals"]


# --------------------------------------------------------------------------- one batch


def test_trigger_resolve_trigger_in_one_batch_makes_two_incidents(service_a, make_integration):
    integration = make_integration(service_a, "generic")
    for n, action in enumerate(["trigger", "trigger", "resolve", "trigger", "trigger"]):
        enqueue(integration, at=BASE_AT + n * STEP, action=action, dedup_key="flap", summary=f"flap {n}")
    assert queue_apply_batch() == 5  # one batch
    assert not QueuedEvent.objects.exists()
    first, second = Incident.objects.order_by("number")
    assert outcomes() == ["opened", "grouped", "resolved", "opened", "grouped"]
    assert (first.status, first.alert_count, first.resolved_at) == ("resolved", 3, BASE_AT + 2 * STEP)
    assert (second.status, second.alert_count, second.triggered_at) == ("triggered", 2, BASE_AT + 3 * STEP)
    assert second.last_alert_at == BASE_AT + 4 * STEP
    assert list(Alert.objects.order_by("pk").values_list("incident__number", flat=True)) == [
        first.number, first.number, first.number, second.number, second.number]
    assert list(first.timeline.order_by("pk").values_list("kind", flat=True)) == [
        "triggered", "alert", "resolved"]
    assert list(second.timeline.order_by("pk").values_list("kind", flat=True)) == ["triggered", "alert"]


def test_acknowledge_after_repeats_in_one_batch(service_a, make_integration):
    integration = make_integration(service_a, "generic")
    actions = ["trigger", "trigger", "trigger", "acknowledge", "trigger", "acknowledge"]
    severities = ["SEV3", "SEV4", "SEV2", "SEV3", "SEV1", "SEV3"]
    for n, (action, severity) in enumerate(zip(actions, severities, strict=True)):
        enqueue(integration, at=BASE_AT + n * STEP, action=action, dedup_key="k", severity=severity,
                summary=f"repeat {n}")
    assert queue_apply_batch() == 6
    incident = Incident.objects.get()
    assert outcomes() == ["opened", "grouped", "grouped", "acknowledged", "grouped", "acknowledged"]
    details = list(Alert.objects.order_by("pk").values_list("outcome_detail", flat=True))
    assert details[3] == f"Acknowledged {incident.ref}"
    assert details[5] == f"{incident.ref} was already acknowledged"
    assert (incident.status, incident.alert_count, incident.severity) == ("acknowledged", 6, "SEV1")
    assert incident.acknowledged_at == BASE_AT + 3 * STEP and incident.last_alert_at == BASE_AT + 5 * STEP
    assert list(incident.timeline.order_by("pk").values_list("kind", flat=True)) == [
        "triggered", "alert", "alert", "severity", "acknowledged", "alert", "severity"]


# --------------------------------------------------------------------------- failures


@pytest.fixture
def poison(team_a, monkeypatch):
    """Triage raises for an event whose summary contains 'poison' (a bug that only one
    event hits), on the batch path and on the one-at-a-time path alike."""
    TriageRule.objects.create(team=team_a, name="Anything", match_keywords="never-in-these-tests")
    real = triage.rule_matches

    def rule_matches(rule, event, **kwargs):
        if "poison" in event.summary:
            raise RuntimeError("triage exploded on a poisoned event")
        return real(rule, event, **kwargs)

    monkeypatch.setattr(triage, "rule_matches", rule_matches)
    return types.SimpleNamespace(cure=lambda: monkeypatch.setattr(triage, "rule_matches", real))


def test_a_failing_event_is_kept_failed_and_the_rest_of_its_batch_applied(
    service_a, make_integration, poison, django_capture_on_commit_callbacks
):
    integration = make_integration(service_a, "generic")
    plan = [("trigger", "k1", "disk full"), ("trigger", "k1", "disk full again"),
            ("trigger", "k2", "poison pill"), ("trigger", "k1", "disk still full"),
            ("acknowledge", "k1", "ack"), ("trigger", "k3", "cpu hot")]
    for n, (action, key, summary) in enumerate(plan):
        enqueue(integration, at=BASE_AT + n * STEP, action=action, dedup_key=key, summary=summary,
                severity="SEV2", priority="P3", labels={"n": str(n)})
    with django_capture_on_commit_callbacks() as callbacks:
        assert queue_apply_batch() == 6
    assert not QueuedEvent.objects.exists()
    # The others are applied, in order ...
    k1 = Incident.objects.get(dedup_key="k1")
    assert outcomes(dedup_key="k1") == ["opened", "grouped", "grouped", "acknowledged"]
    assert (k1.status, k1.alert_count) == ("acknowledged", 4)
    assert list(k1.timeline.order_by("pk").values_list("kind", flat=True)) == [
        "triggered", "alert", "alert", "acknowledged"]
    assert outcomes(dedup_key="k3") == ["opened"]
    # ... signals only for what was committed: k1 triggered and acknowledged, k3 triggered.
    assert len(callbacks) == 3
    # ... and the poisoned one is kept, failed, with the error and its content.
    failed = Alert.objects.get(dedup_key="k2")
    assert (failed.outcome, failed.incident, failed.integration) == ("failed", None, integration)
    assert "triage exploded on a poisoned event" in failed.outcome_detail
    assert (failed.summary, failed.severity, failed.labels) == ("poison pill", "SEV2", {"n": "2"})
    assert not Incident.objects.filter(dedup_key="k2").exists()

    # Fixed: the console's re-process applies it.
    poison.cure()
    result = alert_reprocess(alert=failed)
    assert result.outcome == "opened" and result.incident.dedup_key == "k2"
    assert not Alert.objects.filter(pk=failed.pk).exists()
    assert outcomes(dedup_key="k2") == ["opened"]


def test_a_failed_alert_keeps_when_the_event_was_received_and_its_priority(
    service_a, make_integration, poison
):
    integration = make_integration(service_a, "generic")
    enqueue(integration, at=BASE_AT, dedup_key="k", summary="poison", severity="SEV4", priority="P1")
    queue_drain()
    failed = Alert.objects.get()
    assert failed.outcome == "failed"
    assert (failed.received_at, failed.priority) == (BASE_AT, "P1")
    poison.cure()
    incident = alert_reprocess(alert=failed).incident
    assert (incident.triggered_at, incident.priority) == (BASE_AT, "P1")


def test_an_event_whose_triage_fails_at_the_endpoint_is_stored_all_the_same(
    client, service_a, make_integration, poison, caplog
):
    integration = make_integration(service_a, "generic")
    body = json.dumps({"summary": "poison", "dedup_key": "p"})
    url = f"/integrations/generic/{integration.token}/"
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 202
    queued = QueuedEvent.objects.get()
    assert (queued.triaged_service_id, queued.triaged_key, queued.triaged_severity) == (service_a.pk, "", "")
    assert "Triage at the endpoint failed" in caplog.text
    queue_drain()
    failed = Alert.objects.get()
    assert (failed.outcome, failed.summary) == ("failed", "poison")


def test_an_event_queued_by_the_previous_version_is_applied_in_order(service_a, make_integration):
    """A web process of the version before the triaged_* columns, still running during an
    upgrade, inserts only the columns it knows: the database fills in the rest, and the
    applier triages the event itself, before any event queued after it."""
    integration = make_integration(service_a, "generic")
    enqueue(integration, at=BASE_AT, dedup_key="k")
    queue_drain()
    _, text, payload = event_encode(AlertEvent(action="resolve", dedup_key="k", summary="fixed"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {QueuedEvent._meta.db_table} (integration_id, service_id, event, payload,"
            " received_at, error) VALUES (%s, %s, %s, %s, %s, '')",
            [integration.pk, service_a.pk, text, payload, BASE_AT + STEP],
        )
    enqueue(integration, at=BASE_AT + 2 * STEP, dedup_key="k")
    queue_drain()
    assert outcomes() == ["opened", "resolved", "opened"]
    assert list(Incident.objects.order_by("number").values_list("status", "alert_count")) == [
        ("resolved", 2), ("triggered", 1)]


@pytest.fixture
def unstorable_alert(db):
    """A database that refuses any alert with dedup key 'stuck', even a failed one."""
    with alert_inserts_refused("stuck", message="refused", failed_too=True):
        yield


def test_an_event_that_cannot_even_be_kept_does_not_block_the_queue(
    service_a, make_integration, unstorable_alert
):
    integration = make_integration(service_a, "generic")
    enqueue(integration, dedup_key="before")
    enqueue(integration, dedup_key="stuck")
    enqueue(integration, dedup_key="after")
    assert queue_drain() == 3  # and returns: the stuck event is not taken again
    assert outcomes(dedup_key="before") == ["opened"]
    assert outcomes(dedup_key="after") == ["opened"]
    assert not Alert.objects.filter(dedup_key="stuck").exists()
    # Not lost: it stays queued, marked with both errors, and is left alone from now on.
    stuck = QueuedEvent.objects.get()
    assert json.loads(stuck.event)["dedup_key"] == "stuck"
    assert stuck.error.count("refused") == 2 and "keeping it as a failed alert failed too" in stuck.error
    enqueue(integration, dedup_key="later")
    assert queue_apply_batch() == 1 and outcomes(dedup_key="later") == ["opened"]
    out, err = io.StringIO(), io.StringIO()
    call_command("alerts_apply", stdout=out, stderr=err)
    assert out.getvalue().strip() == "applied 0 queued event(s); 1 left"
    assert "1 queued event(s) could not be applied nor kept as failed alerts" in err.getvalue()


@pytest.mark.parametrize("with_poison", [False, True], ids=["batch", "one-by-one"])
def test_integration_deleted_before_its_event_is_applied(
    request, service_a, make_integration, with_poison
):
    if with_poison:  # another event of the batch fails: the batch is applied one event at a time
        request.getfixturevalue("poison")
    gone = make_integration(service_a, "generic")
    kept = make_integration(service_a, "pagerduty")
    enqueue(kept, at=BASE_AT, dedup_key="k")
    enqueue(gone, at=BASE_AT + STEP, dedup_key="k", summary="sent just before the integration was deleted",
            severity="SEV1")
    enqueue(kept, at=BASE_AT + 2 * STEP, dedup_key="k")
    if with_poison:
        enqueue(kept, at=BASE_AT + 3 * STEP, dedup_key="p", summary="poison")
    gone.delete()
    assert queue_drain() == (4 if with_poison else 3)
    assert not QueuedEvent.objects.exists()
    orphan = Alert.objects.get(summary="sent just before the integration was deleted")
    assert (orphan.service, orphan.integration, orphan.incident, orphan.outcome) == (
        service_a, None, None, "failed")
    assert orphan.outcome_detail == "The integration was deleted before this event was applied."
    assert (orphan.dedup_key, orphan.severity, orphan.received_at) == ("k", "SEV1", BASE_AT + STEP)
    incident = Incident.objects.get(dedup_key="k")
    assert outcomes(integration=kept, dedup_key="k") == ["opened", "grouped"]
    assert incident.alert_count == 2 and incident.severity == "SEV3"


# --------------------------------------------------------------------------- appliers


@pytest.mark.django_db(transaction=True)
def test_the_clock_applies_an_event_posted_over_http(client, service_a, make_integration):
    integration = make_integration(service_a, "generic")
    stop = threading.Event()

    def run_clock() -> None:
        try:
            clock_run(interval=0.2, stop=stop)
        finally:
            connections.close_all()  # this thread's: PostgreSQL's test database is dropped at the end

    clock = threading.Thread(target=run_clock, daemon=True)
    clock.start()
    try:
        # On SQLite the test database is in memory, shared between the threads' connections
        # with table locks that wait for nobody: a request that meets the applier's write
        # gets the documented 503, and the sender retries, as Alertmanager or the PagerDuty
        # client would. (PostgreSQL has no such collisions.)
        deadline = time.monotonic() + 10
        while True:
            r = client.post(f"/integrations/generic/{integration.token}/",
                            {"summary": "checkout down", "dedup_key": "clock-1", "severity": "critical"},
                            content_type="application/json")
            if r.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert r.status_code == 202, r.content
        deadline = time.monotonic() + 10
        alert = None
        while time.monotonic() < deadline:
            try:
                alert = Alert.objects.select_related("incident").filter(dedup_key="clock-1").first()
            except OperationalError:  # SQLite's shared-cache table lock, as above
                alert = None
            if alert is not None and alert.incident is not None:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the clock did not apply the event within 10 s (alert: {alert!r})")
    finally:
        stop.set()
        clock.join(timeout=30)
    assert not clock.is_alive()
    assert alert.outcome == "opened" and alert.incident.severity == "SEV1"
    assert not QueuedEvent.objects.exists()


def test_alerts_apply_command_empties_the_queue(service_a, make_integration):
    integration = make_integration(service_a, "generic")
    enqueue(integration, dedup_key="a")
    events_enqueue(integration=integration, events=[AlertEvent(summary="x", dedup_key="a"),
                                                    AlertEvent(summary="y", dedup_key="b")])
    out = io.StringIO()
    call_command("alerts_apply", stdout=out)
    assert out.getvalue().strip() == "applied 3 queued event(s); 0 left"
    assert not QueuedEvent.objects.exists()
    assert outcomes() == ["opened", "grouped", "opened"]
    out = io.StringIO()
    call_command("alerts_apply", stdout=out)
    assert out.getvalue().strip() == "applied 0 queued event(s); 0 left"


# --------------------------------------------------------------------------- integration cache


def _post(client, integration):
    return client.post(f"/integrations/generic/{integration.token}/", {"summary": "x"},
                       content_type="application/json")


@pytest.fixture
def cached_integration(client, service_a, make_integration):
    integration = make_integration(service_a, "generic")
    assert _post(client, integration).status_code == 202  # now cached in this process
    return integration


def test_disabling_by_saving_the_model_is_seen_at_once(client, cached_integration):
    cached_integration.enabled = False
    cached_integration.save()
    assert _post(client, cached_integration).status_code == 404
    cached_integration.enabled = True
    cached_integration.save()
    assert _post(client, cached_integration).status_code == 202


def test_disabling_through_the_api_is_seen_at_once(client, cached_integration, manager):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=manager).key}")
    response = api.patch(f"/api/v1/integrations/{cached_integration.pk}/", {"enabled": False}, format="json")
    assert response.status_code == 200, response.content
    assert _post(client, cached_integration).status_code == 404


def test_deleting_is_seen_at_once(client, cached_integration):
    Integration.objects.filter(pk=cached_integration.pk).get().delete()
    assert _post(client, cached_integration).status_code == 404


def test_an_update_that_bypasses_signals_is_seen_after_the_time_to_live(client, service_a,
                                                                        make_integration, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(process_cache, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    integration = make_integration(service_a, "generic")
    assert _post(client, integration).status_code == 202
    Integration.objects.filter(pk=integration.pk).update(enabled=False)  # no post_save
    # Within the time-to-live this process still knows the integration as enabled ...
    now[0] += common.INTEGRATION_CACHE_SECONDS - 0.1
    assert _post(client, integration).status_code == 202
    # ... and after it, the look-up sees the change.
    now[0] += 0.2
    assert _post(client, integration).status_code == 404
    # The events accepted meanwhile are applied like any other.
    assert queue_drain() == 2 and Alert.objects.filter(integration=integration).count() == 2


class _CountingStop(threading.Event):
    """A stop event that records the applier's pauses and stops it after a few."""

    def __init__(self, pauses: int) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.pauses = pauses

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        if len(self.waits) >= self.pauses:
            self.set()
        return self.is_set()


def test_the_applier_backs_off_from_half_a_second_while_the_database_is_down(db, caplog):
    # A lock busy for a moment (SQLite) or a brief failover should cost half a second,
    # not five; a database that stays down, one try per 5 s.
    from incidents.alert_queue import queue_applier_run

    stop = _CountingStop(pauses=6)
    caplog.set_level(logging.CRITICAL, logger="incidents")
    with database_unavailable():
        queue_applier_run(stop)
    assert stop.waits == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
