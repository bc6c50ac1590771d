"""Reads for the dashboard, the digest and the API."""

from __future__ import annotations

from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from incidents.models import Incident
from ircore import permissions
from postmortems.models import ActionItem, PostmortemTemplate
from postmortems.services import required_severities


def incidents_owing_postmortem(*, user: AbstractBaseUser | None = None) -> QuerySet[Incident]:
    """Resolved incidents of a severity that requires a postmortem (setting
    POSTMORTEM_REQUIRED_SEVERITIES) and that no postmortem covers yet."""
    qs = Incident.objects.filter(
        status=Incident.Status.RESOLVED, severity__in=sorted(required_severities()), postmortems__isnull=True
    ).select_related("service", "team").order_by("-resolved_at")
    return permissions.scope_queryset(qs, user) if user is not None else qs


def action_items_overdue(
    *, user: AbstractBaseUser | None = None, today: date | None = None
) -> QuerySet[ActionItem]:
    qs = ActionItem.objects.filter(ActionItem.overdue_q(today)).select_related(
        "owner", "postmortem"
    ).order_by("due_date", "id")
    return permissions.scope_queryset(qs, user, "postmortem__team") if user is not None else qs


def postmortem_templates_visible(*, user: AbstractBaseUser) -> QuerySet[PostmortemTemplate]:
    """The shared templates (no team) and those of the user's teams."""
    qs = PostmortemTemplate.objects.all()
    ids = permissions.visible_team_ids(user)
    return qs if ids is None else qs.filter(Q(team__isnull=True) | Q(team_id__in=ids))
