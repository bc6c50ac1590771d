"""Triage rule evaluation: pure functions over an AlertEvent, no database writes."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from incidents.events import AlertEvent
from incidents.models import TriageRule

_PLACEHOLDER = re.compile(r"\{(source|summary|labels\[([^\]{}]+)\])\}")


def keywords_of(rule: TriageRule) -> list[str]:
    raw = rule.match_keywords.replace(",", "\n")
    return [kw.strip().lower() for kw in raw.splitlines() if kw.strip()]


def rule_matches(rule: TriageRule, event: AlertEvent, *, service_id: int, integration_id: int | None) -> bool:
    if rule.match_service_id and rule.match_service_id != service_id:
        return False
    if rule.match_integration_id and rule.match_integration_id != integration_id:
        return False
    if rule.match_severity and rule.match_severity != event.severity:
        return False
    if rule.match_source and not fnmatch.fnmatchcase(event.source.lower(), rule.match_source.lower()):
        return False
    for key, pattern in (rule.match_labels or {}).items():
        value = event.labels.get(key)
        if value is None or not fnmatch.fnmatchcase(str(value), str(pattern)):
            return False
    keywords = keywords_of(rule)
    if keywords:
        text = f"{event.summary}\n{event.details}".lower()
        if not any(kw in text for kw in keywords):
            return False
    return True


def render_dedup_key(template: str, event: AlertEvent) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "source":
            return event.source
        if match.group(1) == "summary":
            return event.summary
        return str(event.labels.get(match.group(2), ""))

    return _PLACEHOLDER.sub(replace, template)[:255]


@dataclass
class TriageResult:
    applied: list[TriageRule] = field(default_factory=list)
    route_to_service_id: int | None = None
    suppress: bool = False
    severity_set: bool = False
    priority_set: bool = False


def triage_apply(
    rules: Iterable[TriageRule], event: AlertEvent, *, service_id: int, integration_id: int | None
) -> TriageResult:
    """Apply matching rules to ``event`` in place, in order; return what was done."""
    result = TriageResult()
    for rule in rules:
        if not rule.enabled or not rule_matches(
            rule, event, service_id=service_id, integration_id=integration_id
        ):
            continue
        result.applied.append(rule)
        if rule.set_severity:
            event.severity = rule.set_severity
            result.severity_set = True
        if rule.set_priority:
            event.priority = rule.set_priority
            result.priority_set = True
        if rule.set_dedup_key:
            event.dedup_key = render_dedup_key(rule.set_dedup_key, event)
        if rule.route_to_service_id:
            result.route_to_service_id = rule.route_to_service_id
        if rule.suppress:
            result.suppress = True
        if not rule.continue_processing:
            break
    return result
