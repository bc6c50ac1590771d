"""The normalized shape every ingestion adapter produces and the pipeline consumes."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from incidents.models import AlertAction, Severity
from ircore.text import text_storable

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


def event_to_json(event: AlertEvent) -> tuple[AlertEvent, str]:
    """How a queued event is stored (``QueuedEvent.event``): the event as stored and its
    JSON, always something the applier can store (``event_storable``), so an accepted
    event never gets stuck."""
    try:
        text = json.dumps({name: getattr(event, name) for name in _FIELDS}, default=str, allow_nan=False)
    except ValueError:  # a non-finite number
        text = ""
    # The encoded text is ASCII: a NUL or a lone surrogate can only appear as an escape,
    # so the common event (no escapes at all) costs one substring search.
    if not text or "\\u" in text and _UNSTORABLE_ESCAPE.search(text):
        event = event_storable(event)
        text = json.dumps({name: getattr(event, name) for name in _FIELDS}, default=str)
    return event, text


# \u0000, or a high surrogate not followed by a low one, or a low one not after a high one.
_UNSTORABLE_ESCAPE = re.compile(
    r"\\u0000|\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}"
)


def event_storable(event: AlertEvent) -> AlertEvent:
    """The event with what no database column can hold replaced: NUL characters and
    unpaired surrogates (PostgreSQL refuses the first, UTF-8 cannot encode the second)
    become U+FFFD, non-finite numbers (not JSON) become text. The same event when there
    is nothing to replace."""
    fixed = {name: _storable(getattr(event, name)) for name in _FIELDS}
    if all(fixed[name] is getattr(event, name) for name in _FIELDS):
        return event
    return AlertEvent(**fixed)


def _storable(value: Any) -> Any:
    """``value`` itself when it needs nothing replaced, else a fixed copy."""
    if isinstance(value, str):
        return text_storable(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        items = [(_storable(k), _storable(v)) for k, v in value.items()]
        if all(k2 is k and v2 is v for (k2, v2), (k, v) in zip(items, value.items(), strict=True)):
            return value
        return dict(items)
    if isinstance(value, list):
        fixed = [_storable(v) for v in value]
        return value if all(a is b for a, b in zip(fixed, value, strict=True)) else fixed
    return value



def event_from_json(text: str) -> AlertEvent:
    data = json.loads(text)
    event = AlertEvent(**{name: data[name] for name in _FIELDS if name in data})
    # Events queued by a version before event_storable existed may hold what the
    # database refuses; the same cheap look as event_to_json's finds them.
    if "\\u" in text and _UNSTORABLE_ESCAPE.search(text) or "NaN" in text or "Infinity" in text:
        event = event_storable(event)
    return event
