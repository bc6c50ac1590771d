"""Atom and RSS feeds of a page's incidents and maintenance (published only)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import feedgenerator
from django.views.decorators.http import require_http_methods

from statuspage.models import StatusPage
from statuspage.selectors import published_incidents, published_maintenances
from statuspage.views import cached_response, page_for, refusing

FEED_ITEMS = 50


def feed_build(page: StatusPage, kind: str) -> str:
    cls = feedgenerator.Atom1Feed if kind == "atom" else feedgenerator.Rss201rev2Feed
    feed = cls(
        title=f"{page.title} status",
        link=page.public_url,
        description=f"Incidents and maintenance for {page.title}",
        feed_url=f"{page.public_url}feed.{kind}",
        language="en",
    )
    items = list(published_incidents(page)[:FEED_ITEMS]) + list(
        published_maintenances(page).order_by("-scheduled_for")[:FEED_ITEMS]
    )
    items.sort(key=lambda i: i.updated_at, reverse=True)
    for item in items[:FEED_ITEMS]:
        updates = list(item.updates.all())
        body = "".join(
            f"<p><strong>{u.status_label}</strong> ({u.created_at.astimezone(page.tz):%b %d, %H:%M %Z})</p>"
            f"{u.body_html}"
            for u in updates
        )
        url = f"{settings.PUBLIC_URL}{item.get_absolute_url()}"
        feed.add_item(
            title=item.name,
            link=url,
            description=body,
            unique_id=url,
            unique_id_is_permalink=True,
            pubdate=getattr(item, "started_at", None) or item.created_at,
            updateddate=item.updated_at,
        )
    return feed.writeString("utf-8")


def _feed_view(kind: str):
    content_type = (
        "application/atom+xml; charset=utf-8" if kind == "atom" else "application/rss+xml; charset=utf-8"
    )

    @refusing
    @require_http_methods(["GET", "HEAD"])
    def view(request: HttpRequest, slug: str) -> HttpResponse:
        page = page_for(request, slug)
        return cached_response(request, page, f"feed-{kind}", lambda: feed_build(page, kind), content_type)

    view.__name__ = f"feed_{kind}"
    return view


atom_view = _feed_view("atom")
rss_view = _feed_view("rss")
