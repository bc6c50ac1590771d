"""The public status page (server-rendered, no JavaScript), its incident and
maintenance pages, history, and the subscribe / confirm / unsubscribe flow.

Pages are cached per page change (StatusPage.changed_at), per day in the page's time
zone (the uptime bars move at midnight) and per variant; the same key gives the ETag,
so a repeat visitor gets a 304 without any rendering.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from datetime import datetime, time

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ircore import permissions
from statuspage import display
from statuspage.models import Maintenance, PublicIncident, StatusPage
from statuspage.selectors import (
    UPTIME_DAYS,
    incident_history,
    page_can_view,
    page_overview,
    published_incidents,
    published_maintenances,
    recent_history,
)
from statuspage.services import page_row_key
from statuspage.subscribers import (
    SubscriberTokenError,
    subscriber_confirm,
    subscriber_subscribe_email,
    subscriber_unsubscribe,
)
from statuspage.uptime import UPTIME_RULE

CACHE_SECONDS = 300
PAGE_ROW_SECONDS = 2
SUBSCRIBE_LIMIT = (5, 600)  # attempts per client address per window (seconds)


class _Refused(Exception):
    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def page_cached(slug: str) -> StatusPage | None:
    """The page row, from the cache for up to PAGE_ROW_SECONDS: a cached page is then
    served without touching the database. page_touch deletes the entry on every change
    (at once for a shared cache such as Redis, and in the writing process; other
    processes' local-memory caches catch up within PAGE_ROW_SECONDS)."""
    key = page_row_key(slug)
    page = cache.get(key)
    if page is None:
        page = StatusPage.objects.filter(slug=slug).first()
        if page is None:
            return None
        cache.set(key, page, PAGE_ROW_SECONDS)
    return page


def page_for(request: HttpRequest, slug: str) -> StatusPage:
    """The page, if this visitor may see it: login-only pages send anonymous visitors to
    the sign-in page and are a 404 for signed-in people outside the team."""
    page = page_cached(slug)
    if page is None:
        raise Http404("No such status page.")
    if not page_can_view(page, request.user):
        if not request.user.is_authenticated:
            raise _Refused(redirect_to_login(request.get_full_path(), login_url="/admin/login/"))
        raise Http404("No such status page.")
    return page


def refusing(view: Callable) -> Callable:
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except _Refused as refused:
            return refused.response

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def cached_response(
    request: HttpRequest,
    page: StatusPage,
    variant: str,
    render_body: Callable[[], str | bytes],
    content_type: str = "text/html; charset=utf-8",
    *,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    now = timezone.now()
    local_day = now.astimezone(page.tz).date()
    key = f"statuspage:{page.pk}:{variant}:{page.changed_at.timestamp():.6f}:{local_day.isoformat()}"
    # Pages are mostly the same few hundred bytes of markup per uptime bar: gzip (done
    # once, at render) sends a tenth of the bytes. Each encoding has its own ETag.
    gzipped = "gzip" in request.META.get("HTTP_ACCEPT_ENCODING", "")
    etag = '"' + hashlib.sha256(key.encode()).hexdigest()[:24] + ('-gz"' if gzipped else '"')
    # Midnight in the page's time zone also changes the page (the uptime bars move on).
    midnight = datetime.combine(local_day, time.min, tzinfo=page.tz)
    last_modified = int(max(page.changed_at, midnight).timestamp())
    response = get_conditional_response(request, etag=etag, last_modified=last_modified)
    if response is None:
        bodies = cache.get(key)
        if bodies is None:
            body = render_body()
            raw = body.encode() if isinstance(body, str) else body
            bodies = (raw, gzip.compress(raw, compresslevel=6, mtime=0))
            cache.set(key, bodies, CACHE_SECONDS)
        response = HttpResponse(bodies[1] if gzipped else bodies[0], content_type=content_type)
        if gzipped:
            response["Content-Encoding"] = "gzip"
    response["ETag"] = etag
    response["Last-Modified"] = http_date(last_modified)
    # Revalidate every time (a status page must not show a stale "all good"); the ETag
    # makes that a cheap 304. Login-only pages must never sit in a shared cache.
    response["Cache-Control"] = "public, no-cache" if page.is_public else "private, no-cache"
    response["Vary"] = "Accept-Encoding" if page.is_public else "Accept-Encoding, Cookie"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def page_context(page: StatusPage) -> dict:
    overview = page_overview(page)
    groups = []
    for group_view in overview.groups:
        rows = []
        for cv in group_view.components:
            rows.append(
                {
                    "component": cv.component,
                    "label": display.STATUS_LABEL[cv.component.status],
                    "symbol": display.STATUS_SYMBOL[cv.component.status],
                    "bars": display.uptime_bars_svg(cv.days, cv.component.name, cv.past) if cv.days else "",
                    "uptime": display.format_percent(cv.uptime) if cv.days else "",
                    "bad_days": display.bad_days(cv.days, cv.past),
                }
            )
        worst = group_view.worst_status
        groups.append(
            {
                "group": group_view.group,
                "rows": rows,
                "rows_html": display.component_rows_html(rows, UPTIME_DAYS),
                "worst": worst,
                "label": display.STATUS_LABEL[worst],
                "symbol": display.STATUS_SYMBOL[worst],
            }
        )
    return {
        "page": page,
        "overview": overview,
        "groups": groups,
        "banner_class": display.INDICATOR_CLASS[overview.indicator],
        "banner_symbol": display.STATUS_SYMBOL[display.INDICATOR_CLASS[overview.indicator]],
        "recent": recent_history(page, days=14),
        "uptime_rule": UPTIME_RULE,
        "uptime_days": UPTIME_DAYS,
        "legend": [(k, v, display.STATUS_SYMBOL[k]) for k, v in display.STATUS_LABEL.items()],
    }


def render_page_html(page: StatusPage, request: HttpRequest | None = None) -> str:
    return render_to_string("statuspage/page.html", page_context(page), request=None)


@refusing
@require_http_methods(["GET", "HEAD"])
def page_view(request: HttpRequest, slug: str) -> HttpResponse:
    page = page_for(request, slug)
    return cached_response(request, page, "page", lambda: render_page_html(page))


def render_incident_html(
    page: StatusPage, item: PublicIncident | Maintenance, *, preview: bool = False
) -> str:
    is_maintenance = isinstance(item, Maintenance)
    return render_to_string(
        "statuspage/incident.html",
        {
            "page": page,
            "item": item,
            "is_maintenance": is_maintenance,
            "updates": list(item.updates.all()),
            "components": list(item.components.all()),
            "preview": preview,
        },
    )


def _draft_preview(request: HttpRequest, page: StatusPage, queryset, pk: int) -> HttpResponse:
    """A draft, shown only to members of the page's team (the console's "View on site"),
    never cached and marked as a preview."""
    if not permissions.can_view_team(request.user, page.team_id):
        raise Http404("No such incident.")
    item = get_object_or_404(queryset.model.objects.filter(page=page, published=False), pk=pk)
    response = HttpResponse(render_incident_html(page, item, preview=True))
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


@refusing
@require_http_methods(["GET", "HEAD"])
def incident_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    page = page_for(request, slug)
    item = published_incidents(page).filter(pk=pk).first()
    if item is None:
        return _draft_preview(request, page, published_incidents(page), pk)
    return cached_response(request, page, f"incident-{pk}", lambda: render_incident_html(page, item))


@refusing
@require_http_methods(["GET", "HEAD"])
def maintenance_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    page = page_for(request, slug)
    item = published_maintenances(page).filter(pk=pk).first()
    if item is None:
        return _draft_preview(request, page, published_maintenances(page), pk)
    return cached_response(request, page, f"maintenance-{pk}", lambda: render_incident_html(page, item))


def render_history_html(page: StatusPage) -> str:
    return render_to_string(
        "statuspage/history.html", {"page": page, "history": incident_history(page, months=12)}
    )


@refusing
@require_http_methods(["GET", "HEAD"])
def history_view(request: HttpRequest, slug: str) -> HttpResponse:
    page = page_for(request, slug)
    return cached_response(request, page, "history", lambda: render_history_html(page))


def _client_address(request: HttpRequest) -> str:
    # Behind the TLS proxy (BEHIND_TLS_PROXY) every request comes from the proxy: the
    # client is the last address the proxy appended to X-Forwarded-For (the earlier
    # ones are whatever the client sent, so they are not trusted).
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "unknown")


def _rate_limited(request: HttpRequest, page: StatusPage) -> bool:
    limit, window = SUBSCRIBE_LIMIT
    key = f"statuspage:subscribe-rate:{page.pk}:{_client_address(request)}"
    if cache.add(key, 1, window):
        return False
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, window)
        return False
    return count > limit


@refusing
@require_http_methods(["GET", "POST"])
def subscribe_view(request: HttpRequest, slug: str) -> HttpResponse:
    page = page_for(request, slug)
    if not page.allow_subscriptions:
        raise Http404("This page does not take subscriptions.")
    components = list(page.components.order_by("position", "id"))
    context = {"page": page, "components": components, "email": "", "chosen": set(), "error": ""}
    if request.method == "GET":
        return render(request, "statuspage/subscribe.html", context)
    email = request.POST.get("email", "").strip()
    raw_components = request.POST.getlist("components")
    chosen = {int(pk) for pk in raw_components if pk.isdigit()}
    context.update(email=email, chosen=chosen)
    if _rate_limited(request, page):
        context["error"] = (
            "Too many subscription attempts from your network. Please try again in a few minutes."
        )
        return render(request, "statuspage/subscribe.html", context, status=429)
    try:
        if len(chosen) != len(set(raw_components)):
            # Not a component id at all: refused like another page's component, not read
            # as "no filter" (which would subscribe to every component).
            raise ValidationError("Some of the chosen components are not on this page.")
        subscriber_subscribe_email(page=page, email=email, component_ids=chosen)
    except ValidationError as exc:
        context["error"] = " ".join(exc.messages)
        return render(request, "statuspage/subscribe.html", context, status=400)
    return render(
        request,
        "statuspage/message.html",
        {
            "page": page,
            "heading": "Check your inbox",
            "message": f"We sent a confirmation link to {email}. Your subscription starts when you click it.",
        },
    )


@refusing
@require_http_methods(["GET"])
def confirm_view(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    page = page_for(request, slug)
    try:
        subscriber = subscriber_confirm(page=page, token=token)
    except SubscriberTokenError as exc:
        return render(
            request,
            "statuspage/message.html",
            {"page": page, "heading": "Link not valid", "message": str(exc)},
            status=400,
        )
    return render(
        request,
        "statuspage/message.html",
        {
            "page": page,
            "heading": "Subscription confirmed",
            "message": f"{subscriber.email} will receive updates from {page.title}.",
        },
    )


@csrf_exempt  # RFC 8058 one-click: mail clients POST without a CSRF token; the signed token is the proof.
@refusing
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    page = get_object_or_404(StatusPage, slug=slug)
    if request.method == "GET":
        # A GET only asks: link scanners in mail systems must not unsubscribe anyone.
        return render(request, "statuspage/unsubscribe.html", {"page": page, "token": token})
    try:
        removed = subscriber_unsubscribe(page=page, token=token)
    except SubscriberTokenError as exc:
        return render(
            request,
            "statuspage/message.html",
            {"page": page, "heading": "Link not valid", "message": str(exc)},
            status=400,
        )
    message = (
        "You will not receive any more updates." if removed else "This subscription was already removed."
    )
    return render(
        request, "statuspage/message.html", {"page": page, "heading": "Unsubscribed", "message": message}
    )
