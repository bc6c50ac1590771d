"""Public iCal feeds: the secret token in the URL is the only credential, so an unknown
or revoked token is a plain 404."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from oncall import ical
from oncall.models import CalendarFeed, Schedule


def _ics(body: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, max-age=300"
    return response


@require_GET
def schedule_feed(request: HttpRequest, token: str) -> HttpResponse:
    schedule = get_object_or_404(Schedule.objects.select_related("team"), ical_token=token)
    return _ics(ical.schedule_calendar(schedule=schedule), f"oncall-schedule-{schedule.pk}.ics")


@require_GET
def user_feed(request: HttpRequest, token: str) -> HttpResponse:
    feed = get_object_or_404(CalendarFeed.objects.select_related("user"), token=token)
    if not feed.user.is_active:
        return HttpResponse(status=404)
    return _ics(ical.user_calendar(user=feed.user), "oncall-my-shifts.ics")
