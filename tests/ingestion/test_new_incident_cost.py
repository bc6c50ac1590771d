"""What applying an event that opens a new incident costs, in statements, and the
behaviour the cheaper path relies on: the batch hands the rules, maintenance windows
and open incidents it already read to ``alert_ingest_known`` instead of letting each
event read them again."""

from __future__ import annotations

import re
from collections import Counter as Tally
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents.alert_batch import AlertBatch
from incidents.alert_queue import events_enqueue, queue_apply_batch
from incidents.events import AlertEvent
from incidents.models import Alert, Incident, MaintenanceWindow, TriageRule
from incidents.services import alert_ingest
from ircore.models import Counter

pytestmark = pytest.mark.django_db

# Statements per new incident: the applier's own (counter, the savepoint around the
# incident's insert, the insert: 4; its alert and timeline entries join the batch's
# multi-row inserts) and the on-commit receivers' (escalation: a savepoint or
# BEGIN/COMMIT pair, the locked incident with its maintenance state, routes, chains,
# the escalation's look-up and insert: 7; known errors: 1; status page links: 1).
# It was 23 (with the triage rule below) before the batch passed on what it had read
# and wrote the new incidents' alerts and timeline entries with its own.
STATEMENTS_PER_NEW_INCIDENT = 13


def _enqueue_new(integration, count: int, tag: str) -> None:
    for n in range(count):
        events_enqueue(integration=integration, events=[
            AlertEvent(summary=f"checkout errors ({tag} {n})", dedup_key=f"{tag}-{n}", source="web-1"),
        ])


def _apply_captured(capture) -> list[str]:
    # One batch, with the receivers of its signals run as after a real commit.
    with CaptureQueriesContext(connection) as queries, capture(execute=True):
        assert queue_apply_batch(limit=500)
    return [re.sub(r"\s+", " ", q["sql"]) for q in queries.captured_queries]


def test_statements_per_new_incident(service_a, make_integration, django_capture_on_commit_callbacks):
    integration = make_integration(service_a, "pagerduty")
    TriageRule.objects.create(team=service_a.team, name="Web is SEV2", match_source="web-*",
                              set_severity="SEV2")
    _enqueue_new(integration, 1, "warm")  # the first use of a counter creates its row
    _apply_captured(django_capture_on_commit_callbacks)

    _enqueue_new(integration, 4, "four")
    four = _apply_captured(django_capture_on_commit_callbacks)
    _enqueue_new(integration, 8, "eight")
    eight = _apply_captured(django_capture_on_commit_callbacks)

    assert (len(eight) - len(four)) / 4 == STATEMENTS_PER_NEW_INCIDENT, "\n".join(eight)
    assert Incident.objects.count() == 13
    assert set(Incident.objects.values_list("severity", flat=True)) == {"SEV2"}

    def count(pattern: str) -> int:
        return sum(1 for sql in eight if re.search(pattern, sql))

    # Read once per batch, not once per event.
    assert count(r'FROM "incidents_triagerule"') == 1
    # No look-up of its own (service_in_maintenance) per event: the batch's windows,
    # and escalation_start asks along with the locked incident.
    assert count(r'^SELECT "incidents_maintenancewindow"\."id"') == 0
    # The batch's lock of the open incidents, then escalation_start's lock of each
    # new one: no look-up for an open incident the batch knows there is none of.
    assert count(r'^SELECT .* FROM incidents_incident WHERE service_id (IN|= ANY)') == 1
    assert count(r'^SELECT "incidents_incident"\."id"') == 8
    # One UPDATE ... RETURNING per number (and one for the batch).
    assert count(r'"ircore_counter"') == 1 + 8
    # The team has no chain: whether it has any comes with the look for its default.
    assert count(r'^SELECT 1 AS "a" FROM "oncall_escalationchain"') == 0
    # The new incidents' alerts and timeline entries go with the batch's own inserts
    # (COPY on PostgreSQL, not seen here; one multi-row INSERT each elsewhere).
    inserts = count(r'^INSERT INTO "incidents_(alert|timelineentry)"')
    assert inserts == (0 if connection.vendor == "postgresql" else 2)


def test_a_resolve_by_the_sent_key_finds_the_incident_opened_earlier_in_its_batch(
    service_a, make_integration
):
    """Finding the incident by the key the trigger was sent with reads its alert, which
    the batch holds back with the new incident: it is written before that read."""
    integration = make_integration(service_a, "pagerduty")
    TriageRule.objects.create(team=service_a.team, name="Group", match_labels={"group": "*"},
                              set_dedup_key="grp:{labels[group]}")
    events_enqueue(integration=integration, events=[
        AlertEvent(summary="db down", dedup_key="sent-1", labels={"group": "db"}),
        AlertEvent(summary="unrelated", dedup_key="other"),
        AlertEvent(summary="db down", dedup_key="sent-1", action="resolve"),
    ])
    assert queue_apply_batch() == 3
    incident = Incident.objects.get(dedup_key="grp:db")
    assert incident.status == "resolved" and incident.alert_count == 2
    assert list(Alert.objects.order_by("pk").values_list("sent_dedup_key", "outcome")) == [
        ("sent-1", "opened"), ("other", "opened"), ("sent-1", "resolved"),
    ]
    kinds = list(incident.timeline.order_by("pk").values_list("kind", flat=True))
    assert kinds[:2] == ["triggered", "triage"]


def test_an_incident_opened_by_another_writer_after_the_batch_looked_is_joined(
    service_a, make_integration, monkeypatch
):
    """The batch skips the open-incident look-up for a key it saw no open incident for;
    if another writer opened one since (PostgreSQL, READ COMMITTED), the unique index
    refuses the second and the alert joins the other writer's incident, with no number
    used up."""
    integration = make_integration(service_a, "pagerduty")
    events_enqueue(integration=integration, events=[AlertEvent(summary="disk full", dedup_key="disk")])
    looked = AlertBatch._lock_open_incidents
    theirs: list[Incident] = []

    def look_then_another_writer_opens(self, plans):
        looked(self, plans)
        theirs.append(alert_ingest(integration=integration,
                                   event=AlertEvent(summary="disk full", dedup_key="disk")).incident)

    monkeypatch.setattr(AlertBatch, "_lock_open_incidents", look_then_another_writer_opens)
    assert queue_apply_batch() == 1

    assert Incident.objects.count() == 1
    incident = Incident.objects.get()
    assert incident == theirs[0] and incident.alert_count == 2
    assert list(Alert.objects.order_by("pk").values_list("outcome", flat=True)) == ["opened", "grouped"]
    assert Counter.objects.get(name="incident").value == incident.number  # no number lost


def test_a_window_starting_inside_the_batch_marks_only_the_later_events(service_a, make_integration):
    """The batch reads the windows once for its time span; an event before a window's
    start opens an incident that pages, one after it does not."""
    integration = make_integration(service_a, "pagerduty")
    start = timezone.now().replace(microsecond=0) - timedelta(minutes=10)
    window = MaintenanceWindow.objects.create(team=service_a.team, starts_at=start + timedelta(minutes=2),
                                              ends_at=start + timedelta(minutes=5), reason="upgrade")
    window.services.add(service_a)
    for minute, key in ((1, "before"), (3, "during"), (6, "after")):
        events_enqueue(integration=integration, events=[AlertEvent(summary=key, dedup_key=key)],
                       received_at=start + timedelta(minutes=minute))
    assert queue_apply_batch() == 3
    flags = dict(Incident.objects.values_list("dedup_key", "in_maintenance"))
    assert flags == {"before": False, "during": True, "after": False}
    during = Incident.objects.get(dedup_key="during")
    assert Tally(during.timeline.values_list("kind", flat=True))["maintenance"] == 1
