"""The console's index page: open incidents by severity, unacknowledged first, recent
activity, all scoped to the user's teams."""

from __future__ import annotations


def panel_of(response) -> dict:
    [panel] = [p for p in response.context["dashboard_panels"] if "open_list" in p]
    return panel


def test_dashboard_counts_order_and_activity(login, responder, service_a, service_b, raise_alert):
    acked_sev1 = raise_alert(service_a, "checkout down", severity="SEV1")
    sev3 = raise_alert(service_a, "slow reports", severity="SEV3")
    sev2 = raise_alert(service_a, "refunds delayed", severity="SEV2")
    resolved = raise_alert(service_a, "old thing", severity="SEV1")
    raise_alert(service_b, "search index corrupted", severity="SEV1")
    client = login(responder)
    client.post(f"/admin/incidents/incident/{acked_sev1.pk}/do/acknowledge/")
    client.post(f"/admin/incidents/incident/{resolved.pk}/do/resolve/")
    client.post(f"/admin/incidents/incident/{sev3.pk}/do/note/", {"text": "looking at the report queue"})

    response = client.get("/admin/")
    assert response.status_code == 200
    panel = panel_of(response)
    counts = {s["value"]: s["count"] for s in panel["severities"]}
    assert counts == {"SEV1": 1, "SEV2": 1, "SEV3": 1, "SEV4": 0}
    assert panel["unacked"] == 2 and panel["open_total"] == 3
    # Unacknowledged first (by severity), then acknowledged.
    assert panel["open_list"] == [sev2, sev3, acked_sev1]
    assert panel["resolved_24h"] == 1 and panel["triggered_24h"] == 4

    html = response.content.decode()
    assert 'data-testid="open-SEV1">1<' in html and 'data-testid="unacked-count">2<' in html
    assert "looking at the report queue" in html  # recent activity
    assert "Resolved by Rita" in html
    assert "search index corrupted" not in html  # another team's


def test_dashboard_for_superuser_sees_all_teams(login, admin_user, service_a, service_b, raise_alert):
    raise_alert(service_a, "a", severity="SEV1")
    raise_alert(service_b, "b", severity="SEV1")
    panel = panel_of(login(admin_user).get("/admin/"))
    assert panel["open_total"] == 2


def test_empty_dashboard(login, responder):
    response = login(responder).get("/admin/")
    assert response.status_code == 200
    assert "Nothing open" in response.content.decode()


def test_dashboard_query_count_does_not_grow(login, responder, service_a, raise_alert):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(responder)

    def add(first, last):
        for n in range(first, last):
            incident = raise_alert(service_a, f"disk {n}")
            client.post(f"/admin/incidents/incident/{incident.pk}/do/note/", {"text": f"note {n}"})

    def queries() -> int:
        client.get("/admin/")
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/admin/").status_code == 200
        return len(ctx.captured_queries)

    add(0, 3)
    few = queries()
    add(3, 30)
    assert queries() == few
