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
_HEAD = _FIELDS[:-1]  # what the queue keeps as the event's JSON; the payload has a column of its own


class RawJSON(str):
    """A value as JSON text, written to a JSON column as it is: the payload of an event
    the applier only groups, which it never needs to read, so it neither decodes it from
    the queue nor encodes it again for the alert (``payload_decoded`` when it does)."""


def event_encode(event: AlertEvent, *, payload_text: str | None = None) -> tuple[AlertEvent, str, str]:
    """The event as the queue stores it: the event, its JSON without the payload
    (``QueuedEvent.event``) and the payload's JSON (``QueuedEvent.payload``), always
    something the applier can store (``event_storable``), so an accepted event never gets
    stuck. ``payload_text``: the payload's JSON as received (ASCII), if the caller has it."""
    text = _encoder.encode(_head(event))
    payload = payload_text if payload_text is not None else _encoder.encode(event.payload)
    if _may_be_unstorable(text) or _may_be_unstorable(payload):
        event = event_storable(event)
        text = _encoder.encode(_head(event))
        payload = _encoder.encode(event.payload)
    return event, text, payload


# One encoder for every event (json.dumps with ``default`` builds a new one per call).
_encoder = json.JSONEncoder(default=str)


def _head(event: AlertEvent) -> dict[str, Any]:
    """The event's fields but its payload (``_HEAD``), spelt out: this runs for every event."""
    return {"action": event.action, "summary": event.summary, "details": event.details,
            "severity": event.severity, "priority": event.priority, "dedup_key": event.dedup_key,
            "source": event.source, "labels": event.labels, "links": event.links}


def event_storable(event: AlertEvent) -> AlertEvent:
    """The event with what no database column can hold replaced (``json_storable``);
    the same event when there is nothing to replace."""
    payload_decoded(event)
    fixed = {name: json_storable(getattr(event, name)) for name in _FIELDS}
    if all(fixed[name] is getattr(event, name) for name in _FIELDS):
        return event
    return AlertEvent(**fixed)


# \u0000, or a high surrogate not followed by a low one, or a low one not after a high one.
# Case-insensitive: json.dumps writes lower-case hex digits, a sender's JSON may not.
_UNSTORABLE_ESCAPE = re.compile(
    r"\\u0000|\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}",
    re.IGNORECASE,
)


def _may_be_unstorable(text: str) -> bool:
    """Whether an event's JSON (ASCII: as json.dumps writes it, or a body that was all
    ASCII) may hold a NUL, a lone surrogate (only as escapes) or a non-finite number
    (the bare words NaN / Infinity). The common event has no escape and neither word:
    three substring searches."""
    return bool("\\u" in text and _UNSTORABLE_ESCAPE.search(text)) or "NaN" in text or "Infinity" in text


def event_from_json(text: str, payload_text: str = "", *, raw_payload: bool = False) -> AlertEvent:
    """The queued event (``QueuedEvent.event`` and ``.payload``); its payload as
    ``RawJSON`` if ``raw_payload``. Events queued before the payload had its own column
    carry it in ``text``."""
    data = json.loads(text)
    event = AlertEvent(**{name: data[name] for name in _FIELDS if name in data})
    if payload_text:
        event.payload = RawJSON(payload_text) if raw_payload else json.loads(payload_text)
    # Events queued by a version before event_storable existed may hold what the
    # database refuses.
    if _may_be_unstorable(text) or (payload_text and _may_be_unstorable(payload_text)):
        return event_storable(event)
    return event


def payload_decoded(event: AlertEvent) -> AlertEvent:
    """The event with its payload as a value (decoded in place if it was ``RawJSON``)."""
    if isinstance(event.payload, RawJSON):
        event.payload = json.loads(event.payload)
    return event
