"""Console pages for inbound email: received messages and the security log. Both can
name any team's incidents and people, so only superusers see them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ircore.models import InboundMessage, SecurityLogEntry


class SuperuserReadOnlyAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)


@admin.register(InboundMessage)
class InboundMessageAdmin(SuperuserReadOnlyAdmin):
    list_display = ("received_at", "subject", "mail_from", "received_via", "status", "size")
    list_filter = ("status", "received_via", "esp")
    search_fields = ("subject", "mail_from", "message_id")
    date_hierarchy = "received_at"
    exclude = ("raw",)
    readonly_fields = ("raw_text",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Up to INBOUND_EMAIL_MAX_BYTES per row: read only on the one message's page.
        return super().get_queryset(request).defer("raw")

    @admin.display(description="message")
    def raw_text(self, obj: InboundMessage) -> str:
        return bytes(obj.raw)[:20000].decode("utf-8", errors="replace")


@admin.register(SecurityLogEntry)
class SecurityLogEntryAdmin(SuperuserReadOnlyAdmin):
    list_display = ("created_at", "reason", "sender", "recipient", "detail")
    list_filter = ("reason",)
    search_fields = ("sender", "recipient", "detail")
    date_hierarchy = "created_at"
