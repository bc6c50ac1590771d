"""The operator console: Django's admin, branded, with a dashboard as its index."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from ircore.permissions import is_team_member


class IrcoreAdminSite(admin.AdminSite):
    site_header = "ircore"
    site_title = "ircore console"
    index_title = "Dashboard"

    def has_permission(self, request: HttpRequest) -> bool:
        # Staff who belong to no team would only ever see empty lists; keep them out.
        user = request.user
        return bool(user.is_active and user.is_staff and is_team_member(user))
