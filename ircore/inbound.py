"""Inbound email: store, then parse and dispatch by recipient in a django-q2 task.

Both ways in (``manage.py smtpd`` and the django-anymail inbound webhooks) only call
``inbound_store``: the raw message is saved (once per Message-ID) and a task is
enqueued after commit. The task (``inbound_process``) parses the message and hands it
to the handler registered for each recipient. ircore never imports an app: apps
register their recipients here from ``AppConfig.ready()`` (DESIGN.md §1), e.g.
``oncall`` for ``reply.<token>@<domain>`` and ``incidents`` for ``<token>@<domain>``.

A handler refuses a message by raising ``InboundRefused``: nothing it did is kept (it
runs in a savepoint), the refusal goes to the security log, and nothing is sent back.
"""

from __future__ import annotations

import email
import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ircore.models import InboundMessage, SecurityLogEntry
from ircore.text import text_storable

log = logging.getLogger(__name__)
Reason = SecurityLogEntry.Reason


class InboundRefused(Exception):
    """Raised by a handler (or the common checks) to refuse a message."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass
class ParsedEmail:
    message: Message
    message_id: str
    subject: str
    from_address: str
    from_name: str
    to: list[str]
    cc: list[str]
    date: datetime | None
    in_reply_to: str
    references: str
    text: str
    html: str
    attachments: list[Attachment]
    # The ESP's own "reply without the quoted part" (Postmark StrippedTextReply,
    # Mailgun stripped-text), when the message came through one.
    stripped_text: str | None = None
    envelope_sender: str = ""

    def header(self, name: str) -> str:
        return _header(self.message, name)

    @property
    def body_text(self) -> str:
        """The text body, or the HTML one as readable text."""
        return self.text if self.text.strip() else html_to_text(self.html)


Handler = Callable[..., str]


@dataclass(frozen=True)
class Registration:
    name: str
    handler: Handler
    prefix: str = ""
    matcher: Callable[[str], bool] | None = None

    def matches(self, local: str) -> bool:
        if self.prefix and not local.startswith(self.prefix):
            return False
        return self.matcher(local) if self.matcher is not None else bool(self.prefix)


_registry: list[Registration] = []


def register_recipient(
    *, name: str, handler: Handler, prefix: str = "", matcher: Callable[[str], bool] | None = None
) -> None:
    """Route mail for ``<local>@INBOUND_EMAIL_DOMAIN`` to ``handler`` when the local part
    starts with ``prefix`` and/or ``matcher(local)`` is true. ``handler(*, parsed,
    recipient, local, message)`` returns a one-line result or raises InboundRefused.
    Registering the same name again replaces it (ready() may run twice in tests)."""
    if not prefix and matcher is None:
        raise ValueError("register_recipient needs a prefix or a matcher")
    _registry[:] = [r for r in _registry if r.name != name]
    _registry.append(Registration(name=name, handler=handler, prefix=prefix.lower(), matcher=matcher))


def _split(address: str) -> tuple[str, str]:
    local, _, domain = address.strip().strip("<>").rpartition("@")
    return local.lower(), domain.lower()


def recipient_lookup(address: str) -> Registration | None:
    """The handler for ``address``, or None: another domain or nobody registered it.
    (The SMTP listener answers 550 at RCPT for None.)"""
    local, domain = _split(address)
    if not local or domain != settings.INBOUND_EMAIL_DOMAIN.lower():
        return None
    # Prefixed registrations first: they decide without a database query, which the
    # matcher-only ones (e.g. integration tokens) need.
    for registration in sorted(_registry, key=lambda r: not r.prefix):
        if registration.matches(local):
            return registration
    return None


def ours(addresses: Iterable[str]) -> list[str]:
    domain = settings.INBOUND_EMAIL_DOMAIN.lower()
    seen: list[str] = []
    for address in addresses:
        address = (address or "").strip().strip("<>").lower()
        if address.endswith("@" + domain) and address not in seen:
            seen.append(address)
    return seen


# --------------------------------------------------------------------------- security log


def security_log_add(
    *, reason: str, detail: str = "", sender: str = "", recipient: str = "", remote_addr: str = "",
    message: InboundMessage | None = None,
) -> SecurityLogEntry:
    log.warning("inbound email refused (%s): %s from=%s to=%s", reason, detail, sender, recipient)
    return SecurityLogEntry.objects.create(
        created_at=timezone.now(), reason=reason, detail=text_storable(detail[:2000]),
        sender=text_storable(sender[:998]), recipient=text_storable(recipient[:998]),
        remote_addr=text_storable(remote_addr[:100]), message=message,
    )


# --------------------------------------------------------------------------- store


def max_bytes() -> int:
    return int(settings.INBOUND_EMAIL_MAX_BYTES)


def _message_key(raw: bytes) -> tuple[str, str]:
    # Only the headers are needed for the Message-ID; a compat32 header parse does
    # not fail on anything.
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    parsed = email.message_from_bytes(head + b"\n\n")
    message_id = str(parsed.get("Message-ID", "") or "").strip()
    basis = ("mid:" + message_id.lower()).encode() if message_id else b"raw:" + raw
    return hashlib.sha256(basis).hexdigest(), message_id


def _subject_of(raw: bytes) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    try:
        return _header(email.message_from_bytes(head + b"\n\n"), "Subject")[:998]
    except Exception:  # noqa: BLE001 - a display value only; the task decides on malformed mail
        return ""


def inbound_store(
    *, raw: bytes, via: str, recipients: Iterable[str], mail_from: str = "", esp: str = "",
    remote_addr: str = "", extra: dict[str, Any] | None = None,
) -> tuple[InboundMessage | None, bool]:
    """Keep a received message and enqueue its processing. Returns (message, created);
    a message already received (same Message-ID) is (existing, False) and is not
    processed again. Over the size limit: refused, logged, (None, False)."""
    recipients = ours(recipients)
    if len(raw) > max_bytes():
        security_log_add(
            reason=Reason.OVERSIZE, detail=f"{len(raw)} bytes (limit {max_bytes()}) via {via}",
            sender=mail_from, recipient=", ".join(recipients), remote_addr=remote_addr,
        )
        return None, False
    key, message_id = _message_key(raw)
    existing = InboundMessage.objects.filter(message_key=key).order_by().first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            message = InboundMessage.objects.create(
                message_key=key, message_id=message_id[:998], received_via=via, esp=esp,
                mail_from=mail_from[:998], recipients=recipients, remote_addr=remote_addr[:100],
                subject=_subject_of(raw), size=len(raw), raw=raw, extra=extra or {},
                received_at=timezone.now(), enqueued_at=timezone.now(),
            )
            transaction.on_commit(lambda: _enqueue(message.pk))
    except IntegrityError:
        # The same message arrived twice at once (an ESP retry racing the first try).
        return InboundMessage.objects.get(message_key=key), False
    return message, True


def _enqueue(pk: int) -> None:
    from ircore.tasks import task_enqueue

    task_enqueue("ircore.inbound.inbound_process", pk, group="inbound-email")


# --------------------------------------------------------------------------- parse


class _Text(HTMLParser):
    """HTML to readable text; quoted blocks keep a "> " prefix so the reply parser can
    tell them from the answer."""

    _BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr", "pre"}
    _SKIP = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.quote = 0
        self.skip = 0

    def _newline(self) -> None:
        if self.lines[-1].strip():
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag == "blockquote":
            self._newline()
            self.quote += 1
        elif tag in self._BLOCK:
            self._newline()
        elif tag == "td":
            self.lines[-1] += " "

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "blockquote":
            self._newline()
            self.quote = max(0, self.quote - 1)
        elif tag in self._BLOCK:
            self._newline()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        text = " ".join(data.split())
        if not text:
            if data and self.lines[-1] and not self.lines[-1].endswith(" "):
                self.lines[-1] += " "
            return
        if not self.lines[-1] and self.quote:
            self.lines[-1] = "> " * self.quote
        self.lines[-1] += text


def html_to_text(html: str) -> str:
    if not html:
        return ""
    parser = _Text()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - html.parser is lenient; anything else: drop the tags crudely
        return re.sub(r"<[^>]+>", " ", html)
    return "\n".join(line.rstrip() for line in parser.lines).strip()


def _decode(value: str) -> str:
    """RFC 2047 encoded words to text; undecodable parts are kept as they came."""
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001 - unknown charsets, broken encoded words
        return value


def _header(message: Message, name: str) -> str:
    # compat32 parsing (the default) is several times faster than email.policy.default's
    # header registry, which dominated the parse time; headers are decoded here instead.
    value = message.get(name)
    return "" if value is None else " ".join(_decode(str(value)).split())


def _addresses(message: Message, name: str) -> list[tuple[str, str]]:
    try:
        values = [str(v) for v in message.get_all(name) or []]
        return [(_decode(n), a) for n, a in getaddresses(values) if a]
    except Exception:  # noqa: BLE001 - the address parser raises on some hostile input
        return []


def _content(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a broken transfer encoding: nothing readable
        return ""
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, errors="replace")
        except LookupError:
            return payload.decode("utf-8", errors="replace")
    return ""


# Defects that mean the structure itself is broken (not a sloppy header): the body
# cannot be found reliably, so acting on it would be guessing.
_FATAL_DEFECTS = (
    "NoBoundaryInMultipartDefect",
    "StartBoundaryNotFoundDefect",
    "MultipartInvariantViolationDefect",
    "MissingHeaderBodySeparatorDefect",
)


def email_parse(raw: bytes, *, stripped_text: str | None = None, envelope_sender: str = "") -> ParsedEmail:
    """Parse an RFC 5322 message. Raises InboundRefused(malformed) for input that is
    not a usable email (no headers, no sender, broken MIME structure)."""
    try:
        message = email.message_from_bytes(raw)
    except Exception as exc:  # noqa: BLE001
        raise InboundRefused(Reason.MALFORMED, f"unparseable message: {exc.__class__.__name__}") from None
    if not message.keys():
        raise InboundRefused(Reason.MALFORMED, "no headers")
    defects = [d.__class__.__name__ for p in message.walk() for d in getattr(p, "defects", [])]
    fatal = [d for d in defects if d in _FATAL_DEFECTS]
    if fatal:
        raise InboundRefused(Reason.MALFORMED, f"broken MIME structure: {', '.join(sorted(set(fatal)))}")
    senders = _addresses(message, "From")
    if not senders:
        raise InboundRefused(Reason.MALFORMED, "no valid From address")
    from_name, from_address = senders[0]
    text = html = ""
    attachments: list[Attachment] = []
    try:
        parts = list(message.walk())
    except Exception as exc:  # noqa: BLE001
        raise InboundRefused(Reason.MALFORMED, f"unreadable MIME parts: {exc.__class__.__name__}") from None
    for part in parts:
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        filename = part.get_filename()
        is_attachment = bool(filename) or part.get_content_disposition() == "attachment"
        # A single-part text message is its own body, whatever its disposition says.
        if (is_attachment or not ctype.startswith("text/")) and not (
            part is message and ctype.startswith("text/")
        ):
            payload = part.get_payload(decode=True)
            attachments.append(Attachment(
                filename=str(filename or "(unnamed)")[:255], content_type=ctype,
                size=len(payload) if isinstance(payload, bytes) else 0,
            ))
            continue
        if ctype == "text/plain" and not text:
            text = _content(part)
        elif ctype == "text/html" and not html:
            html = _content(part)
    date = None
    raw_date = _header(message, "Date")
    if raw_date:
        try:
            date = parsedate_to_datetime(raw_date)
            if date is not None and timezone.is_naive(date):
                date = timezone.make_aware(date, timezone.get_fixed_timezone(0))
        except (TypeError, ValueError, IndexError, OverflowError):
            date = None
    # Everything read from the message as text a database can store (a NUL or a lone
    # surrogate in a header or body would make the note, alert or log entry fail).
    clean = text_storable
    return ParsedEmail(
        message=message,
        message_id=clean(_header(message, "Message-ID")),
        subject=clean(_header(message, "Subject")),
        from_address=clean(from_address.strip().lower()),
        from_name=clean(from_name),
        to=[clean(a.lower()) for _, a in _addresses(message, "To")],
        cc=[clean(a.lower()) for _, a in _addresses(message, "Cc")],
        date=date,
        in_reply_to=clean(_header(message, "In-Reply-To")),
        references=clean(_header(message, "References")),
        text=clean(text.replace("\r\n", "\n")),
        html=clean(html),
        attachments=attachments,
        stripped_text=None if stripped_text is None else clean(stripped_text),
        envelope_sender=clean(parseaddr(envelope_sender or "")[1].lower()),
    )


# --------------------------------------------------------------------------- automatic mail

_OOO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|"
    r"away from (the )?office|on vacation|vacation reply|abwesenheit|absence|"
    r"r[ée]ponse automatique|abwesenheitsnotiz|automatische antwort|"
    r"undeliver(ed|able)|delivery status notification|mail delivery (failed|failure))",
    re.IGNORECASE,
)


def auto_reply_reason(parsed: ParsedEmail, *, strict: bool) -> str:
    """Why this looks like automatic mail ('' when it does not). ``strict`` (replies
    to notifications): anything machine-sent counts, including bulk and list mail.
    Not strict (email alerts, which monitoring tools send as auto-generated): only
    auto-replies, out-of-office and bounces."""
    auto = parsed.header("Auto-Submitted").lower()
    if auto.startswith("auto-replied") or (strict and auto and not auto.startswith("no")):
        return f"Auto-Submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if parsed.header(name):
            return f"{name} header"
    precedence = parsed.header("Precedence").lower()
    if precedence in ("auto_reply", "autoreply") or (strict and precedence in ("bulk", "junk", "list")):
        return f"Precedence: {precedence}"
    if parsed.header("X-MS-Exchange-Inbox-Rules-Loop"):
        return "Exchange inbox rule loop"
    if _OOO_SUBJECT.search(parsed.subject):
        return f"automatic reply subject: {parsed.subject[:80]!r}"
    if parsed.message.get_content_type() == "multipart/report":
        return "delivery status report"
    if parsed.envelope_sender in ("<>", "mailer-daemon") or parsed.from_address.startswith("mailer-daemon@"):
        return "bounce"
    if strict and parsed.header("List-Id"):
        return "mailing list"
    return ""


def own_addresses() -> set[str]:
    return {parseaddr(settings.DEFAULT_FROM_EMAIL)[1].lower(), parseaddr(settings.SERVER_EMAIL)[1].lower()}


def from_ircore(parsed: ParsedEmail) -> bool:
    """Mail that ircore sent (a notification bounced back or forwarded to one of our
    own addresses): answering it could loop forever."""
    if parsed.from_address in own_addresses():
        return True
    # One of the addresses we receive for (not any address of the domain: people's
    # own mailboxes may share it).
    if recipient_lookup(parsed.from_address) is not None:
        return True
    message_id = parsed.message_id.lower()
    return message_id.endswith("@" + settings.INBOUND_EMAIL_DOMAIN.lower() + ">") and (
        message_id.startswith("<notification-") or message_id.startswith("<ircore-")
    )


# --------------------------------------------------------------------------- dispatch


@dataclass
class DispatchResult:
    status: str
    lines: list[str] = field(default_factory=list)


def inbound_dispatch(message: InboundMessage) -> DispatchResult:
    """Parse ``message`` and run the handler of each recipient. Refusals are logged;
    a handler's writes are kept only when it succeeds (one savepoint each)."""
    sender = message.mail_from
    recipients = list(message.recipients or [])
    try:
        parsed = email_parse(
            bytes(message.raw), stripped_text=(message.extra or {}).get("stripped_text"),
            envelope_sender=message.mail_from,
        )
        sender = parsed.from_address
        if from_ircore(parsed):
            raise InboundRefused(Reason.LOOP, f"sent by ircore itself ({parsed.from_address})")
    except InboundRefused as refused:
        security_log_add(reason=refused.reason, detail=refused.detail, sender=sender,
                         recipient=", ".join(recipients), remote_addr=message.remote_addr, message=message)
        return DispatchResult(InboundMessage.Status.REFUSED, [f"refused: {refused.detail or refused.reason}"])
    if not recipients:
        recipients = ours(parsed.to + parsed.cc)
    result = DispatchResult(InboundMessage.Status.IGNORED)
    outcomes: set[str] = set()
    for recipient in recipients:
        registration = recipient_lookup(recipient)
        if registration is None:
            result.lines.append(f"{recipient}: no handler")
            continue
        local, _ = _split(recipient)
        try:
            with transaction.atomic():
                line = registration.handler(parsed=parsed, recipient=recipient, local=local, message=message)
            outcomes.add("processed")
            result.lines.append(f"{recipient}: {line}")
        except InboundRefused as refused:
            outcomes.add("refused")
            security_log_add(reason=refused.reason, detail=refused.detail, sender=sender,
                             recipient=recipient, remote_addr=message.remote_addr, message=message)
            result.lines.append(f"{recipient}: refused: {refused.detail or refused.reason}")
    if "processed" in outcomes:
        result.status = InboundMessage.Status.PROCESSED
    elif "refused" in outcomes:
        result.status = InboundMessage.Status.REFUSED
    return result


def inbound_process(message_pk: int) -> str:
    """django-q2 task: process a stored message once. Safe to run twice (retries, two
    workers): only a message still in ``received`` is taken, under its row lock."""
    with transaction.atomic():
        message = (InboundMessage.objects.select_for_update()
                   .filter(pk=message_pk, status=InboundMessage.Status.RECEIVED).order_by().first())
        if message is None:
            return ""
        try:
            with transaction.atomic():
                result = inbound_dispatch(message)
            status, text, error = result.status, "\n".join(result.lines), ""
        except Exception as exc:  # noqa: BLE001 - kept on the row for the console; the mail is not lost
            log.exception("inbound message %s failed", message_pk)
            status, text, error = InboundMessage.Status.FAILED, "", f"{exc.__class__.__name__}: {exc}"
        InboundMessage.objects.filter(pk=message.pk).update(
            status=status, result=text[:5000], error=error[:5000], processed_at=timezone.now()
        )
    return status



REQUEUE_AFTER = timedelta(minutes=2)


def inbound_requeue(now: datetime) -> int:
    """Clock job: a message still unprocessed 2 minutes after its hand-over lost its
    task (a broker restart, a worker killed beyond its retries): hand it over again.
    Processing twice is harmless (only a ``received`` message is taken)."""
    stale = list(
        InboundMessage.objects.filter(status=InboundMessage.Status.RECEIVED,
                                      enqueued_at__lt=now - REQUEUE_AFTER)
        .order_by("enqueued_at").values_list("pk", "enqueued_at")[:100]
    )
    count = 0
    for pk, enqueued_at in stale:
        # Compare-and-set: with several clocks, one of them re-queues it.
        if InboundMessage.objects.filter(pk=pk, enqueued_at=enqueued_at).update(enqueued_at=now):
            _enqueue(pk)
            count += 1
    return count


def inbound_purge(now: datetime) -> int:
    """Clock job: processed messages older than INBOUND_EMAIL_RETENTION_DAYS go (their
    security log entries stay, without the message)."""
    days = int(settings.INBOUND_EMAIL_RETENTION_DAYS)
    if days <= 0:
        return 0
    old = InboundMessage.objects.filter(received_at__lt=now - timedelta(days=days)).exclude(
        status=InboundMessage.Status.RECEIVED
    )
    deleted, _ = old.delete()
    return deleted
