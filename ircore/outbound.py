"""Guards for HTTP requests ircore makes to URLs its users typed (escalation webhooks,
status page webhook subscribers): a webhook must not become a way into the internal
network (cloud metadata, routers, other services' admin pages)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class OutboundURLRefused(ValueError):
    """Not an http(s) URL, or one that resolves to a non-public address."""


def outbound_url_check(url: str, *, allow_private: bool, allow_setting: str) -> None:
    """Raise OutboundURLRefused unless ``url`` is http(s) and every address its host
    resolves to is public. A failed DNS look-up raises socket.gaierror (transient: the
    caller may retry). ``allow_setting`` names the setting that lifts the guard."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundURLRefused(f"not an http(s) URL: {url!r}")
    if allow_private:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for info in socket.getaddrinfo(parts.hostname, port):
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise OutboundURLRefused(
                f"{parts.hostname} resolves to {address}, a private/loopback address; "
                f"set {allow_setting}=1 to allow it"
            )
