"""The demo teams' paging set-up (part of `manage.py ircore_demo`): an on-call schedule
with a weekly rotation of the team's responders, and a default escalation chain that
pages whoever is on call, then the team's managers.

Created only for a team that has no schedule and no escalation chain yet: a team whose
paging someone has set up (or renamed, or partly removed) is left as it is, and a re-run
never adds a second schedule or chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from ircore.models import Team
from oncall.models import EscalationChain, EscalationStep, Schedule
from oncall.rotation_templates import rotation_template_apply

# Each team's schedule hands off in its own local time (Mondays 09:00).
SCHEDULE_TIMEZONES = {"payments": "Europe/Berlin", "search": "America/New_York"}
DEFAULT_TIMEZONE = "Europe/Berlin"
# A fixed Monday in the past: the rotation is already running (someone is on call now),
# and who is on call in a given week is the same on every install.
ROTATION_START = date(2024, 1, 1)
CHAIN_NAME = "On-call, then manager"
ONCALL_DELAY_MINUTES = 5  # before the managers are paged
MANAGERS_DELAY_MINUTES = 10  # before the chain runs again
CHAIN_REPEAT = 1


def schedule_name(team: Team) -> str:
    return f"{team.name} on-call"


def demo_paging_create(*, team: Team, responder_ids: Sequence[int]) -> list[str]:
    """Create the team's schedule and default chain unless it has either; return what
    was created (for the command's "Created: ..." line)."""
    if not responder_ids or Schedule.objects.filter(team=team).exists() \
            or EscalationChain.objects.filter(team=team).exists():
        return []
    # No service creates a bare schedule or a chain with chosen steps (the console and
    # the API save the models through their forms); validated the same way here.
    schedule = Schedule(
        team=team, name=schedule_name(team),
        timezone=SCHEDULE_TIMEZONES.get(team.slug, DEFAULT_TIMEZONE),
        description="Demo: the team's responders take turns, a week each, handing off "
                    "on Mondays at 09:00.",
    )
    schedule.full_clean()
    schedule.save()
    rotation_template_apply(schedule=schedule, template="weekly", user_ids=list(responder_ids),
                            start=ROTATION_START)
    chain = EscalationChain(
        team=team, name=CHAIN_NAME, is_default=True, repeat=CHAIN_REPEAT,
        description=f"Demo: whoever is on call in {schedule.name!r} at once, the team's managers "
                    f"after {ONCALL_DELAY_MINUTES} minutes; the chain runs twice if nobody "
                    "acknowledges.",
    )
    chain.full_clean()
    chain.save()
    EscalationStep.objects.create(chain=chain, position=0, delay_minutes=ONCALL_DELAY_MINUTES) \
        .schedules.set([schedule])
    EscalationStep.objects.create(chain=chain, position=1, delay_minutes=MANAGERS_DELAY_MINUTES,
                                  team_managers=True)
    return [f"schedule {schedule.name!r}", f"escalation chain {chain.name!r} ({team.name})"]
