"""Markdown rendering: tables, fenced code, headings survive; hostile HTML does not."""

import pytest

from postmortems import services
from postmortems.rendering import postmortem_markdown, render_markdown


def test_tables_fenced_code_and_headings():
    html = render_markdown("## Impact\n\n| a | b |\n|:-|-:|\n| 1 | 2 |\n\n```python\nx = '<b>'\n```\n")
    assert "<h2>Impact</h2>" in html
    assert "<table>" in html and '<td style="text-align:left">1</td>' in html
    assert '<code class="language-python">' in html and "x = '&lt;b&gt;'" in html


@pytest.mark.parametrize(
    "payload, forbidden",
    [
        ("<script>alert(1)</script>", ["<script", "alert(1)"]),
        ('<img src="x.png" onerror="alert(1)">', ["onerror"]),
        ("[click](javascript:alert(1))", ["javascript:"]),
        ('<a href="JaVaScRiPt:alert(1)">x</a>', ["javascript:", "JaVaScRiPt"]),
        ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', ["data:"]),
        ('<iframe src="https://evil.example"></iframe>', ["<iframe"]),
        ('<p style="background:url(javascript:alert(1))">x</p>', ["style", "javascript"]),
        ('<svg><script>alert(1)</script></svg>', ["<svg", "<script"]),
        ("<div onmouseover=alert(1)>hover</div>", ["onmouseover"]),
        ('<form action="https://evil.example"><input name=x></form>', ["<form", "<input"]),
    ],
)
def test_xss_payloads_are_inert(payload, forbidden):
    html = render_markdown(f"Intro\n\n{payload}\n\nOutro")
    for needle in forbidden:
        assert needle.lower() not in html.lower()
    assert "Intro" in html and "Outro" in html


def test_safe_links_kept_with_rel():
    html = render_markdown("[runbook](https://wiki.example.com/rb) and <mailto:ops@example.com>")
    assert 'href="https://wiki.example.com/rb"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_markdown_export_has_body_factors_items_and_visible_timeline(resolved_incident, responder):
    pm = services.postmortem_create(incidents=[resolved_incident], user=responder)
    factors = "No canary\n- Alert too late"
    services.postmortem_update(postmortem=pm, user=responder, contributing_factors=factors)
    services.action_item_create(postmortem=pm, user=responder, title="Add | canary", owner=responder,
                                ticket_url="https://jira.example.com/OPS-1")
    note = pm.timeline.get(kind="note")
    services.postmortem_timeline_item_update(item=note, user=responder, hidden=True)
    ack = pm.timeline.get(kind="acknowledged")
    services.postmortem_timeline_item_update(item=ack, user=responder, annotation="4 min: good")
    text = postmortem_markdown(pm)
    assert text.startswith(f"# {pm.title}")
    assert "## Contributing factors\n\n- No canary\n- Alert too late" in text
    assert "| Add \\| canary | Prevent | Medium | rita |" in text
    assert "Rolled back deploy 42" not in text  # hidden
    assert "**Acknowledged by Rita (Rita)** | 4 min: good |" in text
