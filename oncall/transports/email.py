"""Email transport: rendered by ircore.email, sent through Django's email backend
(SMTP or any django-anymail ESP), threaded per incident."""

from __future__ import annotations

import smtplib
from typing import Any

from django.conf import settings

from incidents.problems import known_error_match
from ircore.email import email_send
from oncall.reply_tokens import reply_address
from oncall.transports import TransportError


def incident_url(incident: Any) -> str:
    return f"{settings.PUBLIC_URL}/admin/incidents/incident/{incident.pk}/change/"


def thread_root_id(incident: Any) -> str:
    return f"<incident-{incident.number}.{incident.pk}@{settings.INBOUND_EMAIL_DOMAIN}>"


def subject_prefix(incident: Any) -> str:
    return f"[{incident.ref}] [{incident.severity}]"


def incident_subject(incident: Any) -> str:
    """``[INC-7] [SEV1] <title> on <service>``: the subject of every email about an
    incident (replies and updates add "Re: "). The service is left out when the title
    already names it, as alert summaries often do ("5xx rate above 5% on payments-api")."""
    service = incident.service.name
    where = "" if service.lower() in incident.title.lower() else f" on {service}"
    return f"{subject_prefix(incident)} {incident.title}{where}"


def context_for(notification: Any) -> dict[str, Any]:
    incident = notification.incident
    return {
        "notification": notification,
        "incident": incident,
        "service": incident.service if incident else None,
        "prefix": subject_prefix(incident) if incident else "",
        "subject": incident_subject(incident) if incident else "",
        "url": incident_url(incident) if incident else settings.PUBLIC_URL,
        "user": notification.user,
        "can_reply": notification.kind == "page",
        # The first thing a paged person should read when this has happened before.
        "known_errors": known_error_match(incident=incident)
        if incident is not None and notification.kind == "page" else [],
        "code": notification.contact_method.verification_code
        if notification.kind == "verify" and notification.contact_method else "",
    }


def deliver(notification: Any) -> str:
    incident = notification.incident
    headers: dict[str, str] = {}
    message_id = f"<notification-{notification.pk}@{settings.INBOUND_EMAIL_DOMAIN}>"
    headers["Message-ID"] = message_id
    reply_to = None
    if incident is not None:
        root = thread_root_id(incident)
        headers["In-Reply-To"] = root
        headers["References"] = root
        if notification.kind == "page":
            reply_to = [reply_address(notification_id=notification.pk)]
    headers["Auto-Submitted"] = "auto-generated"  # RFC 3834: autoresponders must not answer
    try:
        email_send(
            name=f"oncall-{notification.kind}", to=[notification.address],
            context=context_for(notification), reply_to=reply_to, headers=headers,
        )
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        raise TransportError(f"refused by the mail server: {exc}", retry=False) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransportError(f"email not sent: {exc.__class__.__name__}: {exc}") from exc
    return message_id
