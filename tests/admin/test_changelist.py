"""The incidents changelist: what an incident manager scans, search, filters, and a
constant number of queries whatever the page size (no per-row or alert-table queries)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.admin import CappedCountPaginator
from incidents.admin_incident import IncidentAdmin
from incidents.models import Incident


def results(client, **params) -> list[Incident]:
    response = client.get("/admin/incidents/incident/", params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_columns(login, responder, service_a, raise_alert):
    incident = raise_alert(service_a, "checkout 500s", severity="SEV1")
    login(responder).post(f"/admin/incidents/incident/{incident.pk}/do/acknowledge/")
    html = login(responder).get("/admin/incidents/incident/").content.decode()
    for text in (incident.ref, "checkout 500s", "ir-sev1", "P1", "Acknowledged", "payments-api", "Rita"):
        assert text in html, text


@pytest.fixture
def big_page(monkeypatch):
    monkeypatch.setattr(admin.site._registry[Incident], "list_per_page", 200)


def _changelist_queries(client) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/admin/incidents/incident/")
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def test_query_count_is_constant_with_page_size(login, manager, service_a, raise_alert, big_page):
    client = login(manager)
    for n in range(10):
        incident = raise_alert(service_a, f"disk {n}", severity="SEV2")
        client.post(f"/admin/incidents/incident/{incident.pk}/do/acknowledge/")
    client.get("/admin/incidents/incident/")  # warm up session/content types
    ten = _changelist_queries(client)
    for n in range(10, 100):
        incident = raise_alert(service_a, f"disk {n}", severity="SEV1")
        client.post(f"/admin/incidents/incident/{incident.pk}/do/acknowledge/")
    hundred = _changelist_queries(client)
    assert len(results(client)) == 100
    assert len(hundred) == len(ten), "\n".join(hundred)
    assert len(hundred) <= 10
    # Alerts are never counted or joined: the column is Incident.alert_count.
    assert not any("incidents_alert" in sql for sql in hundred)


def test_search_by_number_title_and_alert_text(login, responder, service_a, raise_alert):
    first = raise_alert(service_a, "database down on db-1", key="db")
    raise_alert(service_a, "replica lag 30s", key="db")  # second alert grouped into `first`
    other = raise_alert(service_a, "queue backlog growing", key="queue")
    client = login(responder)
    assert results(client, q=first.ref) == [first]
    assert results(client, q=first.ref.lower().replace("-", "")) == [first]
    assert results(client, q=str(other.number)) == [other]
    assert results(client, q="BACKLOG") == [other]
    assert results(client, q="replica lag") == [first]  # only in an alert, not the title
    assert results(client, q="INC-999999") == []
    assert results(client, q="nothing like this") == []


def test_filters(login, responder, service_a, raise_alert):
    from incidents.models import Service

    other_service = Service.objects.create(team=service_a.team, name="ledger")
    sev1 = raise_alert(service_a, "a", severity="SEV1")
    sev3 = raise_alert(other_service, "b", severity="SEV3")
    client = login(responder)
    client.post(f"/admin/incidents/incident/{sev3.pk}/do/resolve/")
    assert results(client, severity__exact="SEV1") == [sev1]
    assert results(client, status__exact="resolved") == [sev3]
    assert results(client, status__in="triggered,acknowledged") == [sev1]
    assert results(client, service__id__exact=other_service.pk) == [sev3]
    assert results(client, priority__exact="P1") == [sev1]
    assert set(results(client, team__id__exact=service_a.team_id)) == {sev1, sev3}
    assert len(results(client, triggered_at__gte="2000-01-01 00:00:00+00:00")) == 2


def test_bad_filter_value_does_not_500(login, responder, service_a, raise_alert):
    raise_alert(service_a, "a")
    response = login(responder).get("/admin/incidents/incident/", {"service__id__exact": "abc"})
    assert response.status_code in (200, 302)


def test_capped_count_paginator(login, admin_user, service_a, raise_alert, monkeypatch):
    from incidents.models import Alert

    monkeypatch.setattr(CappedCountPaginator, "CAP", 3)
    monkeypatch.setattr(admin.site._registry[Alert], "list_per_page", 2)
    for n in range(6):
        raise_alert(service_a, f"alert {n}")
    client = login(admin_user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/admin/incidents/alert/")
    cl = response.context["cl"]
    assert cl.result_count == 4  # CAP + 1 means "more than 3", found without counting the table
    assert [a.summary for a in cl.result_list] == ["alert 5", "alert 4"]
    assert "more than 3 alerts</span>" in response.content.decode()
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 4" in sql for sql in counts), counts
    response = client.get("/admin/incidents/alert/", {"p": 2})
    assert [a.summary for a in response.context["cl"].result_list] == ["alert 3", "alert 2"]


def test_alert_text_search_is_bounded_to_recent_alerts(login, responder, service_a, make_integration):
    from datetime import timedelta

    from django.utils import timezone

    from incidents.events import AlertEvent
    from incidents.services import alert_ingest

    integration = make_integration(service_a)
    old_at = timezone.now() - timedelta(days=40)
    old = alert_ingest(integration=integration, received_at=old_at,
                       event=AlertEvent(summary="kafka broker down", dedup_key="k")).incident
    alert_ingest(integration=integration, received_at=old_at,
                 event=AlertEvent(summary="zookeeper session expired", dedup_key="k"))
    client = login(responder)
    assert results(client, q="kafka") == [old]  # the title is always searched
    assert results(client, q="zookeeper") == []  # alert text older than 30 days is not
    alert_ingest(integration=integration, event=AlertEvent(summary="zookeeper again", dedup_key="k"))
    assert results(client, q="zookeeper") == [old]


def test_alert_changelist_search_looks_at_recent_alerts_unless_a_date_filter_says(
        login, responder, service_a, make_integration):
    from datetime import timedelta

    from django.utils import timezone

    from incidents.events import AlertEvent
    from incidents.services import alert_ingest

    integration = make_integration(service_a)
    old_at = timezone.now() - timedelta(days=40)
    old = alert_ingest(integration=integration, received_at=old_at,
                       event=AlertEvent(summary="zookeeper session expired", dedup_key="zk")).alert
    new = alert_ingest(integration=integration,
                       event=AlertEvent(summary="zookeeper again", dedup_key="zk2")).alert
    client = login(responder)

    def found(**params):
        response = client.get("/admin/incidents/alert/", params)
        assert response.status_code == 200
        return list(response.context["cl"].result_list)

    assert found(q="zookeeper") == [new]
    assert found(q="zk") == []  # exact dedup key: "zk" is the old one's
    assert found(q="zk2") == [new]
    since = (timezone.now() - timedelta(days=60)).strftime("%Y-%m-%d 00:00:00+00:00")
    assert found(q="zookeeper", received_at__gte=since) == [new, old]
    assert found(q="zk", received_at__gte=since) == [old]
    assert found(q=f"INC-{old.incident.number}") == [old]  # by incident: not bounded by date


def test_alert_text_search_lists_the_newest_incidents_up_to_its_cap(login, responder, service_a, raise_alert,
                                                                    monkeypatch):
    from incidents import admin_incident

    monkeypatch.setattr(admin_incident, "ALERT_SEARCH_INCIDENTS", 2)
    titled = raise_alert(service_a, "kernel panic storm")  # the title is searched whatever the cap
    found = []
    for n in range(3):
        incident = raise_alert(service_a, f"node {n} unreachable", key=f"n{n}")
        raise_alert(service_a, f"kernel panic on node {n}", key=f"n{n}")  # grouped: alert text only
        found.append(incident)
    client = login(responder)
    assert results(client, q="kernel panic") == [found[2], found[1], titled]


def test_alert_text_search_cap_is_spent_on_the_users_teams(login, responder, service_a, service_b,
                                                           raise_alert, monkeypatch):
    """With the cap at one, another team's newer match must not take the only place."""
    from incidents import admin_incident

    monkeypatch.setattr(admin_incident, "ALERT_SEARCH_INCIDENTS", 1)
    mine = raise_alert(service_a, "api errors", key="a")
    raise_alert(service_a, "etcd leader lost", key="a")
    raise_alert(service_b, "search errors", key="b")
    raise_alert(service_b, "etcd leader lost", key="b")
    assert results(login(responder), q="etcd leader") == [mine]


def test_search_terms_with_like_wildcards_match_literally(login, responder, service_a, raise_alert):
    percent = raise_alert(service_a, "disk 100% full", key="d")
    raise_alert(service_a, "disk 1000 inodes left", key="e")
    underscore = raise_alert(service_a, "api", key="f")
    raise_alert(service_a, "job_runner stalled", key="f")  # alert text only
    raise_alert(service_a, "jobXrunner stalled", key="g")
    client = login(responder)
    assert results(client, q="100%") == [percent]
    assert results(client, q="job_runner") == [underscore]


def test_search_counts_fewer_matches_than_the_plain_list(login, responder, service_a, raise_alert,
                                                          monkeypatch):
    from incidents import admin_incident

    monkeypatch.setattr(admin_incident, "SEARCH_COUNT_CAP", 2)
    monkeypatch.setattr(CappedCountPaginator, "CAP", 10)
    for n in range(5):
        raise_alert(service_a, f"pod {n} crash looping")
    client = login(responder)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/admin/incidents/incident/", {"q": "crash loop"})
    assert response.context["cl"].result_count == 3  # "more than 2"
    html = response.content.decode()
    assert "More than 2 incidents match" in html
    paginator_line = html[html.index('<p class="paginator">'):].split("</p>")[0]
    assert "more than 2 incidents" in paginator_line and "3 incidents" not in paginator_line
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 3" in sql for sql in counts), counts
    response = client.get("/admin/incidents/incident/")
    assert response.context["cl"].result_count == 5
    assert b'data-testid="count-capped' not in response.content and b"5 incidents" in response.content


def test_select_all_is_refused_when_the_count_is_capped(login, responder, service_a, raise_alert,
                                                        monkeypatch):
    """"Select all N" acts on every match; with a capped count N is not the number of rows."""
    from incidents import admin_incident

    monkeypatch.setattr(admin_incident, "SEARCH_COUNT_CAP", 2)
    crashing = [raise_alert(service_a, f"pod {n} crash looping") for n in range(4)]
    other = raise_alert(service_a, "disk full")
    monkeypatch.setattr(IncidentAdmin, "list_per_page", 2)
    client = login(responder)
    # The page does not offer it: no "Select all 3 incidents" for "more than 2".
    html = client.get("/admin/incidents/incident/", {"q": "crash loop"}).content.decode()
    assert "Select all 3" not in html and "Click here to select the objects across all pages" not in html
    assert 'data-testid="select-across-capped"' in html
    html = client.get("/admin/incidents/incident/").content.decode()  # 5 rows, not capped
    assert "Select all 5 incidents" in html and "select-across-capped" not in html
    post = {"action": "resolve_selected", "select_across": "1", "index": "0",
            "_selected_action": [crashing[0].pk]}
    response = client.post("/admin/incidents/incident/?q=crash+loop", post, follow=True)
    assert "More than 2 rows match" in response.content.decode()
    assert not Incident.objects.filter(status="resolved").exists()
    # Not capped: "all" is what it says.
    monkeypatch.setattr(admin_incident, "SEARCH_COUNT_CAP", 10)
    response = client.post("/admin/incidents/incident/?q=crash+loop", post, follow=True)
    assert set(Incident.objects.filter(status="resolved")) == set(crashing)
    assert Incident.objects.get(pk=other.pk).status == "triggered"


def test_row_checkbox_is_djangos_markup(service_a, raise_alert):
    """TeamScopedAdmin writes the action checkbox itself (speed); it must stay Django's."""
    incident = raise_alert(service_a, 'quotes " and <b>tags</b> & more')
    model_admin = admin.site._registry[Incident]
    assert model_admin.action_checkbox(incident) == admin.ModelAdmin.action_checkbox(model_admin, incident)
    service_admin = admin.site._registry[type(service_a)]
    django_markup = admin.ModelAdmin.action_checkbox(service_admin, service_a)
    assert service_admin.action_checkbox(service_a) == django_markup


def _count(client, url) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_alert_timeline_and_incident_pages_do_not_grow_with_rows(login, responder, service_a, raise_alert):
    client = login(responder)
    incident = raise_alert(service_a, "flapping", key="flap")
    urls = ["/admin/incidents/alert/", "/admin/incidents/timelineentry/",
            f"/admin/incidents/incident/{incident.pk}/change/", "/admin/"]
    for n in range(3):
        raise_alert(service_a, f"flapping {n}", key="flap")
    few = [_count(client, url) for url in urls]
    for n in range(3, 40):
        raise_alert(service_a, f"flapping {n}", key="flap")
        raise_alert(service_a, f"other {n}")
    assert [_count(client, url) for url in urls] == few
