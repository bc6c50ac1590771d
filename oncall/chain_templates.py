"""Ready-to-use escalation chains: pick one, name the schedules, done."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ircore.models import Team
from oncall.models import Schedule
from oncall.models_escalation import EscalationChain, EscalationStep


@dataclass(frozen=True)
class StepSpec:
    target: str  # "primary" | "secondary" | "managers" | "team"
    delay_minutes: int


@dataclass(frozen=True)
class ChainTemplate:
    key: str
    name: str
    description: str
    steps: tuple[StepSpec, ...]
    repeat: int


TEMPLATES: dict[str, ChainTemplate] = {
    t.key: t
    for t in (
        ChainTemplate(
            "standard", "Primary, secondary, manager",
            "Primary on-call at once, secondary after 10 minutes, the team's managers after 20; "
            "repeat twice.",
            (StepSpec("primary", 10), StepSpec("secondary", 10), StepSpec("managers", 10)), 2,
        ),
        ChainTemplate(
            "primary-then-team", "Primary, then the whole team",
            "Primary on-call at once, everyone in the team after 15 minutes; repeat once.",
            (StepSpec("primary", 15), StepSpec("team", 15)), 1,
        ),
        ChainTemplate(
            "primary-only", "Primary only", "Primary on-call, re-paged every 5 minutes, 3 times.",
            (StepSpec("primary", 5),), 2,
        ),
    )
}


def chain_template_apply(
    *, team: Team, key: str, name: str = "", primary: Schedule, secondary: Schedule | None = None,
    is_default: bool = False,
) -> EscalationChain:
    template = TEMPLATES.get(key)
    if template is None:
        raise ValidationError(f"Unknown chain template {key!r}; use one of {', '.join(TEMPLATES)}.")
    for label, schedule in (("primary", primary), ("secondary", secondary)):
        if schedule is not None and schedule.team_id != team.pk:
            raise ValidationError(f"The {label} schedule belongs to another team.")
    if any(s.target == "secondary" for s in template.steps) and secondary is None:
        raise ValidationError("This template needs a secondary schedule.")
    try:
        with transaction.atomic():
            if is_default:
                EscalationChain.objects.filter(team=team, is_default=True).update(is_default=False)
            chain = EscalationChain.objects.create(
                team=team, name=name or template.name, description=template.description,
                repeat=template.repeat, is_default=is_default,
            )
            for position, spec in enumerate(template.steps):
                step = EscalationStep.objects.create(
                    chain=chain, position=position, delay_minutes=spec.delay_minutes,
                    notify_team=spec.target == "team", team_managers=spec.target == "managers",
                )
                if spec.target in ("primary", "secondary"):
                    step.schedules.set([primary if spec.target == "primary" else secondary])
    except IntegrityError:
        raise ValidationError(f"The team already has a chain named {name or template.name!r}.") from None
    return chain
