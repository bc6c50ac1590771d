"""A real browser (Debian's chromium driven by Playwright) against a live server: log
in, read the dashboard, open an incident, click Acknowledge, see status and timeline."""

from __future__ import annotations

from pathlib import Path

import pytest

VAR = Path(__file__).resolve().parents[2] / "var"

pytestmark = pytest.mark.external  # the browser fixture (conftest.py) skips without chromium


def admin_login(browser, live_server, user, password: str, next_path: str):
    """A new page, logged in to the console through its form, at ``next_path``."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next={next_path}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    return page


def test_acknowledge_from_the_browser(live_server, browser, transactional_db, responder, service_a,
                                      service_b, make_integration):
    from incidents.events import AlertEvent
    from incidents.models import Incident
    from incidents.services import alert_ingest

    integration = make_integration(service_a)
    incident = alert_ingest(integration=integration, event=AlertEvent(
        summary="Checkout API error rate above 5%", severity="SEV1", source="prometheus",
        dedup_key="checkout-5xx")).incident
    alert_ingest(integration=integration, event=AlertEvent(
        summary="Ledger replication lag 45s", severity="SEV3", source="prometheus", dedup_key="lag"))
    alert_ingest(integration=make_integration(service_b), event=AlertEvent(
        summary="Other team's secret incident", severity="SEV1", dedup_key="b"))

    page = admin_login(browser, live_server, responder, "pw-rita", "/admin/")
    page.wait_for_selector("#open-incidents")
    assert page.inner_text('[data-testid="open-SEV1"]') == "1"
    assert page.inner_text('[data-testid="unacked-count"]') == "2"
    assert "Other team's secret incident" not in page.content()
    VAR.mkdir(exist_ok=True)
    page.screenshot(path=str(VAR / "console-dashboard.png"), full_page=True)

    page.click(f"text={incident.ref}")
    page.wait_for_selector("#incident-actions")
    assert page.inner_text('[data-testid="status"]') == "Triggered"
    page.click("button:has-text('Acknowledge')")
    page.wait_for_selector(".messagelist")
    assert f"{incident.ref} acknowledged." in page.inner_text(".messagelist")
    assert page.inner_text('[data-testid="status"]') == "Acknowledged"
    assert "Acknowledged by Rita" in page.inner_text("#timeline")

    page.fill("textarea[name=text]", "Rolled back release 2026.11.3")
    page.click("#timeline button:has-text('Add note')")
    page.wait_for_selector("text=Rolled back release 2026.11.3")
    page.screenshot(path=str(VAR / "console-incident.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/incidents/incident/")
    page.wait_for_selector("#result_list")
    assert "Checkout API error rate above 5%" in page.inner_text("#result_list")
    page.screenshot(path=str(VAR / "console-incidents.png"), full_page=True)

    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED and incident.acknowledged_by == responder
    # Other apps may add their own entries (e.g. on-call warnings); ours come in this order.
    kinds = list(incident.timeline.order_by("created_at", "id").values_list("kind", flat=True))
    assert [k for k in kinds if k in ("triggered", "acknowledged", "note")] == [
        "triggered", "acknowledged", "note"]


def test_manager_sets_up_triage_and_tests_an_integration(live_server, browser, transactional_db, manager,
                                                         service_a, make_integration):
    from incidents.models import Alert, TriageRule

    integration = make_integration(service_a)
    page = admin_login(browser, live_server, manager, "pw-maya", "/admin/incidents/triagerule/")
    page.click("text=Load rule templates")
    page.wait_for_selector("#tpl-database-down")
    page.click("input[type=submit][value='Create rules']")
    page.wait_for_selector(".messagelist")
    assert "Created 5 rule(s)" in page.inner_text(".messagelist")
    assert "Database down is SEV1 / P1" in page.inner_text("#result_list")
    VAR.mkdir(exist_ok=True)
    page.screenshot(path=str(VAR / "console-triage-rules.png"), full_page=True)
    assert TriageRule.objects.filter(team=service_a.team).count() == 5

    page.goto(f"{live_server.url}/admin/incidents/integration/{integration.pk}/change/")
    assert integration.url in page.inner_text("body")
    page.click("button:has-text('Send test alert')")
    page.wait_for_selector(".messagelist")
    assert "Test alert sent" in page.inner_text(".messagelist")
    page.screenshot(path=str(VAR / "console-integration.png"), full_page=True)
    alert = Alert.objects.get(integration=integration)
    assert alert.outcome == "opened"


def test_select_all_on_a_capped_search_acts_on_the_page_only(live_server, browser, transactional_db,
                                                             responder, service_a, make_integration,
                                                             monkeypatch):
    """With "more than N" matches the action bar offers no "Select all N" (N would not be the
    number of rows); the header checkbox selects the page, and the action runs on it."""
    from incidents import admin_incident
    from incidents.events import AlertEvent
    from incidents.models import Incident
    from incidents.services import alert_ingest

    monkeypatch.setattr(admin_incident, "SEARCH_COUNT_CAP", 2)
    monkeypatch.setattr(admin_incident.IncidentAdmin, "list_per_page", 2)
    integration = make_integration(service_a)
    for n in range(4):
        alert_ingest(integration=integration, event=AlertEvent(
            summary=f"pod {n} crash looping", severity="SEV3", dedup_key=f"pod-{n}"))
    page = admin_login(browser, live_server, responder, "pw-rita",
                       "/admin/incidents/incident/%3Fq%3Dcrash%2Bloop")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.wait_for_selector("#result_list")
    page.reload()  # the changelist's scripts, watched from their first line
    page.wait_for_selector("#result_list")
    page.check("#action-toggle")
    assert page.inner_text(".action-counter") == "2 of 2 selected"
    assert not page.locator(".actions .question").count()
    assert "this page only" in page.inner_text(".actions")
    page.select_option("select[name=action]", "resolve_selected")
    page.click(".actions button[type=submit]")
    page.wait_for_selector(".messagelist")
    assert Incident.objects.filter(status="resolved").count() == 2
    assert errors == []
