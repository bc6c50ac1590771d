"""The templates every install ships with (created by migration 0002; editable after)."""

BLAMELESS = """# {{ title }}

*Blameless postmortem. We look for causes in systems and processes, not in people.*

| | |
|---|---|
| Incidents | {{ incidents }} |
| Services | {{ services }} |
| Severity | {{ severity }} |
| Started | {{ started }} |
| Resolved | {{ resolved }} |
| Duration | {{ duration }} |
| Team | {{ team }} |

## Summary

What happened, in two or three sentences a newcomer can follow.

## Impact

Who was affected, how, and for how long (users, requests, revenue, SLOs).

## Root causes

The conditions that made this incident possible. Ask "why" until the answer is a system
or process you can change.

## Trigger

The change or event that set it off.

## Resolution

What stopped the impact, and what fixed it for good.

## Detection

How we found out (alert, customer, colleague) and how long it took.

## What went well

-

## What went wrong

-

## Where we got lucky

-

## Action items

Tracked below as action items (owner, due date, ticket).

## Timeline

The timeline is copied from the incident(s) and shown below this document.
"""

LIGHTWEIGHT = """# {{ title }}

{{ incidents }} on {{ services }} ({{ severity }}), {{ started }} to {{ resolved }} ({{ duration }}).

## What happened

## Why it happened

## What we are doing about it

See the action items below.
"""

BUILTIN = [
    ("Blameless postmortem (full)", "Summary, impact, root causes, trigger, resolution, detection, "
     "what went well/wrong, luck, action items, timeline.", BLAMELESS, True),
    ("Lightweight postmortem", "A short write-up for minor incidents.", LIGHTWEIGHT, False),
]
