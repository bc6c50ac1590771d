"""A real browser (Debian's chromium via Playwright) against a live server: the
postmortem workflow buttons and the timeline's hide checkbox work as a user clicks them
(they are separate forms, not nested in the page's change form)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.external  # the browser fixture (conftest.py) skips without chromium


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
