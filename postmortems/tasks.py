"""django-q2 tasks: thin wrappers around services."""

from __future__ import annotations


def action_item_digest() -> int:
    from postmortems.digest import action_item_digest_send

    return action_item_digest_send()
