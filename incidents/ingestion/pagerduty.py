"""PagerDuty Events API v2 compatible adapter (alert events and change events).

Field names, limits and answers follow PagerDuty's "Send an Alert Event" and "Send a
Change Event" documentation, so a tool (or the ``pagerduty`` client library) that
talks to PagerDuty works unchanged when pointed at ircore.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from incidents.events import AlertEvent, severity_from_text
from incidents.ingestion.common import InvalidEvent, render_details
from incidents.models import AlertAction

EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255
# PD-CEF fields that become labels, so triage rules can match them.
LABEL_FIELDS = ("component", "group", "class")

STATUS_FOR_CODE = {
    400: "invalid event",
    404: "invalid event",
    413: "invalid event",
    429: "throttle event",
}


def error_body(status: int, message: str, errors: list[str]) -> dict[str, Any]:
    """The shape PagerDuty answers with, which clients log as-is."""
    body: dict[str, Any] = {"status": STATUS_FOR_CODE.get(status, "error"), "message": message}
    if status < 500:
        body["errors"] = errors or [message]
    return body


def routing_key_of(data: dict[str, Any]) -> str:
    key = data.get("routing_key")
    if key is None or (isinstance(key, str) and not key.strip()):
        raise InvalidEvent(["'routing_key' is missing or blank"])
    if not isinstance(key, str):
        raise InvalidEvent(["'routing_key' must be a string"])
    return key.strip()


def _optional_string(obj: dict[str, Any], key: str, path: str, errors: list[str], *,
                     max_length: int | None = None) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(f"'{path}' must be a string")
        return ""
    if max_length is not None and len(value) > max_length:
        errors.append(f"'{path}' is longer than {max_length} characters")
    return value


def _required_string(obj: dict[str, Any], key: str, path: str, errors: list[str], *,
                     max_length: int | None = None) -> str:
    if obj.get(key) is None or (isinstance(obj.get(key), str) and not obj[key].strip()):
        errors.append(f"'{path}' is missing or blank")
        return ""
    return _optional_string(obj, key, path, errors, max_length=max_length).strip()


def _timestamp(obj: dict[str, Any], path: str, errors: list[str]) -> str:
    value = _optional_string(obj, "timestamp", path, errors)
    if value:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            errors.append(f"'{path}' is not an ISO 8601 timestamp")
    return value


def _links(data: dict[str, Any], errors: list[str]) -> list[dict[str, str]]:
    raw = data.get("links")
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append("'links' must be an array of objects")
        return []
    links = []
    for i, link in enumerate(raw):
        if not isinstance(link, dict):
            errors.append(f"'links[{i}]' must be an object with 'href'")
            continue
        href = _required_string(link, "href", f"links[{i}].href", errors)
        text = _optional_string(link, "text", f"links[{i}].text", errors)
        if href:
            links.append({"href": href, "text": text or href})
    return links


def _images(data: dict[str, Any], errors: list[str]) -> list[dict[str, str]]:
    raw = data.get("images")
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append("'images' must be an array of objects")
        return []
    images = []
    for i, image in enumerate(raw):
        if not isinstance(image, dict):
            errors.append(f"'images[{i}]' must be an object with 'src'")
            continue
        src = _required_string(image, "src", f"images[{i}].src", errors)
        href = _optional_string(image, "href", f"images[{i}].href", errors)
        alt = _optional_string(image, "alt", f"images[{i}].alt", errors)
        if src:
            images.append({"href": href or src, "text": f"Image: {alt or src}"})
    return images


def event_from(data: dict[str, Any]) -> AlertEvent:
    """Validate one alert event (``/v2/enqueue``); every problem is reported at once."""
    errors: list[str] = []
    action = data.get("event_action")
    if action is None:
        errors.append("'event_action' is missing; use trigger, acknowledge or resolve")
    elif action not in EVENT_ACTIONS:
        errors.append(f"'event_action' must be one of trigger, acknowledge, resolve; got {action!r}")
    dedup_key = _optional_string(data, "dedup_key", "dedup_key", errors, max_length=DEDUP_KEY_MAX)
    if action in ("acknowledge", "resolve") and not dedup_key.strip() and "dedup_key" not in str(errors):
        errors.append(f"'dedup_key' is required when event_action is {action}")
    payload = data.get("payload")
    if action == "trigger" or (payload is not None and action in (None, "trigger")):
        event = _trigger_fields(payload, errors)
    else:
        # PagerDuty ignores the payload of acknowledge/resolve events; so do we,
        # beyond using its summary (if any) to label the stored alert.
        event = AlertEvent()
        if isinstance(payload, dict) and isinstance(payload.get("summary"), str):
            event.summary = payload["summary"].strip()[:SUMMARY_MAX]
    links = _links(data, errors) + _images(data, errors)
    client = _optional_string(data, "client", "client", errors)
    client_url = _optional_string(data, "client_url", "client_url", errors)
    if client_url:
        links.append({"href": client_url, "text": f"View in {client}" if client else client_url})
    if errors:
        raise InvalidEvent(errors)
    event.action = str(action)
    event.dedup_key = dedup_key.strip()
    event.links = links
    event.payload = data
    if not event.summary:
        event.summary = f"{action.capitalize()} event for {event.dedup_key}"
    if client and not event.source:
        event.source = client
    return event


def _trigger_fields(payload: Any, errors: list[str]) -> AlertEvent:
    if payload is None:
        errors.append("'payload' is required when event_action is trigger")
        return AlertEvent()
    if not isinstance(payload, dict):
        errors.append("'payload' must be an object")
        return AlertEvent()
    summary = _required_string(payload, "summary", "payload.summary", errors, max_length=SUMMARY_MAX)
    source = _required_string(payload, "source", "payload.source", errors, max_length=255)
    severity_text = payload.get("severity")
    severity = None
    if severity_text is None or severity_text == "":
        errors.append("'payload.severity' is missing; use critical, error, warning or info")
    elif severity_text not in SEVERITIES:
        errors.append(
            f"'payload.severity' must be one of critical, error, warning, info; got {severity_text!r}"
        )
    else:
        severity = severity_from_text(severity_text)
    timestamp = _timestamp(payload, "payload.timestamp", errors)
    labels = {}
    for key in LABEL_FIELDS:
        value = _optional_string(payload, key, f"payload.{key}", errors, max_length=255)
        if value:
            labels[key] = value
    details = render_details(payload.get("custom_details"))
    if timestamp:
        details = f"{details}\n\nEvent timestamp: {timestamp}".strip()
    return AlertEvent(
        action=AlertAction.TRIGGER,
        summary=summary,
        details=details,
        severity=severity or "SEV3",
        source=source,
        labels=labels,
    )


def change_event_from(data: dict[str, Any]) -> dict[str, Any]:
    """Validate a change event (``/v2/change/enqueue``); returns the arguments of
    ``change_event_record``."""
    errors: list[str] = []
    payload = data.get("payload")
    summary = source = timestamp = ""
    details: Any = {}
    if payload is None:
        errors.append("'payload' is required")
    elif not isinstance(payload, dict):
        errors.append("'payload' must be an object")
    else:
        summary = _required_string(payload, "summary", "payload.summary", errors, max_length=SUMMARY_MAX)
        source = _optional_string(payload, "source", "payload.source", errors, max_length=255)
        timestamp = _timestamp(payload, "payload.timestamp", errors)
        details = payload.get("custom_details") or {}
    links = _links(data, errors)
    if errors:
        raise InvalidEvent(errors)
    if not isinstance(details, dict):
        details = {"details": details}
    if timestamp:
        details = {**details, "timestamp": timestamp}
    return {"summary": summary, "source": source, "details": details, "links": links}
