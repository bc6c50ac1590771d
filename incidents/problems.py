"""Problem management (ITIL): create problems, link incidents, and match new incidents
against known errors. Writes follow incidents.services conventions: keyword-only,
one transaction, a timeline entry for every change an incident sees."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet

from incidents.models import Incident, Problem, Service, TimelineEntry
from incidents.services import timeline_add
from ircore.counters import counter_next
from ircore.models import Team

Kind = TimelineEntry.Kind
Via = TimelineEntry.Via
User = AbstractBaseUser

# Problem statuses in which a linked incident may still be attached; a closed problem
# is history and should not silently grow.
_LINKABLE = [Problem.Status.NEW, Problem.Status.INVESTIGATING, Problem.Status.KNOWN_ERROR,
             Problem.Status.RESOLVED]


def problem_keywords(problem: Problem) -> list[str]:
    raw = problem.match_keywords.replace(",", "\n")
    return [kw.strip().lower() for kw in raw.splitlines() if kw.strip()]


def problem_validate(problem: Problem) -> None:
    """Raise ValidationError with a field-keyed message when the problem is inconsistent."""
    errors: dict[str, str] = {}
    if not problem.title.strip():
        errors["title"] = "A problem needs a title."
    if problem.match_service_id and problem.team_id:
        service_team = Service.objects.filter(pk=problem.match_service_id).values_list("team_id", flat=True)
        if list(service_team) != [problem.team_id]:
            errors["match_service"] = "The match service must belong to the problem's team."
    has_rule = bool(problem_keywords(problem) or problem.match_dedup_key.strip())
    if has_rule and not problem.match_service_id:
        errors["match_service"] = "A match rule needs a service: keywords and patterns apply per service."
    if problem.status == Problem.Status.KNOWN_ERROR and not problem.workaround.strip():
        errors["workaround"] = "A known error needs a workaround (or say that there is none)."
    if errors:
        raise ValidationError(errors)


def problem_create(*, team: Team, title: str, user: User | None = None, **fields: Any) -> Problem:
    return problem_save_new(problem=Problem(team=team, title=title, **fields), user=user)


def problem_save_new(*, problem: Problem, user: User | None) -> Problem:
    """Validate and insert a new problem (built by a form or by problem_create) with the
    next PRB number."""
    problem.created_by = user
    problem_validate(problem)
    with transaction.atomic():
        problem.number = counter_next(name="problem")
        problem.save(force_insert=True)
    return problem


def problem_link_incidents(
    *, problem: Problem, incidents: Iterable[Incident], user: User | None, via: str = Via.WEB
) -> list[Incident]:
    """Link incidents of the problem's team; returns the newly linked ones. Incidents of
    another team are refused as a whole (nothing is linked)."""
    incidents = list(incidents)
    foreign = [inc.ref for inc in incidents if inc.team_id != problem.team_id]
    if foreign:
        raise ValidationError(
            f"{', '.join(foreign)} belong(s) to another team than {problem.ref}; nothing was linked."
        )
    if problem.status not in _LINKABLE:
        raise ValidationError(f"{problem.ref} is {problem.get_status_display().lower()}; reopen it first.")
    with transaction.atomic():
        already = set(problem.incidents.values_list("pk", flat=True))
        new = [inc for inc in incidents if inc.pk not in already]
        problem.incidents.add(*new)
        for incident in new:
            timeline_add(
                incident=incident, kind=Kind.INFO, actor=user, via=via,
                message=f"Linked to problem {problem.ref}: {problem.title}",
                data={"problem_id": problem.pk},
            )
    return new


def problem_unlink_incidents(
    *, problem: Problem, incidents: Iterable[Incident], user: User | None, via: str = Via.WEB
) -> None:
    with transaction.atomic():
        linked = set(problem.incidents.values_list("pk", flat=True))
        for incident in incidents:
            if incident.pk in linked:
                problem.incidents.remove(incident)
                timeline_add(
                    incident=incident, kind=Kind.INFO, actor=user, via=via,
                    message=f"Unlinked from problem {problem.ref}", data={"problem_id": problem.pk},
                )


def problem_matches(problem: Problem, incident: Incident) -> bool:
    """The known-error rule: same service, and a keyword in the title/description or the
    dedup key matching the pattern. A rule with neither never matches: a whole service
    is too broad to be one known error."""
    if problem.status != Problem.Status.KNOWN_ERROR or problem.match_service_id != incident.service_id:
        return False
    pattern = problem.match_dedup_key.strip()
    if pattern and fnmatch.fnmatchcase(incident.dedup_key.lower(), pattern.lower()):
        return True
    keywords = problem_keywords(problem)
    if keywords:
        text = f"{incident.title}\n{incident.description}".lower()
        return any(kw in text for kw in keywords)
    return False


def known_error_match(*, incident: Incident) -> list[Problem]:
    """Known errors whose rule matches ``incident``, newest first. One indexed query;
    the text rule is evaluated in Python on the (few) known errors of the service."""
    candidates = Problem.objects.filter(
        match_service_id=incident.service_id, status=Problem.Status.KNOWN_ERROR, team_id=incident.team_id
    ).order_by("-number")
    return [p for p in candidates if problem_matches(p, incident)]


def known_error_flag(*, incident: Incident) -> list[Problem]:
    """Write "this looks like known error PRB-n" (with the workaround) on the incident's
    timeline for each matching known error not flagged on it yet."""
    matches = known_error_match(incident=incident)
    if not matches:
        return []
    flagged: list[Problem] = []
    with transaction.atomic():
        seen = set(
            TimelineEntry.objects.filter(incident=incident, kind=Kind.INFO, data__has_key="known_error_id")
            .values_list("data__known_error_id", flat=True)
        )
        for problem in matches:
            if problem.pk in seen:
                continue
            workaround = problem.workaround.strip()
            timeline_add(
                incident=incident, kind=Kind.INFO,
                message=f"This looks like known error {problem.ref}: {problem.title}."
                + (f"\nWorkaround: {workaround}" if workaround else ""),
                data={"known_error_id": problem.pk, "known_error": problem.ref, "workaround": workaround},
            )
            flagged.append(problem)
    return flagged


def known_errors_search(*, queryset: QuerySet[Problem], text: str) -> QuerySet[Problem]:
    """Known errors whose title, root cause, workaround or keywords contain ``text``."""
    queryset = queryset.filter(status=Problem.Status.KNOWN_ERROR)
    text = text.strip()
    if not text:
        return queryset
    return queryset.filter(
        Q(title__icontains=text) | Q(root_cause__icontains=text) | Q(workaround__icontains=text)
        | Q(match_keywords__icontains=text) | Q(impact__icontains=text)
    )


def on_incident_triggered(sender: Any, incident: Incident, **kwargs: Any) -> None:
    """Receiver for incidents.signals.incident_triggered (connected in IncidentsConfig)."""
    known_error_flag(incident=incident)
