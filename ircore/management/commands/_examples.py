"""Example payloads and ready-to-paste commands for each integration kind.

Shared by ``ircore_welcome`` (printed by `make run`) and the tests, so the commands a
new user is shown are the ones the tests send. Django skips this module when it looks
for commands because its name starts with an underscore.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from django.conf import settings
from django.urls import Resolver404, resolve

from incidents.models import Integration

Kind = Integration.Kind


def generic_payload() -> dict[str, Any]:
    # "database down" matches the demo triage rule, so this one becomes SEV1/P1.
    return {
        "summary": "payments-db: database down",
        "severity": "error",
        "source": "db-1.payments",
        "dedup_key": "payments-db-down",
        "details": "Connection refused on 10.0.0.5:5432",
        "labels": {"env": "prod", "team": "payments"},
        "links": [{"href": "https://runbooks.example.com/payments-db", "text": "Runbook"}],
    }


def pagerduty_payload(routing_key: str) -> dict[str, Any]:
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": "checkout-latency",
        "payload": {
            "summary": "Checkout p99 latency above 2s",
            "source": "checkout-web-1",
            "severity": "warning",
            "component": "checkout",
            "custom_details": {"p99_ms": 2350},
        },
        "links": [{"href": "https://grafana.example.com/d/checkout", "text": "Dashboard"}],
    }


def alertmanager_payload() -> dict[str, Any]:
    labels = {"alertname": "HighErrorRate", "severity": "critical", "service": "payments-api",
              "instance": "api-1:8080"}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "ircore",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": "5xx rate above 5% on payments-api"},
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": "5xx rate above 5% on payments-api",
                                "description": "6.2% of requests failed in the last 5 minutes"},
                "startsAt": "2026-01-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=errors",
                "fingerprint": "3f1c9a2b7d4e5f60",
            }
        ],
    }


def grafana_payload() -> dict[str, Any]:
    labels = {"alertname": "DiskAlmostFull", "severity": "warning", "instance": "db-1"}
    return {
        "receiver": "ircore",
        "status": "firing",
        "orgId": 1,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": "Disk /var/lib/postgresql is 92% full"},
                "startsAt": "2026-01-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://grafana.example.com/alerting/grafana/abc/view",
                "fingerprint": "a1b2c3d4e5f60718",
                "silenceURL": "http://grafana.example.com/alerting/silence/new",
                "dashboardURL": "",
                "panelURL": "",
                "values": {"A": 92},
                "valueString": "[ var='A' value=92 ]",
            }
        ],
        "groupLabels": {"alertname": "DiskAlmostFull"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": "Disk /var/lib/postgresql is 92% full"},
        "externalURL": "http://grafana.example.com/",
        "version": "1",
        "groupKey": '{}:{alertname="DiskAlmostFull"}',
        "truncatedAlerts": 0,
        "title": "[FIRING:1] DiskAlmostFull",
        "state": "alerting",
        "message": "**Firing**\n\nDisk /var/lib/postgresql is 92% full",
    }


def payload_for(integration: Integration) -> dict[str, Any] | None:
    if integration.kind == Kind.GENERIC:
        return generic_payload()
    if integration.kind == Kind.PAGERDUTY:
        return pagerduty_payload(integration.token)
    if integration.kind == Kind.ALERTMANAGER:
        return alertmanager_payload()
    if integration.kind == Kind.GRAFANA:
        return grafana_payload()
    return None


def endpoint_available(url: str) -> bool:
    """Whether this install serves ``url`` (an endpoint of a later version is not shown
    as a command that would answer 404)."""
    base = settings.PUBLIC_URL
    if not url.startswith(base):
        return False
    try:
        resolve(url[len(base):] or "/")
    except Resolver404:
        return False
    return True


def curl_command(integration: Integration) -> str | None:
    """A ready-to-paste shell command that sends an example event, or None when the
    kind is not sent over HTTP (email) or this install has no endpoint for it yet."""
    url = integration.url
    if integration.kind == Kind.EMAIL or not endpoint_available(url):
        return None
    payload = payload_for(integration)
    if payload is None:  # heartbeat: an empty POST is the ping
        return f"curl -sS -X POST {shlex.quote(url)}"
    body = json.dumps(payload, separators=(",", ":"))
    return (f"curl -sS -X POST {shlex.quote(url)} -H 'Content-Type: application/json' "
            f"-d {shlex.quote(body)}")


def email_address(integration: Integration) -> str:
    return f"{integration.token}@{settings.INBOUND_EMAIL_DOMAIN}"


def email_command(integration: Integration) -> str:
    """Send an example alert email to the built-in SMTP listener (the `smtp` process),
    with nothing but Python's standard library."""
    host = getattr(settings, "INBOUND_SMTP_HOST", "127.0.0.1")
    port = getattr(settings, "INBOUND_SMTP_PORT", 2525)
    code = (
        "import smtplib; from email.message import EmailMessage; m = EmailMessage(); "
        "m['From'] = 'nagios@example.com'; "
        f"m['To'] = '{email_address(integration)}'; "
        "m['Subject'] = 'PROBLEM: web01 HTTP is CRITICAL'; m.set_content('connect timeout after 10s'); "
        f"smtplib.SMTP('{host}', {int(port)}).send_message(m)"
    )
    return f"python3 -c {shlex.quote(code)}"
