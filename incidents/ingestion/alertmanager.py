"""Prometheus Alertmanager (webhook version 4) and Grafana alerting webhooks.

Grafana's unified alerting webhook is Alertmanager's payload with extra fields
(orgId, title, state, message; per alert silenceURL, dashboardURL, panelURL,
valueString, values), so both go through one parser.

Two modes, chosen by the integration option ``group_by``:

- ``"alert"`` (default): each entry of ``alerts`` is an event keyed by its
  fingerprint; ``firing`` triggers, ``resolved`` resolves.
- ``"group"``: one incident per Alertmanager group, keyed by ``groupKey``. A
  notification becomes one event; the group resolves only when the notification's
  own ``status`` is ``resolved``, which Alertmanager sets once every alert of the
  group is resolved.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from incidents.events import AlertEvent, severity_from_text
from incidents.ingestion.common import InvalidEvent
from incidents.models import AlertAction, Integration, Severity

STATUSES = {"firing": AlertAction.TRIGGER, "resolved": AlertAction.RESOLVE}
SUPPORTED_VERSION = "4"
SUMMARY_MAX = 1024
KEY_MAX = 255
# Annotations shown as the summary / first paragraph rather than in the list.
_TEXT_ANNOTATIONS = ("summary", "description", "message")
_SEVERITY_RANK = {Severity.SEV1: 1, Severity.SEV2: 2, Severity.SEV3: 3, Severity.SEV4: 4}


def _path(prefix: str, key: str) -> str:
    """A field's path in error messages: ``prefix`` is its object's ("" at the top level).
    Built only on error: the validators run for every alert of every notification."""
    return f"{prefix}.{key}" if prefix else key


def _string_map(obj: dict[str, Any], key: str, prefix: str, errors: list[str], *,
                required: bool) -> dict[str, str]:
    value = obj.get(key)
    if type(value) is dict:
        try:
            "".join(value.values())  # a TypeError unless every value is a string: nearly every label set
            return dict(value)
        except TypeError:
            pass  # reported value by value below
    if value is None:
        if required:
            errors.append(f"'{_path(prefix, key)}' is required (an object of label names to values)")
        return {}
    if not isinstance(value, dict):
        errors.append(f"'{_path(prefix, key)}' must be an object of names to string values")
        return {}
    result = {}
    for name, item in value.items():
        if isinstance(item, str):
            result[name] = item
        elif isinstance(item, int | float) and not isinstance(item, bool):
            result[name] = str(item)
        else:
            errors.append(f"'{_path(prefix, key)}.{name}' must be a string")
    return result


def _optional_string(obj: dict[str, Any], key: str, prefix: str, errors: list[str]) -> str:
    """``obj[key]`` if it is a string, "" if absent or not a string (an error then)."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(f"'{_path(prefix, key)}' must be a string")
        return ""
    return value


def _status(obj: dict[str, Any], prefix: str, errors: list[str]) -> str:
    status = obj.get("status")
    if type(status) is str and status in STATUSES:
        return status
    if status is None:
        errors.append(f"'{_path(prefix, 'status')}' is required (firing or resolved)")
    else:  # a list would not even be hashable for the look-up
        errors.append(f"'{_path(prefix, 'status')}' must be firing or resolved; got {status!r}")
    return ""


def _fingerprint(labels: dict[str, str]) -> str:
    # Alertmanager's own fingerprint is a hash of the label set; this stands in for
    # senders (older Grafana) that do not send one, and is stable across notifications.
    digest = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()
    return digest[:16]


def _key(value: str, prefix: str) -> str:
    return value if len(value) <= KEY_MAX else f"{prefix}:{hashlib.sha256(value.encode()).hexdigest()}"


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


# Links an alert entry may carry, and how they are labelled.
_URL_FIELDS = (("generatorURL", "Source"), ("silenceURL", "Silence"), ("dashboardURL", "Dashboard"),
               ("panelURL", "Panel"), ("imageURL", "Image"))


class _Alert:
    """One validated entry of ``alerts``."""

    def __init__(self, raw: dict[str, Any], index: int, errors: list[str], *, grafana: bool):
        path = f"alerts[{index}]"
        self.raw = raw
        self.status = _status(raw, path, errors)
        self.labels = _string_map(raw, "labels", path, errors, required=True)
        self.annotations = _string_map(raw, "annotations", path, errors, required=False)
        fingerprint = raw.get("fingerprint")
        if fingerprint is None or fingerprint == "":
            if grafana:
                fingerprint = _fingerprint(self.labels)
            else:
                errors.append(f"'{path}.fingerprint' is required")
                fingerprint = ""
        elif not isinstance(fingerprint, str):
            errors.append(f"'{path}.fingerprint' must be a string")
            fingerprint = ""
        self.fingerprint = fingerprint
        self.starts_at = _optional_string(raw, "startsAt", path, errors)
        self.ends_at = _optional_string(raw, "endsAt", path, errors)
        self.urls: list[tuple[str, str]] = []
        for field, text in _URL_FIELDS:
            url = _optional_string(raw, field, path, errors)
            if url and _is_url(url):
                self.urls.append((url, text))
        runbook = self.annotations.get("runbook_url", "")
        if _is_url(runbook):
            self.urls.append((runbook, "Runbook"))
        self.value_string = _optional_string(raw, "valueString", path, errors)
        self.values = raw.get("values") if isinstance(raw.get("values"), dict) else None
        self.summary = self._summary()

    def _summary(self) -> str:
        text = (self.annotations.get("summary") or self.annotations.get("description")
                or self.labels.get("alertname") or f"Alert {self.fingerprint}")
        return " ".join(text.split())[:SUMMARY_MAX]

    @property
    def severity(self) -> str:
        return severity_from_text(self.labels.get("severity")) or Severity.SEV3

    @property
    def source(self) -> str:
        return (self.labels.get("instance") or self.labels.get("job") or "")[:255]

    def details(self) -> str:
        parts = []
        description = self.annotations.get("description", "")
        if description and description != self.summary:
            parts.append(description)
        message = self.annotations.get("message", "")
        if message:
            parts.append(message)
        if self.value_string:
            parts.append(f"Value: {self.value_string}")
        elif self.values:
            parts.append("Values: " + ", ".join(f"{k}={v}" for k, v in self.values.items()))
        other = {k: v for k, v in self.annotations.items() if k not in _TEXT_ANNOTATIONS}
        if other:
            parts.append("Annotations:\n" + "\n".join(f"  {k}: {v}" for k, v in other.items()))
        if self.labels:
            parts.append("Labels:\n" + "\n".join(f"  {k}: {v}" for k, v in self.labels.items()))
        timing = f"Started: {self.starts_at}" if self.starts_at else ""
        if self.status == "resolved" and self.ends_at:
            timing = f"{timing}\nEnded: {self.ends_at}".strip()
        if timing:
            parts.append(timing)
        return "\n\n".join(parts)


def _links(urls: list[tuple[str, str]], limit: int = 20) -> list[dict[str, str]]:
    seen: set[str] = set()
    links = []
    for href, text in urls:
        if href not in seen and len(links) < limit:
            seen.add(href)
            links.append({"href": href, "text": text})
    return links


def events_from(integration: Integration, data: dict[str, Any], *, grafana: bool) -> list[AlertEvent]:
    """Validate a notification and turn it into events; unknown fields are ignored,
    every problem with known ones is reported at once."""
    errors: list[str] = []
    version = data.get("version")
    if not grafana and version is not None and str(version) != SUPPORTED_VERSION:
        errors.append(f"'version' {version!r} is not supported; ircore reads webhook version 4")
    status = _status(data, "", errors)
    raw_alerts = data.get("alerts")
    alerts: list[_Alert] = []
    if raw_alerts is None:
        errors.append("'alerts' is required (an array of alerts)")
    elif not isinstance(raw_alerts, list):
        errors.append("'alerts' must be an array")
    elif not raw_alerts:
        errors.append("'alerts' is empty; a notification carries at least one alert")
    else:
        for i, raw in enumerate(raw_alerts):
            if not isinstance(raw, dict):
                errors.append(f"'alerts[{i}]' must be an object")
                continue
            alerts.append(_Alert(raw, i, errors, grafana=grafana))
    group_key = _optional_string(data, "groupKey", "", errors)
    external_url = _optional_string(data, "externalURL", "", errors)
    common_labels = _string_map(data, "commonLabels", "", errors, required=False)
    common_annotations = _string_map(data, "commonAnnotations", "", errors, required=False)
    group_labels = _string_map(data, "groupLabels", "", errors, required=False)
    title = _optional_string(data, "title", "", errors) if grafana else ""
    by_group = (integration.options or {}).get("group_by") == "group"
    if by_group and not group_key:
        errors.append("'groupKey' is required: this integration makes one incident per group")
    if errors:
        raise InvalidEvent(errors)

    source_name = "Grafana" if grafana else "Alertmanager"
    external = [(external_url, source_name)] if _is_url(external_url) else []
    if by_group:
        return [_group_event(data, alerts, status, group_key, common_labels, common_annotations,
                             group_labels, title, external)]
    # Each event keeps the notification minus its other alerts: the event as received,
    # without multiplying a large notification by its alert count.
    context = {k: v for k, v in data.items() if k != "alerts"} if len(alerts) > 1 else None
    return [
        AlertEvent(
            action=STATUSES[alert.status],
            summary=alert.summary,
            details=alert.details(),
            severity=alert.severity,
            dedup_key=_key(alert.fingerprint, "fingerprint"),
            source=alert.source,
            labels=alert.labels,
            links=_links(alert.urls + external),
            payload=data if context is None else {**context, "alerts": [alert.raw]},
        )
        for alert in alerts
    ]


def _group_event(data: dict[str, Any], alerts: list[_Alert], status: str, group_key: str,
                 common_labels: dict[str, str], common_annotations: dict[str, str],
                 group_labels: dict[str, str], title: str,
                 external: list[tuple[str, str]]) -> AlertEvent:
    firing = [a for a in alerts if a.status == "firing"]
    if len(alerts) == 1:
        summary = alerts[0].summary
    else:
        summary = (common_annotations.get("summary") or title or
                   f"[{status.upper()}:{len(firing) or len(alerts)}] "
                   + " ".join(f"{k}={v}" for k, v in group_labels.items()))
    severities = [a.severity for a in (firing or alerts)]
    severity = min(severities, key=_SEVERITY_RANK.__getitem__)
    details = "\n\n".join(
        f"[{a.status.upper()}] {a.summary}\n{a.details()}" for a in alerts
    )
    truncated = data.get("truncatedAlerts")
    if isinstance(truncated, int) and truncated > 0:
        details += f"\n\n({truncated} more alert(s) were left out by the sender.)"
    labels = common_labels or group_labels
    return AlertEvent(
        action=STATUSES[status],
        summary=" ".join(summary.split())[:SUMMARY_MAX],
        details=details,
        severity=severity,
        dedup_key=_key(group_key, "groupKey"),
        source=(labels.get("instance") or labels.get("job") or "")[:255],
        labels=labels,
        links=_links(external + [u for a in alerts for u in a.urls]),
        payload=data,
    )
