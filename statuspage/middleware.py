"""Serve a status page at the root of its own host name (status.example.com/), as set
by STATUSPAGE_HOSTS ("status.example.com=acme,..."). Paths on such a host map to the
page's URL space; /status/..., /static/ and the subscribe links keep working as they are."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

PASS_THROUGH = ("/status/", "/static/")


def parse_hosts(entries: list[str]) -> dict[str, str]:
    hosts = {}
    for entry in entries:
        host, sep, slug = entry.partition("=")
        if sep and host.strip() and slug.strip():
            hosts[host.strip().lower()] = slug.strip()
    return hosts


class StatusHostMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.hosts = parse_hosts(list(getattr(settings, "STATUSPAGE_HOSTS", [])))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.hosts:
            slug = self.hosts.get(request.get_host().split(":")[0].lower())
            if slug and not request.path_info.startswith(PASS_THROUGH):
                request.path_info = f"/status/{slug}{request.path_info}"
        return self.get_response(request)
