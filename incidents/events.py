"""The normalized shape every ingestion adapter produces and the pipeline consumes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from incidents.models import AlertAction, Severity
from ircore.text import json_storable

SEVERITY_ALIASES: dict[str, str] = {
    # PagerDuty Events v2
    "critical": Severity.SEV1,
    "error": Severity.SEV2,
    "warning": Severity.SEV3,
    "info": Severity.SEV4,
    # Common Prometheus / Grafana label values
    "page": Severity.SEV1,
    "fatal": Severity.SEV1,
    "emergency": Severity.SEV1,
    "high": Severity.SEV2,
    "major": Severity.SEV2,
    "warn": Severity.SEV3,
    "medium": Severity.SEV3,
    "minor": Severity.SEV3,
    "low": Severity.SEV4,
    "none": Severity.SEV4,
    "informational": Severity.SEV4,
    "sev1": Severity.SEV1,
    "sev2": Severity.SEV2,
    "sev3": Severity.SEV3,
    "sev4": Severity.SEV4,
    "p1": Severity.SEV1,
    "p2": Severity.SEV2,
    "p3": Severity.SEV3,
    "p4": Severity.SEV4,
    "p5": Severity.SEV4,
}

DEFAULT_PRIORITY_FOR_SEVERITY: dict[str, str] = {
    Severity.SEV1: "P1",
    Severity.SEV2: "P2",
    Severity.SEV3: "P3",
    Severity.SEV4: "P4",
}


def severity_from_text(value: str | None) -> str | None:
    """Map a source's severity word to SEV1-SEV4; None when it is not recognised."""
    if value is None:
        return None
    return SEVERITY_ALIASES.get(str(value).strip().lower())


@dataclass
class AlertEvent:
    """One event from any source, after the adapter has validated it."""

    action: str = AlertAction.TRIGGER
    summary: str = ""
    details: str = ""
    severity: str = Severity.SEV3
    priority: str = ""
    dedup_key: str = ""
    source: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    links: list[dict[str, str]] = field(default_factory=list)
    payload: Any = field(default_factory=dict)


_FIELDS = ("action", "summary", "details", "severity", "priority", "dedup_key", "source", "labels",
           "links", "payload")


def event_encode(event: AlertEvent) -> tuple[AlertEvent, str]:
    """The event as the queue stores it (``QueuedEvent.event``) and its JSON: always
    something the applier can store (``event_storable``), so an accepted event never
    gets stuck."""
    text = json.dumps({name: getattr(event, name) for name in _FIELDS}, default=str)
    if _may_be_unstorable(text):
        event = event_storable(event)
        text = json.dumps({name: getattr(event, name) for name in _FIELDS}, default=str)
    return event, text


def event_storable(event: AlertEvent) -> AlertEvent:
    """The event with what no database column can hold replaced (``json_storable``);
    the same event when there is nothing to replace."""
    fixed = {name: json_storable(getattr(event, name)) for name in _FIELDS}
    if all(fixed[name] is getattr(event, name) for name in _FIELDS):
        return event
    return AlertEvent(**fixed)


# \u0000, or a high surrogate not followed by a low one, or a low one not after a high one.
_UNSTORABLE_ESCAPE = re.compile(
    r"\\u0000|\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}"
)


def _may_be_unstorable(text: str) -> bool:
    """Whether an event's JSON (as json.dumps writes it: ASCII) may hold a NUL, a lone
    surrogate (only as escapes) or a non-finite number (the bare words NaN / Infinity).
    The common event has no escape and neither word: three substring searches."""
    return bool("\\u" in text and _UNSTORABLE_ESCAPE.search(text)) or "NaN" in text or "Infinity" in text


def event_from_json(text: str) -> AlertEvent:
    data = json.loads(text)
    event = AlertEvent(**{name: data[name] for name in _FIELDS if name in data})
    # Events queued by a version before event_storable existed may hold what the
    # database refuses.
    return event_storable(event) if _may_be_unstorable(text) else event
