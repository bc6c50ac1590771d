"""Generic webhook: JSON object or form fields.

Fields: summary (required), details, severity, dedup_key, action, source, links, labels.
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict

from incidents.events import AlertEvent, severity_from_text
from incidents.ingestion.common import InvalidEvent, json_strict_loads, parse_json_object, render_details
from incidents.models import AlertAction, Integration, Priority

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Django's Choices.values builds its list anew on every access (4.5 us): these are checked
# for every event.
_ACTIONS = frozenset(AlertAction.values)
_PRIORITIES = frozenset(Priority.values)


def is_json(content_type: str) -> bool:
    """Whether parse_body reads a body of this type as JSON (anything but a form)."""
    return not content_type.startswith(_FORM_TYPES)


def parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    if not is_json(content_type):
        if content_type.startswith("multipart/"):
            raise InvalidEvent(["multipart bodies are not accepted; send JSON or url-encoded form"])
        try:
            form = QueryDict(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidEvent(["form body is not valid UTF-8"], "Malformed form") from None
        data: dict[str, Any] = {key: form.get(key) for key in form}
        for key in ("labels", "links"):
            if isinstance(data.get(key), str):
                try:
                    data[key] = json_strict_loads(data[key])
                except ValueError:
                    raise InvalidEvent([f"'{key}' must be JSON when sent as a form field"]) from None
        return data
    return parse_json_object(body)


def _string(data: dict[str, Any], key: str, errors: list[str], *, max_length: int) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        errors.append(f"'{key}' must be a string")
        return ""
    if len(value) > max_length:
        errors.append(f"'{key}' is longer than {max_length} characters")
    return value


def events_from(integration: Integration, data: dict[str, Any]) -> list[AlertEvent]:
    errors: list[str] = []
    summary = _string(data, "summary", errors, max_length=1024).strip()
    if "summary" not in data or (not summary and "'summary' must be a string" not in errors):
        errors.append("'summary' is required")
    details = render_details(data.get("details"))
    action = _string(data, "action", errors, max_length=20).strip().lower() or AlertAction.TRIGGER
    if action not in _ACTIONS:
        errors.append(f"'action' must be one of {', '.join(AlertAction.values)}, got {action!r}")
    severity_text = _string(data, "severity", errors, max_length=20)
    severity = severity_from_text(severity_text) if severity_text else "SEV3"
    if severity is None:
        errors.append(
            f"'severity' {severity_text!r} is not recognised; use SEV1-SEV4 or "
            "critical, error, warning, info"
        )
    priority = _string(data, "priority", errors, max_length=2).upper()
    if priority and priority not in _PRIORITIES:
        errors.append(f"'priority' must be one of {', '.join(Priority.values)}")
    dedup_key = _string(data, "dedup_key", errors, max_length=255)
    if action != AlertAction.TRIGGER and not dedup_key:
        errors.append(f"'dedup_key' is required when action is {action}")
    source = _string(data, "source", errors, max_length=255)
    labels = data.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in labels.items()
    ):
        errors.append("'labels' must be an object of string keys to plain values")
        labels = {}
    links = data.get("links") or []
    if isinstance(links, str):
        links = [links]
    if not isinstance(links, list) or not all(
        isinstance(link, str) or (isinstance(link, dict) and isinstance(link.get("href"), str))
        for link in links
    ):
        errors.append("'links' must be a list of URLs or of {\"href\": ..., \"text\": ...} objects")
        links = []
    if errors:
        raise InvalidEvent(errors)
    return [
        AlertEvent(
            action=action,
            summary=summary,
            details=details,
            severity=severity or "SEV3",
            priority=priority,
            dedup_key=dedup_key,
            source=source,
            labels={k: str(v) for k, v in labels.items()},
            links=[{"href": link} if isinstance(link, str) else link for link in links],
            payload=data,
        )
    ]
