"""Writes for postmortems and action items. Each refusal raises ValidationError with a
message an operator can act on, and changes nothing; each change is recorded in
PostmortemChange in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from incidents.models import Incident, Problem, TimelineEntry
from incidents.services import timeline_add
from ircore import permissions
from postmortems.models import (
    ActionItem,
    Postmortem,
    PostmortemChange,
    PostmortemTemplate,
    PostmortemTimelineItem,
)
from postmortems.rendering import template_context, template_fill
from statuspage.models import PublicIncident, PublicUpdate
from statuspage.services import public_incident_post_update

Status = Postmortem.Status
User = AbstractBaseUser
Kind = TimelineEntry.Kind

MILESTONES = {Kind.TRIGGERED, Kind.ACKNOWLEDGED, Kind.MITIGATED, Kind.RESOLVED, Kind.REOPENED,
              Kind.ESCALATION, Kind.SEVERITY}
# Every alert of a noisy incident would bury the story; the alert count is in the
# incident and its first alert is in the "triggered" entry.
NOT_COPIED = {Kind.ALERT}
EDITABLE_FIELDS = ("title", "body", "contributing_factors", "owner")
ACTION_ITEM_FIELDS = ("title", "description", "owner", "due_date", "priority", "kind", "status", "ticket_url")


class TransitionRefused(ValidationError):
    """The change does not apply to the postmortem's current status (API: 409)."""


class NotAllowed(ValidationError):
    """The caller's role does not allow this change (API: 403)."""


def required_severities() -> set[str]:
    return set(getattr(settings, "POSTMORTEM_REQUIRED_SEVERITIES", ["SEV1", "SEV2"]))


def _record(pm: Postmortem, user: User | None, action: str, message: str,
            fields: dict[str, Any] | None = None) -> PostmortemChange:
    return PostmortemChange.objects.create(
        postmortem=pm, actor=user if getattr(user, "pk", None) else None, action=action, message=message,
        fields=fields or {},
    )


def _actor_label(entry: TimelineEntry) -> str:
    if entry.actor is None:
        return ""
    return entry.actor.get_full_name() or entry.actor.get_username()


# --------------------------------------------------------------------------- create


def postmortem_create(
    *,
    incidents: Iterable[Incident],
    user: User | None,
    template: PostmortemTemplate | None = None,
    title: str = "",
) -> Postmortem:
    incidents = list({inc.pk: inc for inc in incidents}.values())
    if not incidents:
        raise ValidationError({"incidents": "Pick at least one incident."})
    teams = {inc.team_id for inc in incidents}
    if len(teams) > 1:
        raise ValidationError({"incidents": "All incidents of one postmortem must belong to the same team."})
    team_id = teams.pop()
    if user is not None and not permissions.can_view_team(user, team_id):
        raise NotAllowed({"incidents": "You are not a member of this incident's team."})
    open_ = [inc.ref for inc in incidents if inc.status != Incident.Status.RESOLVED]
    if open_:
        raise ValidationError({"incidents": f"{', '.join(open_)} is not resolved yet: resolve it first."})
    if template is None:
        template = postmortem_templates_for(team_id=team_id).filter(is_default=True).first()
    elif template.team_id not in (None, team_id):
        raise ValidationError({"template": "This template belongs to another team."})
    first = min(incidents, key=lambda inc: inc.triggered_at)
    title = (title or f"Postmortem: {first.ref} {first.title}").strip()[:255]
    team = first.team
    context = template_context(incidents=incidents, title=title, team_name=team.name)
    with transaction.atomic():
        pm = Postmortem.objects.create(
            team=team, title=title, template=template,
            body=template_fill(template.body, context) if template else f"# {title}\n",
            owner=user if getattr(user, "pk", None) else None,
        )
        pm.incidents.set(incidents)
        problem_ids = Problem.objects.filter(incidents__in=incidents).values_list("pk", flat=True).distinct()
        pm.problems.set(list(problem_ids))
        copied = _timeline_copy(pm)
        refs = ", ".join(inc.ref for inc in incidents)
        using = f" with template {template.name!r}" if template else ""
        _record(pm, user, "created", f"Created from {refs}{using}; {copied} timeline entries copied")
        for incident in incidents:
            timeline_add(incident=incident, kind=Kind.INFO, actor=user if getattr(user, "pk", None) else None,
                         message=f"Postmortem started: {title}", data={"postmortem_id": pm.pk})
    return pm


def postmortem_templates_for(*, team_id: int) -> Any:
    return PostmortemTemplate.objects.filter(Q(team__isnull=True) | Q(team_id=team_id)).order_by(
        "-is_default", "name"
    )


def _timeline_copy(pm: Postmortem) -> int:
    """Copy entries not copied yet; return how many were added."""
    have = set(pm.timeline.exclude(source=None).values_list("source_id", flat=True))
    entries = (
        TimelineEntry.objects.filter(incident__in=pm.incidents.all()).exclude(kind__in=NOT_COPIED)
        # Our own "postmortem started" notes are bookkeeping, not part of the story.
        .exclude(pk__in=have).exclude(data__has_key="postmortem_id")
        .select_related("actor", "incident").order_by("created_at", "id")
    )
    rows = [
        PostmortemTimelineItem(
            postmortem=pm, source=entry, incident_ref=entry.incident.ref if entry.incident else "",
            at=entry.created_at, kind=entry.kind, message=entry.message, actor=_actor_label(entry),
            via=entry.via, milestone=entry.kind in MILESTONES,
        )
        for entry in entries
    ]
    PostmortemTimelineItem.objects.bulk_create(rows)
    return len(rows)


def postmortem_timeline_refresh(*, postmortem: Postmortem, user: User | None) -> int:
    """Add timeline entries written since the copy (e.g. late notes). Hidden flags and
    annotations stay. Only while draft: a reviewed document must not change under the
    reviewers' eyes."""
    with transaction.atomic():
        pm = Postmortem.objects.select_for_update().get(pk=postmortem.pk)
        if pm.status != Status.DRAFT:
            raise TransitionRefused("The timeline can only be refreshed while the postmortem is a draft.")
        added = _timeline_copy(pm)
        Postmortem.objects.filter(pk=pm.pk).update(timeline_refreshed_at=timezone.now())
        _record(pm, user, "timeline_refreshed", f"Timeline refreshed: {added} new entries")
    return added


def postmortem_timeline_item_update(
    *,
    item: PostmortemTimelineItem,
    user: User | None,
    hidden: bool | None = None,
    annotation: str | None = None,
) -> PostmortemTimelineItem:
    pm = item.postmortem
    if pm.status == Status.PUBLISHED:
        raise TransitionRefused("A published postmortem cannot be changed.")
    changes: dict[str, Any] = {}
    if hidden is not None and hidden != item.hidden:
        changes["hidden"] = [item.hidden, hidden]
        item.hidden = hidden
    if annotation is not None and annotation.strip() != item.annotation:
        changes["annotation"] = [item.annotation, annotation.strip()]
        item.annotation = annotation.strip()
    if changes:
        with transaction.atomic():
            item.save(update_fields=["hidden", "annotation"])
            _record(pm, user, "timeline_item", f"Timeline entry at {item.at:%Y-%m-%d %H:%M} edited", changes)
    return item


# --------------------------------------------------------------------------- edit and workflow


def _fmt_value(value: Any) -> Any:
    if hasattr(value, "pk"):
        return str(value)
    return value


def postmortem_update(*, postmortem: Postmortem, user: User | None, **values: Any) -> Postmortem:
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"Cannot set {', '.join(sorted(unknown))} here.")
    if "title" in values and not str(values["title"]).strip():
        raise ValidationError({"title": "A postmortem needs a title."})
    owner = values.get("owner")
    if owner is not None and not permissions.can_view_team(owner, postmortem.team_id):
        raise ValidationError({"owner": "The owner must be a member of the postmortem's team."})
    with transaction.atomic():
        pm = Postmortem.objects.select_for_update().get(pk=postmortem.pk)
        if pm.status == Status.PUBLISHED:
            raise TransitionRefused("A published postmortem cannot be changed.")
        changes = {}
        for name, value in values.items():
            old = getattr(pm, name)
            if old != value:
                # Bodies can be long: keep the fact of the change, not two copies.
                changes[name] = (["(text)", "(text)"] if name in ("body", "contributing_factors")
                                 else [_fmt_value(old), _fmt_value(value)])
                setattr(pm, name, value)
        if changes:
            pm.save()
            _record(pm, user, "edited", f"Edited {', '.join(changes)}", changes)
    postmortem.__dict__.update({k: getattr(pm, k) for k in values})
    return pm


def postmortem_set_problems(
    *, postmortem: Postmortem, user: User | None, problems: Iterable[Problem]
) -> None:
    """Link the postmortem to problems of its own team (also allowed once published:
    the root cause may be understood later)."""
    problems = list(problems)
    foreign = [p.ref for p in problems if p.team_id != postmortem.team_id]
    if foreign:
        raise ValidationError({"problems": f"{', '.join(foreign)} belong(s) to another team."})
    with transaction.atomic():
        before = sorted(postmortem.problems.values_list("number", flat=True))
        postmortem.problems.set(problems)
        after = sorted(p.number for p in problems)
        if before != after:
            refs = ", ".join(f"PRB-{n}" for n in after) or "none"
            _record(postmortem, user, "problems", f"Problems: {refs}", {"problems": [before, after]})


def postmortem_set_reviewers(*, postmortem: Postmortem, user: User | None, reviewers: Iterable[User]) -> None:
    reviewers = list(reviewers)
    outsiders = [r.get_username() for r in reviewers if not permissions.can_view_team(r, postmortem.team_id)]
    if outsiders:
        raise ValidationError({"reviewers": f"Not in the team: {', '.join(outsiders)}."})
    if postmortem.status == Status.PUBLISHED:
        raise TransitionRefused("A published postmortem cannot be changed.")
    with transaction.atomic():
        before = sorted(postmortem.reviewers.values_list("username", flat=True))
        postmortem.reviewers.set(reviewers)
        after = sorted(r.get_username() for r in reviewers)
        if before != after:
            _record(postmortem, user, "reviewers", f"Reviewers: {', '.join(after) or 'none'}",
                    {"reviewers": [before, after]})


def _transition(pm: Postmortem, user: User | None, old: str, new: str, action: str, message: str,
                **values: Any) -> None:
    changed = Postmortem.objects.filter(pk=pm.pk, status=old).update(status=new, **values)
    if not changed:
        pm.refresh_from_db(fields=["status"])
        raise TransitionRefused(
            f"Cannot {action.replace('_', ' ')}: the postmortem is {pm.get_status_display().lower()}, "
            f"not {Status(old).label.lower()}."
        )
    pm.status = new
    for key, value in values.items():
        setattr(pm, key, value)
    _record(pm, user, action, message, {"status": [old, new]})


def postmortem_submit_for_review(
    *, postmortem: Postmortem, user: User | None, reviewers: Iterable[User] | None = None
) -> Postmortem:
    with transaction.atomic():
        if reviewers is not None:
            postmortem_set_reviewers(postmortem=postmortem, user=user, reviewers=reviewers)
        if not postmortem.reviewers.exists():
            raise ValidationError({"reviewers": "Name at least one reviewer before asking for review."})
        if not postmortem.body.strip():
            raise ValidationError({"body": "The postmortem is empty."})
        names = ", ".join(sorted(postmortem.reviewers.values_list("username", flat=True)))
        _transition(postmortem, user, Status.DRAFT, Status.IN_REVIEW, "submit_for_review",
                    f"Submitted for review to {names}", submitted_at=timezone.now())
    return postmortem


def postmortem_return_to_draft(*, postmortem: Postmortem, user: User | None, reason: str = "") -> Postmortem:
    with transaction.atomic():
        _transition(postmortem, user, Status.IN_REVIEW, Status.DRAFT, "return_to_draft",
                    "Returned to draft" + (f": {reason.strip()}" if reason.strip() else ""))
    return postmortem


def postmortem_publish(*, postmortem: Postmortem, user: User) -> Postmortem:
    """In review -> published, by a named reviewer or a manager of the team."""
    is_reviewer = postmortem.reviewers.filter(pk=user.pk).exists()
    if not (is_reviewer or permissions.can_manage_team(user, postmortem.team_id)):
        raise NotAllowed("Only a named reviewer or a team manager can publish this postmortem.")
    with transaction.atomic():
        _transition(postmortem, user, Status.IN_REVIEW, Status.PUBLISHED, "publish", "Published",
                    published_at=timezone.now(), published_by=user)
    return postmortem


# --------------------------------------------------------------------------- action items


def _clean_action_item(item: ActionItem, team_id: int) -> None:
    errors: dict[str, str] = {}
    if not item.title.strip():
        errors["title"] = "An action item needs a title."
    owner = get_user_model().objects.filter(pk=item.owner_id).first() if item.owner_id else None
    if owner is not None and not permissions.can_view_team(owner, team_id):
        errors["owner"] = "The owner must be a member of the postmortem's team."
    if item.ticket_url:
        try:
            URLValidator(schemes=["http", "https"])(item.ticket_url)
        except ValidationError:
            errors["ticket_url"] = "The ticket URL must be an http(s) URL."
    for field, choices in (("kind", ActionItem.Kind), ("priority", ActionItem.Priority),
                           ("status", ActionItem.Status)):
        if getattr(item, field) not in choices.values:
            errors[field] = f"Choose one of {', '.join(choices.values)}."
    if errors:
        raise ValidationError(errors)


def action_item_create(*, postmortem: Postmortem, user: User | None, title: str, **values: Any) -> ActionItem:
    unknown = set(values) - set(ACTION_ITEM_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    item = ActionItem(postmortem=postmortem, title=title.strip(), **values)
    _clean_action_item(item, postmortem.team_id)
    if item.status not in ActionItem.OPEN_STATUSES:
        item.completed_at = timezone.now()
    with transaction.atomic():
        item.save()
        _record(postmortem, user, "action_item_added", f"Action item added: {item.title}")
    return item


def action_item_update(*, item: ActionItem, user: User | None, **values: Any) -> ActionItem:
    unknown = set(values) - set(ACTION_ITEM_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    # Action items stay editable after publication: tracking them to done is the point.
    changes = {}
    for name, value in values.items():
        old = getattr(item, name)
        if old != value:
            changes[name] = [_fmt_value(old), _fmt_value(value)]
            setattr(item, name, value)
    if not changes:
        return item
    if "title" in values:
        item.title = item.title.strip()
    _clean_action_item(item, item.postmortem.team_id)
    if "status" in changes:
        item.completed_at = None if item.status in ActionItem.OPEN_STATUSES else timezone.now()
    with transaction.atomic():
        item.save()
        _record(item.postmortem, user, "action_item_changed",
                f"Action item {item.title!r}: {', '.join(changes)} changed",
                {k: [str(a), str(b)] for k, (a, b) in changes.items()})
    return item


def action_item_delete(*, item: ActionItem, user: User | None) -> None:
    with transaction.atomic():
        _record(item.postmortem, user, "action_item_removed", f"Action item removed: {item.title}")
        item.delete()


# --------------------------------------------------------------------------- status page


def postmortem_publish_public_summary(
    *, postmortem: Postmortem, user: User | None, summary: str
) -> list[PublicUpdate]:
    """Post ``summary`` as an update on the status page incidents opened from the
    postmortem's incidents (pages of the same team), keeping their status and
    components. Only once the postmortem is published: the public reads the reviewed
    version. Returns the updates posted."""
    summary = (summary or "").strip()
    if not summary:
        raise ValidationError({"summary": "Write the summary the public will read."})
    if postmortem.status != Status.PUBLISHED:
        raise TransitionRefused("Publish the postmortem before posting its summary on a status page.")
    public = list(
        PublicIncident.objects.filter(source_incident__in=postmortem.incidents.all(),
                                      page__team_id=postmortem.team_id).select_related("page")
    )
    if not public:
        raise ValidationError("None of the postmortem's incidents is on a status page of this team.")
    with transaction.atomic():
        updates = [
            public_incident_post_update(incident=incident, status=incident.status, body=summary, author=user,
                                        component_statuses={})
            for incident in public
        ]
        pages = ", ".join(sorted({incident.page.title for incident in public}))
        _record(postmortem, user, "public_summary", f"Summary posted on the status page(s): {pages}")
    return updates
