"""Postmortem creation from templates, timeline copy, workflow and refusals, audit."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from incidents import services as incident_services
from postmortems import selectors, services
from postmortems.models import ActionItem, Postmortem, PostmortemTemplate


def test_builtin_templates_are_shipped(db):
    names = set(PostmortemTemplate.objects.filter(team=None).values_list("name", flat=True))
    assert names == {"Blameless postmortem (full)", "Lightweight postmortem"}
    full = PostmortemTemplate.objects.get(is_default=True)
    for heading in ("Summary", "Impact", "Root causes", "Trigger", "Resolution", "Detection",
                    "What went well", "What went wrong", "Where we got lucky", "Action items", "Timeline"):
        assert f"## {heading}" in full.body


def test_create_fills_default_template(resolved_incident, responder):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    assert pm.title == f"Postmortem: {resolved_incident.ref} Checkout errors > 5%"
    assert pm.template.name == "Blameless postmortem (full)"
    assert f"| Incidents | {resolved_incident.ref} Checkout errors > 5% |" in pm.body
    assert "| Services | payments-api |" in pm.body and "| Severity | SEV2 |" in pm.body
    assert "{{" not in pm.body
    assert pm.team == resolved_incident.team and pm.owner == responder and pm.status == "draft"
    assert pm.changes.get().action == "created"
    assert resolved_incident.timeline.filter(data__postmortem_id=pm.pk).exists()


def test_team_template_with_unknown_placeholder_left_as_written(resolved_incident, responder, team_a):
    body = "{{ team }}/{{ duration }}/{{ nope }}"
    tpl = PostmortemTemplate.objects.create(team=team_a, name="ours", body=body)
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder, template=tpl, title="T")
    assert pm.body == "Payments/0m/{{ nope }}"


def test_timeline_copy_has_milestones_and_no_alert_noise(resolved_incident, responder):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    kinds = list(pm.timeline.values_list("kind", flat=True))
    assert kinds[:1] == ["triggered"] and "alert" not in kinds
    assert {"acknowledged", "note", "mitigated", "resolved"} <= set(kinds)
    milestones = set(pm.timeline.filter(milestone=True).values_list("kind", flat=True))
    assert milestones == {"triggered", "acknowledged", "mitigated", "resolved"}
    ack = pm.timeline.get(kind="acknowledged")
    assert ack.actor == "Rita" and ack.incident_ref == resolved_incident.ref


def test_refresh_adds_new_entries_keeps_hidden_and_annotations(resolved_incident, responder):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    note = pm.timeline.get(kind="note")
    services.postmortem_timeline_item_update(item=note, user=responder, hidden=True,
                                             annotation="Why so late?")
    incident_services.incident_add_note(incident=resolved_incident, user=responder, text="late note",
                                        via="web")
    assert services.postmortem_timeline_refresh(postmortem=pm, user=responder) == 1
    assert services.postmortem_timeline_refresh(postmortem=pm, user=responder) == 0
    note.refresh_from_db()
    assert (note.hidden, note.annotation) == (True, "Why so late?")
    assert pm.timeline.filter(message="late note").exists()
    assert [c.action for c in pm.changes.all()] == ["created", "timeline_item", "timeline_refreshed",
                                                   "timeline_refreshed"]


def test_several_incidents_in_one_postmortem(make_resolved, responder):
    a, b = make_resolved(summary="first"), make_resolved(summary="second")
    pm = services.postmortem_create(incidents=[b, a], user=responder)
    assert set(pm.incidents.all()) == {a, b}
    assert pm.title.startswith(f"Postmortem: {a.ref}")
    assert set(pm.timeline.values_list("incident_ref", flat=True)) == {a.ref, b.ref}


@pytest.mark.parametrize("case", ["empty", "open", "mixed_teams", "foreign_template", "outsider"])
def test_create_refusals_write_nothing(case, make_resolved, service_b, responder, outsider, team_b):
    incidents, template, user = [make_resolved()], None, responder
    if case == "empty":
        incidents = []
    elif case == "open":
        incidents = [make_resolved(resolve=False)]
    elif case == "mixed_teams":
        incidents.append(make_resolved(service=service_b))
    elif case == "foreign_template":
        template = PostmortemTemplate.objects.create(team=team_b, name="theirs", body="x")
    else:
        user = outsider
    with pytest.raises(ValidationError):
        services.postmortem_create(incidents=incidents, user=user, template=template)
    assert not Postmortem.objects.exists()


def test_workflow_draft_review_publish_with_refusals(resolved_incident, responder, secondary, outsider,
                                                    manager):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    with pytest.raises(ValidationError, match="at least one reviewer"):
        services.postmortem_submit_for_review(postmortem=pm, user=responder)
    with pytest.raises(ValidationError, match="Not in the team"):
        services.postmortem_submit_for_review(postmortem=pm, user=responder, reviewers=[outsider])
    with pytest.raises(ValidationError, match="is draft, not in review"):
        services.postmortem_publish(postmortem=pm, user=manager)
    services.postmortem_submit_for_review(postmortem=pm, user=responder, reviewers=[secondary])
    assert pm.status == "in_review" and pm.submitted_at
    with pytest.raises(ValidationError, match="only be refreshed while"):
        services.postmortem_timeline_refresh(postmortem=pm, user=responder)
    with pytest.raises(ValidationError, match="Only a named reviewer or a team manager"):
        services.postmortem_publish(postmortem=pm, user=responder)
    services.postmortem_publish(postmortem=pm, user=secondary)
    pm.refresh_from_db()
    assert (pm.status, pm.published_by) == ("published", secondary)
    with pytest.raises(ValidationError, match="published postmortem cannot be changed"):
        services.postmortem_update(postmortem=pm, user=responder, title="rewrite history")
    with pytest.raises(ValidationError, match="is published, not in review"):
        services.postmortem_return_to_draft(postmortem=pm, user=responder)
    log = [(c.action, c.actor.username) for c in pm.changes.all()]
    assert log == [("created", "rita"), ("reviewers", "rita"), ("submit_for_review", "rita"),
                   ("publish", "sam")]


def test_manager_can_publish_and_return_to_draft(resolved_incident, responder, secondary, manager):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    services.postmortem_submit_for_review(postmortem=pm, user=responder, reviewers=[secondary])
    services.postmortem_return_to_draft(postmortem=pm, user=secondary, reason="missing impact")
    assert pm.status == "draft" and "missing impact" in pm.changes.last().message
    services.postmortem_submit_for_review(postmortem=pm, user=responder)
    services.postmortem_publish(postmortem=pm, user=manager)
    assert pm.status == "published"


def test_update_records_who_changed_what(resolved_incident, responder, outsider):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    services.postmortem_update(postmortem=pm, user=responder, title="New title", body="# x")
    change = pm.changes.last()
    old_title = f"Postmortem: {resolved_incident.ref} Checkout errors > 5%"
    assert change.fields["title"] == [old_title, "New title"]
    assert "body" in change.fields and change.actor == responder
    with pytest.raises(ValidationError):
        services.postmortem_update(postmortem=pm, user=responder, title="  ")
    with pytest.raises(ValidationError):
        services.postmortem_update(postmortem=pm, user=responder, status="published")
    with pytest.raises(ValidationError):
        services.postmortem_update(postmortem=pm, user=responder, owner=outsider)
    assert Postmortem.objects.get(pk=pm.pk).title == "New title"


def test_action_items_validation_and_completion(resolved_incident, responder, outsider):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    bad_inputs = ({"title": " "}, {"title": "x", "owner": outsider}, {"title": "x", "kind": "blame"},
                  {"title": "x", "ticket_url": "javascript:alert(1)"}, {"title": "x", "colour": "red"})
    for bad in bad_inputs:
        with pytest.raises(ValidationError):
            services.action_item_create(postmortem=pm, user=responder, **bad)
    assert not ActionItem.objects.exists()
    item = services.action_item_create(postmortem=pm, user=responder, title="Add canary", owner=responder,
                                       kind="prevent", due_date=date(2026, 1, 1),
                                       ticket_url="https://jira.example.com/OPS-1")
    services.action_item_update(item=item, user=responder, status="done")
    assert item.completed_at is not None
    services.action_item_update(item=item, user=responder, status="open")
    assert item.completed_at is None
    assert pm.changes.filter(action="action_item_changed").count() == 2


@override_settings(POSTMORTEM_REQUIRED_SEVERITIES=["SEV1", "SEV2"])
def test_selectors_owing_postmortem_and_overdue(make_resolved, responder, outsider, service_b):
    owing = make_resolved(severity="SEV1")
    make_resolved(severity="SEV3")  # not required
    make_resolved(severity="SEV2", resolve=False)  # still open
    covered = make_resolved(severity="SEV2")
    theirs = make_resolved(severity="SEV1", service=service_b)
    pm = services.postmortem_create(incidents=[covered], user=responder)
    assert list(selectors.incidents_owing_postmortem(user=responder)) == [owing]
    assert list(selectors.incidents_owing_postmortem(user=outsider)) == [theirs]
    today = date(2026, 6, 10)
    late = services.action_item_create(postmortem=pm, user=responder, title="late",
                                       due_date=today - timedelta(1))
    services.action_item_create(postmortem=pm, user=responder, title="due today", due_date=today)
    services.action_item_create(postmortem=pm, user=responder, title="done", status="done",
                                due_date=today - timedelta(9))
    assert list(selectors.action_items_overdue(user=responder, today=today)) == [late]
    assert list(selectors.action_items_overdue(user=outsider, today=today)) == []
