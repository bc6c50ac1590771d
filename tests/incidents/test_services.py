"""The incident pipeline and transitions, called as the rest of the code calls them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import services, signals
from incidents.events import AlertEvent
from incidents.models import Alert, Incident, MaintenanceWindow, Service, TimelineEntry, TriageRule

Via = TimelineEntry.Via


@pytest.fixture
def integration(service_a, make_integration):
    return make_integration(service_a, "generic")


def ingest(integration, **kw):
    kw.setdefault("summary", "something broke")
    return services.alert_ingest(integration=integration, event=AlertEvent(**kw))


def kinds(incident):
    return list(incident.timeline.values_list("kind", flat=True))


def test_numbers_are_sequential_and_refs_readable(integration):
    refs = [ingest(integration, dedup_key=f"k{i}").incident.ref for i in range(3)]
    assert refs == ["INC-1", "INC-2", "INC-3"]


def test_trigger_without_key_always_opens_a_new_incident(integration):
    a = ingest(integration)
    b = ingest(integration)
    assert a.incident.pk != b.incident.pk
    assert len(a.alert.dedup_key) == 32


def test_more_severe_alert_raises_incident_severity_never_lowers(integration):
    first = ingest(integration, dedup_key="k", severity="SEV3")
    ingest(integration, dedup_key="k", severity="SEV1")
    ingest(integration, dedup_key="k", severity="SEV4")
    incident = Incident.objects.get(pk=first.incident.pk)
    assert incident.severity == "SEV1"
    assert incident.alert_count == 3
    assert kinds(incident).count("severity") == 1


def test_triage_keyword_rule_sets_sev1_p1_and_is_on_the_timeline(integration, team_a):
    TriageRule.objects.create(team=team_a, name="db down", match_keywords="database down\nDB offline",
                              set_severity="SEV1", set_priority="P1")
    result = ingest(integration, summary="Primary DATABASE DOWN in eu-1", severity="SEV4")
    assert (result.incident.severity, result.incident.priority) == ("SEV1", "P1")
    assert "triage" in kinds(result.incident)


def test_first_matching_rule_wins_unless_it_continues(integration, team_a):
    TriageRule.objects.create(team=team_a, name="a", position=1, match_source="db-*",
                              set_severity="SEV2", continue_processing=True)
    TriageRule.objects.create(team=team_a, name="b", position=2, match_labels={"env": "prod*"},
                              set_priority="P1")
    TriageRule.objects.create(team=team_a, name="c", position=3, set_severity="SEV4")
    result = ingest(integration, source="db-7", labels={"env": "production"})
    assert (result.incident.severity, result.incident.priority) == ("SEV2", "P1")


def test_rules_of_other_teams_and_disabled_rules_do_not_apply(integration, team_a, team_b):
    TriageRule.objects.create(team=team_b, name="other team", set_severity="SEV1")
    TriageRule.objects.create(team=team_a, name="off", enabled=False, set_severity="SEV1")
    assert ingest(integration, severity="SEV4").incident.severity == "SEV4"


def test_suppress_keeps_the_alert_but_opens_nothing(integration, team_a):
    TriageRule.objects.create(team=team_a, name="tests", match_keywords="[TEST]", suppress=True)
    result = ingest(integration, summary="[TEST] synthetic check")
    assert result.incident is None and result.outcome == "suppressed"
    assert Alert.objects.get().outcome == "suppressed"
    assert Incident.objects.count() == 0


def test_dedup_key_template_groups_alerts(integration, team_a):
    TriageRule.objects.create(team=team_a, name="by host", set_dedup_key="host-{labels[host]}-{source}")
    a = ingest(integration, labels={"host": "db1"}, source="node", dedup_key="x1")
    b = ingest(integration, labels={"host": "db1"}, source="node", dedup_key="x2")
    assert a.incident.pk == b.incident.pk
    assert a.incident.dedup_key == "host-db1-node"


def test_route_to_service_only_within_the_team(integration, team_a, service_b):
    other = Service.objects.create(team=team_a, name="ledger")
    TriageRule.objects.create(team=team_a, name="ledger", match_keywords="ledger", route_to_service=other)
    TriageRule.objects.create(team=team_a, name="leak", match_keywords="leak", route_to_service=service_b)
    assert ingest(integration, summary="ledger lag").incident.service == other
    assert ingest(integration, summary="leak").incident.service == integration.service


def test_maintenance_window_marks_incident_and_alert(integration, service_a, team_a):
    now = timezone.now()
    window = MaintenanceWindow.objects.create(team=team_a, starts_at=now - timedelta(minutes=5),
                                              ends_at=now + timedelta(hours=1), reason="db upgrade")
    window.services.add(service_a)
    result = ingest(integration)
    assert result.incident.in_maintenance and result.alert.in_maintenance
    assert "maintenance" in kinds(result.incident)


def test_expired_window_does_not_apply(integration, service_a, team_a):
    now = timezone.now()
    window = MaintenanceWindow.objects.create(team=team_a, starts_at=now - timedelta(hours=2),
                                              ends_at=now - timedelta(hours=1))
    window.services.add(service_a)
    assert not ingest(integration).incident.in_maintenance


def test_transitions_are_compare_and_set_with_timeline(integration, responder):
    incident = ingest(integration, dedup_key="k").incident
    assert services.incident_acknowledge(incident=incident, user=responder, via=Via.WEB)
    assert not services.incident_acknowledge(incident=incident, user=responder, via=Via.WEB)
    assert services.incident_resolve(incident=incident, user=responder, via=Via.API)
    assert not services.incident_resolve(incident=incident, user=responder, via=Via.API)
    incident.refresh_from_db()
    assert incident.acknowledged_by == responder and incident.resolved_by == responder
    assert incident.acknowledged_at <= incident.resolved_at
    assert kinds(incident) == ["triggered", "acknowledged", "resolved"]
    assert "via API" in incident.timeline.last().message


def test_reopen_refused_when_same_key_is_open_again(integration, responder):
    old = ingest(integration, dedup_key="k").incident
    services.incident_resolve(incident=old, user=responder, via=Via.WEB)
    ingest(integration, dedup_key="k")
    with pytest.raises(services.ReopenConflict):
        services.incident_reopen(incident=old, user=responder, via=Via.WEB)
    old.refresh_from_db()
    assert old.status == "resolved"
    assert kinds(old) == ["triggered", "resolved"]


def test_reopen_clears_milestones(integration, responder):
    incident = ingest(integration, dedup_key="k").incident
    services.incident_acknowledge(incident=incident, user=responder, via=Via.WEB)
    services.incident_mitigate(incident=incident, user=responder, via=Via.WEB)
    assert not services.incident_mitigate(incident=incident, user=responder, via=Via.WEB)
    services.incident_resolve(incident=incident, user=responder, via=Via.WEB)
    assert services.incident_reopen(incident=incident, user=responder, via=Via.WEB)
    incident.refresh_from_db()
    assert incident.status == "triggered"
    assert incident.acknowledged_at is None and incident.resolved_at is None
    assert incident.mitigated_at is None


def test_escalate_unacknowledges_and_signals_after_commit(
    integration, responder, django_capture_on_commit_callbacks
):
    incident = ingest(integration, dedup_key="k").incident
    services.incident_acknowledge(incident=incident, user=responder, via=Via.WEB)
    received = []
    signals.incident_escalation_requested.connect(lambda **kw: received.append(kw), weak=False,
                                                  dispatch_uid="t-esc")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert services.incident_escalate(incident=incident, user=responder, via=Via.EMAIL)
        assert received and received[0]["incident"].pk == incident.pk
        assert received[0]["via"] == Via.EMAIL
    finally:
        signals.incident_escalation_requested.disconnect(dispatch_uid="t-esc")
    incident.refresh_from_db()
    assert incident.status == "triggered" and incident.acknowledged_by is None


def test_triggered_signal_waits_for_commit(integration, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ingest(integration, dedup_key="k")
    assert len(callbacks) == 1  # deferred until commit, not sent inline


def test_notes_and_severity_changes(integration, responder):
    incident = ingest(integration).incident
    with pytest.raises(ValueError):
        services.incident_add_note(incident=incident, user=responder, text="   ", via=Via.WEB)
    services.incident_add_note(incident=incident, user=responder, text="looking", via=Via.WEB)
    with pytest.raises(ValueError):
        services.incident_set_severity(incident=incident, severity="SEV9", user=responder, via=Via.WEB)
    assert services.incident_set_severity(incident=incident, severity="SEV1", user=responder, via=Via.WEB)
    assert not services.incident_set_severity(incident=incident, severity="SEV1", user=responder, via=Via.WEB)
    assert services.incident_set_priority(incident=incident, priority="P2", user=responder, via=Via.WEB)
    incident.refresh_from_db()
    assert (incident.severity, incident.priority) == ("SEV1", "P2")
    assert kinds(incident)[-3:] == ["note", "severity", "priority"]


def test_assign_roles(integration, responder, secondary, manager):
    incident = ingest(integration).incident
    changed = services.incident_assign_roles(
        incident=incident, user=manager, via=Via.WEB, commander=manager, communication_lead=secondary,
        responders=[responder, secondary], war_room_url="https://meet.example.com/inc",
    )
    assert set(changed) == {"commander", "communication_lead", "responders", "war_room_url"}
    assert services.incident_assign_roles(incident=incident, user=manager, via=Via.WEB,
                                          commander=manager) == []
    assert incident.commander == manager
    assert set(incident.responders.all()) == {responder, secondary}


def test_failed_processing_keeps_the_event_and_can_be_reprocessed(integration):
    event = AlertEvent(summary="boom", dedup_key="k")
    alert = services.alert_store_failed(integration=integration, event=event, error="RuntimeError()")
    assert alert.outcome == "failed" and Incident.objects.count() == 0
    result = services.alert_reprocess(alert=alert)
    assert result.incident is not None and result.alert.outcome == "opened"
    assert Alert.objects.count() == 1


def test_change_event_goes_on_service_timeline_without_incident(integration):
    entry = services.change_event_record(integration=integration, summary="deploy v42", source="ci")
    assert entry.incident is None and entry.kind == "change"
    assert Incident.objects.count() == 0
