"""ircore.email, the one render+send helper, exercised with the status page's templates."""

from django.core import mail

from ircore.email import email_render, email_send


class Page:
    title = "Acme\nStatus & Co"
    slug = "acme"


def test_render_text_and_html_and_one_line_subject():
    rendered = email_render(
        name="statuspage-confirm",
        context={
            "page": Page(),
            "confirm_url": "http://x/confirm/abc/",
            "page_url": "http://x/",
            "components": [],
        },
    )
    # A newline in a value cannot break the header; text parts are not HTML-escaped.
    assert rendered.subject == "Confirm your subscription to Acme Status & Co status updates"
    assert "http://x/confirm/abc/" in rendered.text and "&amp;" not in rendered.text
    assert rendered.html is not None and "Acme\nStatus &amp; Co" in rendered.html


def test_send_with_headers_and_alternative(db):
    message = email_send(
        name="statuspage-confirm",
        to=["ann@example.com"],
        headers={"List-Id": "acme"},
        context={"page": Page(), "confirm_url": "u", "page_url": "p", "components": []},
    )
    (sent,) = mail.outbox
    assert sent is message or sent.subject == message.subject
    assert sent.extra_headers["List-Id"] == "acme"
    assert sent.alternatives[0][1] == "text/html"
