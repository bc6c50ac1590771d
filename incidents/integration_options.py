"""Validation of ``Integration.options`` per kind, shared by the console (model clean)
and the API, so a typo cannot silently switch an integration to a default mode."""

from __future__ import annotations

from typing import Any

GROUP_BY_CHOICES = ("alert", "group")


def integration_options_errors(*, kind: str, options: Any) -> list[str]:
    """Messages naming each bad option; empty when the options are fine."""
    if not isinstance(options, dict):
        return ['options must be a JSON object, e.g. {"group_by": "group"}']
    if kind in ("alertmanager", "grafana"):
        group_by = options.get("group_by", "alert")
        if group_by not in GROUP_BY_CHOICES:
            return [f"options.group_by must be 'alert' (one incident per alert fingerprint) or "
                    f"'group' (one incident per notification group), got {group_by!r}"]
    elif kind == "email":
        from incidents.email_alerts import options_validate

        return options_validate(options)
    elif kind == "heartbeat":
        from incidents.heartbeats import heartbeat_options
        from incidents.models import Integration

        try:
            heartbeat_options(Integration(kind=kind, options=options))
        except ValueError as exc:
            return [str(exc)]
    return []
