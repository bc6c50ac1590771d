"""/api/v1/postmortems/, action-items, postmortem-templates: flows, refusals, team isolation."""

from datetime import date, timedelta

import pytest

from postmortems.models import ActionItem, Postmortem, PostmortemTemplate


def create(client, incident, **extra):
    return client.post("/api/v1/postmortems/", {"incidents": [incident.pk], **extra}, format="json")


def test_full_flow_create_edit_review_publish_export(api, resolved_incident, responder, secondary):
    client = api(responder)
    res = create(client, resolved_incident)
    assert res.status_code == 201, res.data
    pm = res.data
    assert pm["status"] == "draft" and pm["incidents"] == [resolved_incident.number]
    assert "<h2>Impact</h2>" in pm["body_html"]
    url = f"/api/v1/postmortems/{pm['id']}/"
    res = client.patch(
        url, {"body": "# Title\n\n<script>alert(1)</script>ok", "status": "published"}, format="json"
    )
    assert res.status_code == 200 and res.data["status"] == "draft"  # status is not writable here
    assert "<script" not in res.data["body_html"] and "ok" in res.data["body_html"]
    timeline = client.get(url + "timeline/").data
    note = next(item for item in timeline if item["kind"] == "note")
    res = client.patch(url + f"timeline/{note['id']}/", {"hidden": True, "annotation": "n"}, format="json")
    assert res.status_code == 200 and res.data["hidden"] is True
    assert client.post(url + "submit/", {}, format="json").status_code == 400  # no reviewers
    res = client.post(url + "submit/", {"reviewers": ["sam"]}, format="json")
    assert res.status_code == 200 and res.data["reviewers"] == ["sam"]
    assert client.post(url + "refresh-timeline/").status_code == 409
    assert client.post(url + "publish/").status_code == 403  # author, not reviewer
    res = api(secondary).post(url + "publish/")
    assert res.status_code == 200 and res.data["published_by"] == "sam"
    assert client.patch(url, {"title": "x"}, format="json").status_code == 409
    md = client.get(url + "markdown/")
    assert md.status_code == 200 and md["Content-Type"].startswith("text/markdown")
    assert b"# Title" in md.content and b"<script>" in md.content  # the file is the source text
    history = [h["action"] for h in client.get(url + "history/").data]
    assert history[0] == "created" and history[-1] == "publish"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"incidents": []}, "incidents"),
        ({"incidents": [999999]}, "incidents"),
        ({"incidents": "x"}, "incidents"),
        ({}, "incidents"),
    ],
)
def test_create_bad_input_is_400_and_writes_nothing(api, responder, resolved_incident, payload, field):
    res = api(responder).post("/api/v1/postmortems/", payload, format="json")
    assert res.status_code == 400 and field in res.data
    assert not Postmortem.objects.exists()


def test_create_from_open_incident_is_400(api, responder, make_resolved):
    res = create(api(responder), make_resolved(resolve=False))
    assert res.status_code == 400 and "not resolved yet" in str(res.data["incidents"])


def test_team_isolation(api, responder, outsider, resolved_incident, team_b):
    pm = create(api(responder), resolved_incident).data
    other = api(outsider)
    assert other.get("/api/v1/postmortems/").data["count"] == 0
    assert other.get(f"/api/v1/postmortems/{pm['id']}/").status_code == 404
    assert other.patch(f"/api/v1/postmortems/{pm['id']}/", {"title": "x"}, format="json").status_code == 404
    # Another team's incident id is answered like an unknown one.
    res = create(other, resolved_incident)
    assert res.status_code == 400 and "incidents" in res.data
    res = other.post("/api/v1/action-items/", {"postmortem": pm["id"], "title": "x"}, format="json")
    assert res.status_code == 400 and "postmortem" in res.data
    # Reviewers and owners must be visible team members.
    assert (
        api(responder)
        .post(f"/api/v1/postmortems/{pm['id']}/submit/", {"reviewers": ["otto"]}, format="json")
        .status_code
        == 400
    )


def test_action_items_crud_overdue_filter_and_validation(api, responder, resolved_incident):
    client = api(responder)
    pm = create(client, resolved_incident).data
    base = {"postmortem": pm["id"], "title": "Add canary", "owner": "rita", "kind": "prevent"}
    late = client.post(
        "/api/v1/action-items/", {**base, "due_date": str(date.today() - timedelta(days=2))}, format="json"
    )
    assert late.status_code == 201, late.data
    assert late.data["overdue"] is True
    client.post("/api/v1/action-items/", {**base, "title": "later", "due_date": "2999-01-01"}, format="json")
    bad_inputs = (
        ({"kind": "blame"}, "kind"),
        ({"ticket_url": "javascript:alert(1)"}, "ticket_url"),
        ({"due_date": "soon"}, "due_date"),
        ({"owner": "otto"}, "owner"),
        ({"title": ""}, "title"),
    )
    for bad, field in bad_inputs:
        res = client.post("/api/v1/action-items/", {**base, **bad}, format="json")
        assert res.status_code == 400 and field in res.data, (bad, res.data)
    assert ActionItem.objects.count() == 2
    overdue = client.get("/api/v1/action-items/?overdue=true").data["results"]
    assert [i["title"] for i in overdue] == ["Add canary"]
    assert client.get("/api/v1/action-items/?overdue=maybe").status_code == 400
    res = client.patch(f"/api/v1/action-items/{late.data['id']}/", {"status": "done"}, format="json")
    assert res.status_code == 200 and res.data["completed_at"] and res.data["overdue"] is False
    assert client.get("/api/v1/action-items/?overdue=true").data["count"] == 0


def test_templates_shared_read_only_team_templates_for_managers(api, responder, manager, team_a, outsider):
    shared = PostmortemTemplate.objects.get(is_default=True)
    assert {t["name"] for t in api(responder).get("/api/v1/postmortem-templates/").data["results"]} >= {
        "Blameless postmortem (full)",
        "Lightweight postmortem",
    }
    assert (
        api(manager)
        .patch(f"/api/v1/postmortem-templates/{shared.pk}/", {"name": "x"}, format="json")
        .status_code
        == 403
    )
    payload = {"team": team_a.pk, "name": "Payments PM", "body": "# {{ title }}"}
    assert api(responder).post("/api/v1/postmortem-templates/", payload, format="json").status_code == 403
    res = api(manager).post("/api/v1/postmortem-templates/", payload, format="json")
    assert res.status_code == 201
    assert api(outsider).get(f"/api/v1/postmortem-templates/{res.data['id']}/").status_code == 404


def test_link_problems_same_team_only_and_audited(
    api, responder, outsider, resolved_incident, team_a, team_b
):
    from incidents.problems import problem_create

    mine = problem_create(team=team_a, title="Pool exhaustion")
    theirs = problem_create(team=team_b, title="Other team's")
    client = api(responder)
    pm = create(client, resolved_incident).data
    url = f"/api/v1/postmortems/{pm['id']}/"
    res = client.patch(url, {"problems": [theirs.number], "title": "changed"}, format="json")
    assert res.status_code == 400 and "problems" in res.data
    assert Postmortem.objects.get().title == pm["title"]  # nothing half-written
    res = client.patch(url, {"problems": [mine.number]}, format="json")
    assert res.status_code == 200 and res.data["problems"] == [mine.number]
    assert client.get(url + "history/").data[-1]["message"] == f"Problems: {mine.ref}"
    assert list(mine.postmortems.all()) == [Postmortem.objects.get()]


def test_deleting_an_action_item_is_audited(api, responder, manager, resolved_incident):
    pm = create(api(responder), resolved_incident).data
    item = api(responder).post(
        "/api/v1/action-items/", {"postmortem": pm["id"], "title": "Add canary"}, format="json"
    )
    assert item.status_code == 201, item.data
    assert api(manager).delete(f"/api/v1/action-items/{item.data['id']}/").status_code == 204
    assert not ActionItem.objects.exists()
    change = Postmortem.objects.get(pk=pm["id"]).changes.get(action="action_item_removed")
    assert (change.actor, change.message) == (manager, "Action item removed: Add canary")
