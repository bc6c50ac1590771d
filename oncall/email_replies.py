"""Replies to page emails: ``reply.<signed token>@<INBOUND_EMAIL_DOMAIN>``.

Registered with ircore's inbound registry from OncallConfig.ready(). The first
meaningful line of the reply (quoted text, signatures and "On ... wrote:" stripped)
decides: ack / acknowledge / #ack, resolve / resolved / #res, escalate, unack; anything
else is a note. The action is taken through incidents.services as the person who was
paged, via email, and confirmed by a short email in the incident's thread.

Refused, with nothing changed, a security log entry and no answer (no mail loops): a
tampered or expired token, a sender other than the paged address, automatic mail.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from mailparser_reply import EmailReplyParser

from incidents.models import Incident, TimelineEntry
from incidents.services import (
    incident_acknowledge,
    incident_add_note,
    incident_escalate,
    incident_resolve,
    incident_unacknowledge,
)
from ircore.email import email_send
from ircore.inbound import InboundRefused, ParsedEmail, auto_reply_reason, register_recipient
from ircore.models import InboundMessage, SecurityLogEntry
from oncall.models_escalation import Notification
from oncall.reply_tokens import PREFIX, ReplyTokenError, reply_token_verify
from oncall.transports.email import incident_subject, incident_url, thread_root_id

log = logging.getLogger(__name__)
Reason = SecurityLogEntry.Reason
VIA = TimelineEntry.Via.EMAIL
MAX_NOTE = 5000

ACK, RESOLVE, ESCALATE, UNACK, NOTE = "ack", "resolve", "escalate", "unack", "note"
COMMANDS = {
    "ack": ACK, "acknowledge": ACK, "acknowledged": ACK, "#ack": ACK,
    "resolve": RESOLVE, "resolved": RESOLVE, "#res": RESOLVE, "#resolve": RESOLVE,
    "escalate": ESCALATE, "#escalate": ESCALATE,
    "unack": UNACK, "unacknowledge": UNACK, "#unack": UNACK,
}
_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "sv", "da", "pl"]
# Lines the reply parser may leave: our own Reply-To footer quoted without ">", and the
# "Sent from my phone" family that is a signature in all but name.
_NOISE = re.compile(r"^(sent from my \w+|get outlook for \w+|envoyé de mon \w+|von meinem \w+ gesendet)",
                    re.I)


@dataclass(frozen=True)
class Command:
    action: str
    text: str


def reply_text(parsed: ParsedEmail) -> str:
    """What the person wrote, without the quoted notification or their signature: the
    ESP's stripped text when it gave one, else mail-parser-reply on the text (or the
    HTML as text, whose blockquotes become "> " lines)."""
    if parsed.stripped_text and parsed.stripped_text.strip():
        text = parsed.stripped_text
    else:
        body = parsed.body_text
        try:
            replies = EmailReplyParser(languages=_LANGUAGES).read(text=body).replies
            text = replies[0].body if replies else body
        except Exception:  # noqa: BLE001 - the parser is regex-based; fall back to our own stripping
            text = body
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.lstrip().startswith(">"):
            # An attribution the parser did not know ("* Name <addr> [date]:" from mutt)
            # is the line ending with ":" right above the quote.
            while lines and not lines[-1].strip():
                lines.pop()
            if lines and lines[-1].rstrip().endswith(":"):
                lines.pop()
            continue
        if line.strip() in ("--", "-- ", "__") or _NOISE.match(line.strip()):
            break
        lines.append(line.rstrip())
    return "\n".join(lines).strip()


def command_parse(text: str) -> Command:
    """The first non-empty line decides; its first word, case-insensitively."""
    for line in text.splitlines():
        words = line.strip().split()
        if not words:
            continue
        word = words[0].lower().rstrip(".,!:;")
        action = COMMANDS.get(word)
        if action is not None:
            return Command(action, text)
        break
    return Command(NOTE, text)


def _who(user: object) -> str:
    return user.get_full_name() or user.get_username()  # type: ignore[attr-defined]


def _confirm(*, notification: Notification, incident: Incident, parsed: ParsedEmail, message: InboundMessage,
             line: str) -> None:
    """A short answer in the incident's thread, after commit (never for a refusal)."""
    references = " ".join(r for r in (thread_root_id(incident), parsed.message_id) if r)
    headers = {
        "Message-ID": f"<ircore-reply-{message.pk}@{settings.INBOUND_EMAIL_DOMAIN}>",
        "In-Reply-To": parsed.message_id or thread_root_id(incident),
        "References": references,
        "Auto-Submitted": "auto-replied",  # RFC 3834: autoresponders must not answer this
    }
    context = {"incident": incident, "line": line, "subject": incident_subject(incident),
               "url": incident_url(incident), "user": notification.user}

    def send() -> None:
        try:
            email_send(name="oncall-reply", to=[notification.address], context=context, headers=headers)
        except Exception:  # noqa: BLE001 - the action is done; a lost confirmation must not redo it
            log.exception("could not send the reply confirmation for %s", incident.ref)

    transaction.on_commit(send)


def _verify(local: str, parsed: ParsedEmail) -> Notification:
    try:
        token = reply_token_verify(local)
    except ReplyTokenError as exc:
        reason = Reason.EXPIRED_TOKEN if "expired" in str(exc) else Reason.BAD_TOKEN
        raise InboundRefused(reason, str(exc)) from None
    notification = (Notification.objects.select_related("incident__service", "user")
                    .filter(pk=token.notification_id).order_by().first())
    if (notification is None or notification.incident is None or notification.user is None
            or notification.kind != Notification.Kind.PAGE
            or notification.channel != Notification.Channel.EMAIL):
        raise InboundRefused(
            Reason.BAD_TOKEN, f"the token names no page email (notification {token.notification_id})"
        )
    if not notification.user.is_active:
        raise InboundRefused(Reason.NOT_ALLOWED, f"{notification.user.get_username()} is deactivated")
    if parsed.from_address != notification.address.strip().lower():
        raise InboundRefused(
            Reason.SENDER_MISMATCH,
            f"reply to the page of {notification.incident.ref} sent to {notification.address} "
            f"came from {parsed.from_address}",
        )
    return notification


def handle_reply(*, parsed: ParsedEmail, recipient: str, local: str, message: InboundMessage) -> str:
    automatic = auto_reply_reason(parsed, strict=True)
    if automatic:
        raise InboundRefused(Reason.AUTO_REPLY, automatic)
    notification = _verify(local, parsed)
    incident = notification.incident
    user = notification.user
    who = _who(user)
    if incident.status == Incident.Status.RESOLVED:
        line = f"{incident.ref} is already resolved; your reply changed nothing."
        _confirm(notification=notification, incident=incident, parsed=parsed, message=message, line=line)
        return line
    command = command_parse(reply_text(parsed))
    if command.action == ACK:
        done = incident_acknowledge(incident=incident, user=user, via=VIA)
        line = (f"{incident.ref} acknowledged by {who} via email" if done
                else f"{incident.ref} was already acknowledged; nothing changed.")
    elif command.action == RESOLVE:
        incident_resolve(incident=incident, user=user, via=VIA)
        line = f"{incident.ref} resolved by {who} via email"
    elif command.action == ESCALATE:
        incident_escalate(incident=incident, user=user, via=VIA)
        line = f"{incident.ref} escalated to the next step by {who} via email"
    elif command.action == UNACK:
        done = incident_unacknowledge(incident=incident, user=user, via=VIA)
        line = (f"{incident.ref} un-acknowledged by {who} via email: paging again" if done
                else f"{incident.ref} was not acknowledged; nothing changed.")
    else:
        text = command.text[:MAX_NOTE].strip()
        if not text:
            # Only quoted text or a signature: nothing to add, nothing to confirm.
            return f"{incident.ref}: empty reply, nothing done"
        incident_add_note(incident=incident, user=user, text=text, via=VIA)
        line = f"Note added to {incident.ref} by {who} via email"
    _confirm(notification=notification, incident=incident, parsed=parsed, message=message, line=line)
    return line


def register() -> None:
    register_recipient(name="oncall.reply", prefix=PREFIX, handler=handle_reply)
