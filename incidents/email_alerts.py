"""Email integrations: mail to ``<integration token>@<INBOUND_EMAIL_DOMAIN>`` becomes
an alert (registered with ircore's inbound registry from IncidentsConfig.ready()).

The subject is the summary, the text body (or the HTML one as text) the details; the
sender, date, recipients and attachment names are kept in the alert's labels and
payload. Per-integration options (``Integration.options``):

- ``dedup``: ``subject`` (default: the normalized subject, i.e. without Re:/Fwd:
  prefixes, ticket tags such as ``[#1234]`` and state words such as PROBLEM/RECOVERY,
  so the trigger and the recovery mail share a key) or ``regex``, with
  ``dedup_regex``: a pattern searched in the subject, then the body; its ``key`` group
  (or first group, or whole match) is the key.
- ``resolve_pattern``: a regex on the subject that turns the mail into a resolve
  (default: RESOLVED, OK, UP, Recovered, Recovery); ``""`` disables it.
  ``resolve_in_body: true`` also searches the body.
- ``creation``: ``per_subject`` (default: one open incident per key), ``per_email``
  (every mail opens its own incident) or ``when_none_open`` (a mail opens an
  incident only when none from this integration is open; otherwise it joins it).
- ``severity``: SEV1-SEV4 for these alerts (default SEV3); triage rules apply after.
- ``allowed_senders``: shell patterns on the From address (``["*@monitoring.example.com"]``);
  when set, mail from anyone else is refused and written to the security log.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from django.db.models import Exists, OuterRef

from incidents.events import AlertEvent, severity_from_text
from incidents.models import Alert, AlertAction, Incident, Integration, Severity
from incidents.services import alert_ingest
from ircore.inbound import InboundRefused, ParsedEmail, auto_reply_reason, register_recipient
from ircore.models import InboundMessage, SecurityLogEntry

DEFAULT_RESOLVE_PATTERN = r"\b(?:RESOLVED|OK|UP)\b|(?i:\b(?:resolved|recovered|recovery)\b)"
MAX_DETAILS = 20_000

_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|tr|antw|rif|enc)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
# Bracketed tags that carry a number ([#1234], [Ticket#2024], [INC-42], (Case 77)).
_TICKET_TAG = re.compile(r"\[[^\]\n]*\d[^\]\n]*\]|\((?:ticket|case|req)[^)\n]*\d[^)\n]*\)", re.I)
_STATE_WORDS = re.compile(
    r"\b(?:problem|recovery|recovered|resolved|firing|triggered|critical|warning|down|up|ok)\b", re.I
)
_PUNCT = re.compile(r"[\s*:!\-–—|\[\]()]+")


class OptionError(ValueError):
    pass


def subject_clean(subject: str) -> str:
    """The subject without reply/forward prefixes: the alert's summary."""
    return " ".join(_REPLY_PREFIX.sub("", subject or "").split())


def subject_normalize(subject: str) -> str:
    """The subject as a dedup key: no prefixes, ticket tags or state words, lower case."""
    text = _TICKET_TAG.sub(" ", subject_clean(subject))
    text = _STATE_WORDS.sub(" ", text)
    text = _PUNCT.sub(" ", text).strip().lower()
    return " ".join(text.split())[:200]


def _compile(pattern: str, name: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise OptionError(f"options.{name} is not a valid regular expression: {exc}") from None


def options_validate(options: dict[str, Any]) -> list[str]:
    """Problems with an email integration's options, as messages (empty: fine)."""
    errors: list[str] = []
    dedup = options.get("dedup", "subject")
    if dedup not in ("subject", "regex"):
        errors.append("options.dedup must be 'subject' or 'regex'")
    if dedup == "regex" and not options.get("dedup_regex"):
        errors.append("options.dedup_regex is required when options.dedup is 'regex'")
    for name in ("dedup_regex", "resolve_pattern"):
        if options.get(name):
            try:
                _compile(str(options[name]), name)
            except OptionError as exc:
                errors.append(str(exc))
    if options.get("creation", "per_subject") not in ("per_subject", "per_email", "when_none_open"):
        errors.append("options.creation must be 'per_subject', 'per_email' or 'when_none_open'")
    if "severity" in options and severity_from_text(str(options["severity"])) is None:
        errors.append("options.severity must be one of SEV1-SEV4")
    senders = options.get("allowed_senders", [])
    if not isinstance(senders, list) or not all(isinstance(p, str) and p for p in senders):
        errors.append("options.allowed_senders must be a list of address patterns")
    return errors


def _dedup_key(options: dict[str, Any], subject: str, body: str) -> str:
    if options.get("dedup") == "regex" and options.get("dedup_regex"):
        pattern = _compile(str(options["dedup_regex"]), "dedup_regex")
        for text in (subject, body):
            match = pattern.search(text)
            if match:
                groups = match.groupdict()
                value = groups.get("key") or (match.group(1) if match.groups() else match.group(0))
                if value:
                    return " ".join(str(value).split()).lower()[:200]
    return subject_normalize(subject) or "(no subject)"


def _is_resolve(options: dict[str, Any], subject: str, body: str) -> bool:
    pattern = options.get("resolve_pattern", DEFAULT_RESOLVE_PATTERN)
    if not pattern:
        return False
    compiled = _compile(str(pattern), "resolve_pattern")
    if compiled.search(subject):
        return True
    return bool(options.get("resolve_in_body")) and bool(compiled.search(body))


def email_event(*, integration: Integration, parsed: ParsedEmail, message_key: str = "") -> AlertEvent:
    """The alert an email stands for (pure: no database access)."""
    options = integration.options or {}
    subject = parsed.subject
    body = parsed.body_text.strip()
    key = _dedup_key(options, subject, body)
    creation = options.get("creation", "per_subject")
    resolve = _is_resolve(options, subject, body)
    if creation == "when_none_open":
        key = f"email:{integration.pk}"
    elif creation == "per_email" and not resolve:
        key = f"{key}#{message_key[:16]}"
    severity = severity_from_text(str(options.get("severity", ""))) or Severity.SEV3
    attachments = [a.filename for a in parsed.attachments]
    labels = {"from": parsed.from_address}
    if parsed.from_name:
        labels["from_name"] = parsed.from_name
    if attachments:
        labels["attachments"] = ", ".join(attachments)[:500]
    return AlertEvent(
        action=AlertAction.RESOLVE if resolve else AlertAction.TRIGGER,
        summary=subject_clean(subject) or "(no subject)",
        details=body[:MAX_DETAILS],
        severity=severity,
        dedup_key=key,
        source=parsed.from_address,
        labels=labels,
        payload={"email": {
            "from": parsed.from_address, "from_name": parsed.from_name, "to": parsed.to, "cc": parsed.cc,
            "subject": subject, "date": parsed.date.isoformat() if parsed.date else None,
            "message_id": parsed.message_id,
            "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size}
                            for a in parsed.attachments],
        }},
    )


def _per_email_open_keys(integration: Integration, key: str) -> list[str]:
    """In per-email mode every mail has its own key (``<subject key>#<message>``); a
    recovery mail resolves all of them."""
    prefix = key + "#"
    return list(
        Incident.objects.filter(service__team_id=integration.service.team_id, dedup_key__startswith=prefix)
        .exclude(status=Incident.Status.RESOLVED)
        .filter(Exists(Alert.objects.filter(incident=OuterRef("pk"), integration=integration)))
        .values_list("dedup_key", flat=True)
    )


def _integration(local: str) -> Integration | None:
    return (Integration.objects.select_related("service")
            .filter(token=local, kind=Integration.Kind.EMAIL).first())


def recipient_matches(local: str) -> bool:
    return Integration.objects.filter(token=local, kind=Integration.Kind.EMAIL, enabled=True).exists()


def handle_email(*, parsed: ParsedEmail, recipient: str, local: str, message: InboundMessage) -> str:
    integration = _integration(local)
    if integration is None or not integration.enabled:
        raise InboundRefused(SecurityLogEntry.Reason.UNKNOWN_RECIPIENT,
                             f"no enabled email integration for {recipient}")
    allowed = (integration.options or {}).get("allowed_senders") or []
    allowed = [allowed] if isinstance(allowed, str) else allowed
    if allowed and not any(fnmatch.fnmatchcase(parsed.from_address, str(p).lower()) for p in allowed):
        raise InboundRefused(SecurityLogEntry.Reason.NOT_ALLOWED,
                             f"{parsed.from_address} is not in the allowed senders of {integration}")
    automatic = auto_reply_reason(parsed, strict=False)
    if automatic:
        raise InboundRefused(SecurityLogEntry.Reason.AUTO_REPLY, automatic)
    try:
        event = email_event(integration=integration, parsed=parsed, message_key=message.message_key)
    except OptionError as exc:
        # A broken option must not lose the alert: page with the subject as the key.
        event = email_event(integration=Integration(pk=integration.pk, options={}), parsed=parsed,
                            message_key=message.message_key)
        event.details = f"[ircore: {exc}; default options used]\n\n{event.details}"
    received = message.received_at
    if (event.action == AlertAction.RESOLVE and (integration.options or {}).get("creation") == "per_email"):
        keys = _per_email_open_keys(integration, event.dedup_key) or [event.dedup_key]
        outcomes = []
        for key in keys:
            event.dedup_key = key
            outcomes.append(alert_ingest(integration=integration, event=event, received_at=received).message)
        return "; ".join(outcomes)
    result = alert_ingest(integration=integration, event=event, received_at=received)
    return result.message


def register() -> None:
    register_recipient(name="incidents.email_integration", matcher=recipient_matches, handler=handle_email)
