"""The public page in a real browser (Debian's chromium driven by Playwright) against a
live server, in the states a visitor meets: all operational, a partial outage with an
incident, maintenance; light and dark, desktop and phone. Screenshots go to var/."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

VAR = Path(__file__).resolve().parents[2] / "var"

pytestmark = pytest.mark.external  # the browser fixture (conftest.py) skips without chromium


@pytest.fixture
def demo_page(transactional_db, team_a):
    from django.utils import timezone

    from statuspage.models import Component, ComponentGroup, ComponentStatusChange, StatusPage

    page = StatusPage.objects.create(
        team=team_a,
        slug="acme",
        title="Acme Cloud",
        time_zone="Europe/Berlin",
        description="Live status of Acme's services.",
    )
    core = ComponentGroup.objects.create(page=page, name="Core platform", position=1, expanded=True)
    pay = ComponentGroup.objects.create(page=page, name="Payments", position=2)
    comps = {"Website": Component.objects.create(page=page, name="Website", position=0)}
    for i, name in enumerate(["API", "Dashboard"]):
        comps[name] = Component.objects.create(page=page, group=core, name=name, position=i)
    for i, name in enumerate(["Card processing", "Payouts"]):
        comps[name] = Component.objects.create(page=page, group=pay, name=name, position=i)
    now = timezone.now()
    Component.objects.filter(page=page).update(created_at=now - timedelta(days=120))
    # A past major outage on the API, 10 days ago, for 2 hours from 10:00 on the page's
    # clock, so it stays within one day of the page whatever time the test runs at.
    start = (now.astimezone(ZoneInfo("Europe/Berlin")) - timedelta(days=10)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    ComponentStatusChange.objects.create(
        component=comps["API"], old_status="operational", new_status="major_outage", changed_at=start
    )
    ComponentStatusChange.objects.create(
        component=comps["API"],
        old_status="major_outage",
        new_status="operational",
        changed_at=start + timedelta(hours=2),
    )
    return page, comps


def shot(page, name):
    VAR.mkdir(exist_ok=True)
    page.screenshot(path=str(VAR / f"statuspage-{name}.png"), full_page=True)


def test_visitor_sees_each_state(live_server, browser, demo_page):
    from django.utils import timezone

    from statuspage import services

    sp, comps = demo_page
    url = f"{live_server.url}/status/acme/"
    tab = browser.new_page(viewport={"width": 1100, "height": 900})

    # 1. All operational.
    tab.goto(url)
    assert tab.inner_text("section.banner").strip().endswith("All Systems Operational")
    assert tab.title() == "Acme Cloud"
    api_row = tab.locator(".comp", has_text="API").first
    assert "Operational" in api_row.inner_text()
    day = api_row.locator("rect.m")
    assert day.count() == 1
    assert "uptime (major outage 2 h)" in day.locator("title").text_content()
    assert "99.9" in api_row.inner_text()  # 2 h of 90 days
    # Collapsed group opens from the keyboard.
    payments = tab.locator("details.group", has_text="Payments")
    assert payments.get_attribute("open") is None
    payments.locator("summary").focus()
    tab.keyboard.press("Enter")
    assert payments.get_attribute("open") is not None
    shot(tab, "operational")

    # 2. Partial outage with an incident.
    incident = services.public_incident_create(
        page=sp,
        name="Card payments failing for some customers",
        impact="major",
        body="We are investigating failed card payments in the EU region.",
        component_statuses={comps["Card processing"].pk: "partial_outage"},
        at=timezone.now() - timedelta(minutes=40),
    )
    services.public_incident_post_update(
        incident=incident,
        status="identified",
        body="A faulty configuration change was identified; a **rollback** is in progress.",
    )
    tab.reload()
    assert "Partial System Outage" in tab.inner_text("section.banner")
    card = tab.locator("article.inc").first
    assert "Card payments failing" in card.inner_text()
    updates = card.locator(".upd li")
    assert updates.count() == 2 and updates.first.inner_text().startswith("Identified")
    assert tab.locator("details.group", has_text="Payments").get_attribute("open") is not None
    assert "Partial outage" in tab.locator(".comp", has_text="Card processing").inner_text()
    shot(tab, "incident")
    card.locator("h3 a").click()
    tab.wait_for_url(f"**/incidents/{incident.pk}/")
    assert "Affected components: Card processing" in tab.inner_text("main")

    # 3. Maintenance in progress (incident resolved).
    services.public_incident_post_update(incident=incident, status="resolved", body="Payments work again.")
    start = timezone.now()
    maintenance = services.maintenance_create(
        page=sp,
        name="Database upgrade",
        body="We upgrade the main database.",
        scheduled_for=start,
        scheduled_until=start + timedelta(hours=2),
        component_ids=[comps["API"].pk, comps["Dashboard"].pk],
    )
    services.maintenance_post_update(
        maintenance=maintenance, status="in_progress", body="The upgrade started."
    )
    tab.goto(url)
    assert "Service Under Maintenance" in tab.inner_text("section.banner")
    assert "Maintenance in progress" in tab.inner_text("main")
    assert "Under maintenance" in tab.locator(".comp", has_text="Dashboard").inner_text()
    # In the history now: under the day it started, on the page's time zone (40 minutes ago:
    # past midnight in Berlin, that is not the first day listed).
    assert tab.locator("section.month", has_text="Card payments failing").count() == 1
    shot(tab, "maintenance")

    # Dark mode and a phone: readable, no horizontal scrolling.
    dark = browser.new_page(viewport={"width": 390, "height": 844}, color_scheme="dark")
    dark.goto(url)
    background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)"
    assert dark.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # Phones show the last 30 days at a readable width.
    website = dark.locator(".comp", has_text="Website").first
    assert website.locator(".d30").is_visible() and not website.locator(".d90").is_visible()
    bar_width = website.locator("rect").last.bounding_box()["width"]
    assert bar_width > 5, bar_width
    shot(dark, "phone-dark")


def test_subscribe_form_in_the_browser(live_server, browser, demo_page):
    from statuspage.models import Subscriber

    tab = browser.new_page()
    tab.goto(f"{live_server.url}/status/acme/")
    tab.click("text=Subscribe to updates")
    tab.fill("#email", "not-an-address")
    tab.click("button[type=submit]")
    assert "Please enter a valid email address" in tab.inner_text("[role=alert]")
    tab.fill("#email", "visitor@example.org")
    tab.check("text=Payouts")
    tab.click("button[type=submit]")
    assert "Check your inbox" in tab.inner_text("main")
    sub = Subscriber.objects.get()
    assert sub.email == "visitor@example.org" and [c.name for c in sub.components.all()] == ["Payouts"]
    shot(tab, "subscribed")
