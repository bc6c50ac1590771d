"""A real browser (Debian's chromium via Playwright) against a live server: the
postmortem workflow buttons and the timeline's hide checkbox work as a user clicks them
(they are separate forms, not nested in the page's change form)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.external,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                       reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
]


@pytest.fixture
def browser(monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the [test] extra)")
    # Playwright's sync API runs an event loop in this thread (Django's async-safety check).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )
        try:
            yield browser
        finally:
            browser.close()


def test_review_and_publish_from_the_browser(live_server, browser, transactional_db, responder, secondary,
                                             resolved_incident):
    from postmortems import services
    from postmortems.models import Postmortem

    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", responder.username)
    page.fill("#id_password", "pw-rita")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/postmortems/postmortem/{pm.pk}/change/")
    # Hide a timeline entry and edit the body with the page's own Save button.
    note_row = page.locator("tr", has_text="Rolled back deploy 42")
    note_row.locator("input[type=checkbox][name$='-hidden']").check()
    page.fill("#id_body", "# Checkout errors\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    page.click("input[name=_continue]")
    assert page.locator(".messagelist").inner_text().count("was changed successfully") == 1
    pm.refresh_from_db()
    assert pm.body.startswith("# Checkout errors") and pm.timeline.get(kind="note").hidden
    # The workflow buttons are their own forms.
    page.locator("#pm-workflow label", has_text="Sam").click()
    page.click("text=Submit for review")
    assert "Submitted for review." in page.locator(".messagelist").inner_text()
    assert Postmortem.objects.get().status == "in_review"
    page.goto(f"{live_server.url}/admin/postmortems/postmortem/{pm.pk}/print/")
    assert page.locator("#pm-body table td").first.inner_text() == "1"
    assert "Rolled back deploy 42" not in page.content()
