"""The alert queue in the console, for superusers: events that could neither be applied
nor kept as failed alerts stay in the queue with their error (incidents.alert_queue);
here an administrator reads them and, once the cause is fixed, hands them back to the
applier or deletes them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from incidents.models import QueuedEvent


@admin.register(QueuedEvent)
class QueuedEventAdmin(admin.ModelAdmin):
    list_display = ("id", "integration_id", "service_id", "received_at", "stuck", "error_short")
    list_filter = (("error", admin.EmptyFieldListFilter),)
    readonly_fields = ("integration_id", "service_id", "received_at", "event", "payload", "error")
    fields = readonly_fields
    actions = ["retry"]
    ordering = ("id",)

    # Not team-scoped data a responder should browse: raw events of every team.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(boolean=True, description="stuck")
    def stuck(self, obj: QueuedEvent) -> bool:
        return bool(obj.error)

    @admin.display(description="error")
    def error_short(self, obj: QueuedEvent) -> str:
        return obj.error[:120]

    @admin.action(description="Hand selected stuck events back to the applier")
    def retry(self, request: HttpRequest, queryset: QuerySet[QueuedEvent]) -> None:
        count = queryset.exclude(error="").update(error="")
        self.message_user(request, f"{count} event(s) handed back to the applier.", messages.SUCCESS)
