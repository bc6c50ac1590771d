"""Ready-to-use triage rules an operator can load from the console in one click.

Templates are appended after a team's existing rules, in the order listed here (the
order matters: the first matching rule stops evaluation unless it says continue).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max

from incidents.models import Priority, Service, Severity, TriageRule
from ircore.models import Team


@dataclass(frozen=True)
class RuleTemplate:
    key: str
    name: str
    description: str
    fields: dict[str, Any] = field(default_factory=dict)
    # Routing templates need a target service, chosen when loading.
    needs_service: bool = False


RULE_TEMPLATES: list[RuleTemplate] = [
    RuleTemplate(
        key="suppress-test",
        name="Suppress test alerts",
        description="Alerts marked [TEST] are kept for the record but open no incident.",
        fields={"match_keywords": "[test]\n[testing]", "suppress": True},
    ),
    RuleTemplate(
        key="staging-low",
        name="Staging alerts are SEV4 / P5",
        description='Alerts labelled env=staging (or "stage", "staging-eu"...) never page as urgent.',
        fields={"match_labels": {"env": "stag*"}, "set_severity": Severity.SEV4,
                "set_priority": Priority.P5},
    ),
    RuleTemplate(
        key="database-down",
        name="Database down is SEV1 / P1",
        description='"database down", "db down" or "database unreachable" is a critical incident.',
        fields={"match_keywords": "database down\ndb down\ndatabase unreachable\ndatabase is down",
                "set_severity": Severity.SEV1, "set_priority": Priority.P1},
    ),
    RuleTemplate(
        key="disk-space",
        name="Disk space is SEV3 / P3",
        description="Disk space and filesystem-full alerts are minor until they are not.",
        fields={"match_keywords": "disk space\ndisk full\nlow disk\nfilesystem full\nno space left",
                "set_severity": Severity.SEV3, "set_priority": Priority.P3},
    ),
    RuleTemplate(
        key="warnings-sev3",
        name="Warnings are SEV3",
        description='Anything that calls itself a "warning" is at most SEV3.',
        fields={"match_keywords": "warning", "set_severity": Severity.SEV3},
    ),
    RuleTemplate(
        key="route-by-label",
        name="Route by service label",
        description='Alerts labelled service=<name of the chosen service> go to that service.',
        needs_service=True,
    ),
]

TEMPLATES_BY_KEY = {tpl.key: tpl for tpl in RULE_TEMPLATES}


@dataclass
class LoadResult:
    created: list[TriageRule]
    skipped: list[str]


def rule_templates_load(
    *, team: Team, keys: list[str], route_service: Service | None = None
) -> LoadResult:
    """Create one enabled rule per chosen template after the team's existing rules.

    A template whose rule name already exists in the team is skipped, so loading twice
    does not duplicate rules. Raises ValueError (nothing created) on bad input.
    """
    unknown = [key for key in keys if key not in TEMPLATES_BY_KEY]
    if unknown:
        raise ValueError(f"Unknown rule template(s): {', '.join(unknown)}.")
    if not keys:
        raise ValueError("Choose at least one rule template.")
    chosen = [tpl for tpl in RULE_TEMPLATES if tpl.key in keys]
    needs_service = [tpl.name for tpl in chosen if tpl.needs_service]
    if needs_service and route_service is None:
        raise ValueError(f"Choose the service to route to for: {', '.join(needs_service)}.")
    if route_service is not None and route_service.team_id != team.pk:
        raise ValueError(f"Service {route_service} does not belong to team {team}.")
    result = LoadResult(created=[], skipped=[])
    with transaction.atomic():
        existing = set(TriageRule.objects.filter(team=team).values_list("name", flat=True))
        position = TriageRule.objects.filter(team=team).aggregate(m=Max("position"))["m"] or 0
        for tpl in chosen:
            values = dict(tpl.fields)
            name = tpl.name
            if tpl.needs_service:
                assert route_service is not None
                name = f"{tpl.name}: {route_service.name}"
                values.update(match_labels={"service": route_service.name}, route_to_service=route_service)
            if name in existing:
                result.skipped.append(name)
                continue
            position += 10
            result.created.append(
                TriageRule.objects.create(team=team, name=name, position=position, enabled=True, **values)
            )
    return result
