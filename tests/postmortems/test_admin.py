"""Console: start, edit (audited), workflow buttons, print/export, incident actions,
dashboard lists, problems; and team isolation on every page."""

from datetime import date, timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client

from incidents.models import Problem
from postmortems import services
from postmortems.models import ActionItem, Postmortem


@pytest.fixture
def as_user():
    def login(user):
        client = Client()
        client.force_login(user)
        return client

    return login


def change_form_data(response) -> dict:
    """What a browser would post back unchanged: the main form and every inline."""
    data: dict = {}

    def add(form, prefix=""):
        for name in form.fields:
            value = form[name].value()
            key = f"{prefix}{name}"
            if value is None or value is False:
                continue
            if isinstance(value, list | tuple):
                data[key] = [str(getattr(v, "pk", v)) for v in value]
            else:
                data[key] = getattr(value, "pk", value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name in formset.management_form.fields:
            data[f"{formset.prefix}-{name}"] = formset.management_form[name].value()
        for form in formset.forms:
            add(form, f"{form.prefix}-")
    return data


def test_start_from_add_view_and_refusal(as_user, responder, resolved_incident, make_resolved):
    client = as_user(responder)
    page = client.get(f"/admin/postmortems/postmortem/add/?incidents={resolved_incident.pk}")
    assert page.status_code == 200 and resolved_incident.ref in page.content.decode()
    open_one = make_resolved(resolve=False)
    res = client.post("/admin/postmortems/postmortem/add/", {"incidents": [open_one.pk]})
    assert res.status_code == 200 and not Postmortem.objects.exists()  # not offered: only resolved ones
    res = client.post("/admin/postmortems/postmortem/add/", {"incidents": [resolved_incident.pk]})
    pm = Postmortem.objects.get()
    assert res.status_code == 302 and res["Location"].endswith(f"/postmortem/{pm.pk}/change/")


def test_edit_through_change_form_is_audited_and_inlines_go_through_services(
    as_user, responder, resolved_incident, team_a
):
    problem = Problem.objects.create(number=7, team=team_a, title="Pool exhaustion")
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    client = as_user(responder)
    url = f"/admin/postmortems/postmortem/{pm.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    data = change_form_data(page)
    data["body"] = "# New body"
    data["action_items-0-title"] = "Add a canary stage"
    data["action_items-0-owner"] = responder.pk
    note_index = next(i for i, item in enumerate(pm.timeline.all()) if item.kind == "note")
    data[f"timeline-{note_index}-hidden"] = "on"
    data["problems"] = [problem.pk]
    res = client.post(url, data)
    assert res.status_code == 302, res.context["adminform"].form.errors if res.context else res
    pm.refresh_from_db()
    assert pm.body == "# New body"
    assert ActionItem.objects.get().title == "Add a canary stage"
    assert pm.timeline.get(kind="note").hidden is True
    assert {"edited", "action_item_added", "timeline_item", "problems"} <= set(
        pm.changes.values_list("action", flat=True)
    )
    assert list(pm.problems.all()) == [problem]


def test_workflow_buttons(as_user, responder, secondary, resolved_incident):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    client = as_user(responder)
    do = f"/admin/postmortems/postmortem/{pm.pk}/do/"
    assert client.get(do + "submit/").status_code == 405
    client.post(do + "submit/", {})  # no reviewer picked: refused with a message
    assert Postmortem.objects.get().status == "draft"
    client.post(do + "submit/", {"reviewers": [secondary.pk]})
    assert Postmortem.objects.get().status == "in_review"
    res = client.post(do + "publish/", follow=True)
    assert "Only a named reviewer" in res.content.decode()
    as_user(secondary).post(do + "publish/")
    assert Postmortem.objects.get().status == "published"
    page = client.get(f"/admin/postmortems/postmortem/{pm.pk}/change/")
    assert page.status_code == 200 and "The document is frozen" in page.content.decode()


def test_workflow_forms_are_not_nested_in_the_change_form(as_user, responder, resolved_incident):
    # Browsers ignore a <form> inside another one: the buttons would submit the page's form.
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    html = as_user(responder).get(f"/admin/postmortems/postmortem/{pm.pk}/change/").content.decode()
    main = html.index('id="postmortem_form"')
    assert html.index('id="pm-workflow"') < main
    assert html.index("/do/submit/") < main and html.index("/do/refresh/") < main
    assert html.count("<form", main, html.index("</form>", main)) == 0


def test_print_view_and_markdown_export_keep_xss_inert(as_user, responder, resolved_incident):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    services.postmortem_update(
        postmortem=pm,
        user=responder,
        body='# Title\n\n<img src=x onerror="alert(1)"><script>alert(2)</script>\n\n[x](javascript:alert(3))',
        contributing_factors="<b onclick=alert(4)>factor</b>",
    )
    client = as_user(responder)
    html = client.get(f"/admin/postmortems/postmortem/{pm.pk}/print/").content.decode()
    assert "<h1>Title</h1>" in html
    for needle in ("onerror", "<script>alert(2)", "javascript:alert(3)", "<b onclick"):
        assert needle not in html
    assert "@media print" in html and "pm-timeline" in html
    md = client.get(f"/admin/postmortems/postmortem/{pm.pk}/markdown/")
    assert md["Content-Disposition"] == f'attachment; filename="postmortem-{pm.pk}.md"'


def test_team_isolation_on_every_page(as_user, responder, outsider, resolved_incident):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    item = services.action_item_create(postmortem=pm, user=responder, title="x")
    client = as_user(outsider)
    base = f"/admin/postmortems/postmortem/{pm.pk}/"
    for url in (base + "print/", base + "markdown/"):
        assert client.get(url).status_code == 404
    assert client.post(base + "do/refresh/").status_code == 404
    assert client.get(base + "change/").status_code == 302  # admin: "doesn't exist" redirect
    assert client.get(f"/admin/postmortems/actionitem/{item.pk}/change/").status_code == 302
    listing = client.get("/admin/postmortems/postmortem/").content.decode()
    assert pm.title not in listing
    assert resolved_incident.ref not in client.get("/admin/").content.decode()


def test_incident_list_actions_start_postmortem_and_link_to_problem(
    as_user, responder, team_a, resolved_incident
):
    client = as_user(responder)
    url = "/admin/incidents/incident/"
    res = client.post(url, {"action": "start_postmortem", ACTION_CHECKBOX_NAME: [resolved_incident.pk]})
    pm = Postmortem.objects.get()
    assert res.status_code == 302 and res["Location"].endswith(f"/postmortem/{pm.pk}/change/")
    problem = Problem.objects.create(number=1, team=team_a, title="Flaky DNS")
    page = client.post(url, {"action": "link_to_problem", ACTION_CHECKBOX_NAME: [resolved_incident.pk]})
    assert page.status_code == 200 and "PRB-1 Flaky DNS" in page.content.decode()
    client.post(
        url,
        {"action": "link_to_problem", ACTION_CHECKBOX_NAME: [resolved_incident.pk], "problem": problem.pk},
    )
    assert list(problem.incidents.all()) == [resolved_incident]


def test_dashboard_lists_owing_incidents_and_overdue_items(as_user, responder, outsider, make_resolved):
    owing = make_resolved(severity="SEV1", summary="Owes a postmortem")
    covered = make_resolved(severity="SEV2", summary="Has one")
    pm = services.postmortem_create(incidents=[covered], user=responder)
    services.action_item_create(
        postmortem=pm, user=responder, title="Late item", due_date=date.today() - timedelta(days=3)
    )
    page = as_user(responder).get("/admin/").content.decode()
    panel = page[page.index('id="postmortems-panel"') :]
    owing_list = panel[: panel.index('id="overdue-action-items"')]
    assert owing.ref in owing_list and covered.ref not in owing_list
    assert "Late item" in panel
    other = as_user(outsider).get("/admin/").content.decode()
    assert owing.ref not in other and "Late item" not in other


def test_problem_admin_validates_and_numbers(as_user, responder, team_a, service_a):
    client = as_user(responder)
    base = {
        "team": team_a.pk,
        "title": "Pool exhaustion",
        "status": "known_error",
        "impact": "",
        "root_cause": "",
        "workaround": "",
        "match_service": service_a.pk,
        "match_keywords": "pool",
        "match_dedup_key": "",
    }
    res = client.post("/admin/incidents/problem/add/", base)
    assert res.status_code == 200 and "workaround" in res.context["adminform"].form.errors
    res = client.post("/admin/incidents/problem/add/", {**base, "workaround": "restart"})
    assert res.status_code == 302
    assert Problem.objects.get().ref == "PRB-1"
    search = client.get("/admin/incidents/problem/?q=restart").content.decode()
    assert "PRB-1 Pool exhaustion" in search


def test_problems_and_templates_team_isolation_in_console(as_user, responder, outsider, team_a, team_b):
    from postmortems.models import PostmortemTemplate

    problem = Problem.objects.create(number=1, team=team_a, title="Payments only")
    ours = PostmortemTemplate.objects.create(team=team_a, name="Payments template", body="x")
    shared = PostmortemTemplate.objects.get(is_default=True)
    other = as_user(outsider)
    assert "Payments only" not in other.get("/admin/incidents/problem/").content.decode()
    assert other.get(f"/admin/incidents/problem/{problem.pk}/change/").status_code == 302
    listing = other.get("/admin/postmortems/postmortemtemplate/").content.decode()
    assert "Payments template" not in listing and shared.name in listing
    assert other.get(f"/admin/postmortems/postmortemtemplate/{ours.pk}/change/").status_code == 302
    # Shared templates are read-only for team members (superusers edit them).
    res = other.post(f"/admin/postmortems/postmortemtemplate/{shared.pk}/change/", {"name": "hijacked"})
    assert res.status_code == 403
    assert PostmortemTemplate.objects.get(pk=shared.pk).name != "hijacked"


def test_my_action_items_filter(as_user, responder, secondary, resolved_incident):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    services.action_item_create(postmortem=pm, user=responder, title="Rita's item", owner=responder)
    services.action_item_create(postmortem=pm, user=responder, title="Sam's item", owner=secondary)
    html = as_user(responder).get("/admin/postmortems/actionitem/?mine=yes").content.decode()
    assert "Rita&#x27;s item" in html and "Sam&#x27;s item" not in html


def test_change_page_queries_do_not_grow_with_action_items(as_user, responder, secondary, resolved_incident):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = as_user(responder)
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    url = f"/admin/postmortems/postmortem/{pm.pk}/change/"

    def render() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        return len(queries), response.content.decode()

    services.action_item_create(postmortem=pm, user=responder, title="first", owner=secondary)
    before, _html = render()
    for i in range(5):
        services.action_item_create(postmortem=pm, user=responder, title=f"more {i}", owner=responder)
    after, html = render()
    assert after <= before
    # Each row still shows its own owner (the postmortem's own owner picker is the sixth
    # selected responder), and the other people of the team are offered in every row.
    assert html.count(f'<option value="{secondary.pk}" selected>') == 1
    assert html.count(f'<option value="{responder.pk}" selected>') == 6
    assert html.count(f'<option value="{secondary.pk}">') >= 6


def test_deleting_an_action_item_in_the_console_is_audited(as_user, responder, manager, resolved_incident):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    item = services.action_item_create(postmortem=pm, user=responder, title="Add canary")
    client = as_user(manager)
    response = client.post(f"/admin/postmortems/actionitem/{item.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not ActionItem.objects.exists()
    change = pm.changes.get(action="action_item_removed")
    assert (change.actor, change.message) == (manager, "Action item removed: Add canary")


def test_action_item_due_filters(as_user, responder, resolved_incident):
    from django.utils import timezone

    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    today = timezone.localdate()
    for title, days, status in [
        ("late-open", -2, "open"),
        ("late-done", -2, "done"),
        ("due-today", 0, "in_progress"),
        ("due-in-7", 7, "open"),
        ("due-in-8", 8, "open"),
    ]:
        services.action_item_create(
            postmortem=pm, user=responder, title=title, due_date=today + timedelta(days=days), status=status
        )
    client = as_user(responder)

    def listed(due: str) -> set[str]:
        html = client.get(f"/admin/postmortems/actionitem/?due={due}").content.decode()
        return {t for t in ("late-open", "late-done", "due-today", "due-in-7", "due-in-8") if t in html}

    assert listed("overdue") == {"late-open"}
    assert listed("week") == {"due-today", "due-in-7"}
