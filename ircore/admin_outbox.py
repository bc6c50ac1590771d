"""Console page for the task outbox (ircore.tasks): tasks waiting for the broker while it
is unreachable. Their arguments name any team's objects, so only superusers see them;
the clock hands them over by itself, so the page only shows (and lets one delete)."""

from __future__ import annotations

from django.contrib import admin

from ircore.admin_inbound import SuperuserReadOnlyAdmin
from ircore.models import OutboxTask


@admin.register(OutboxTask)
class OutboxTaskAdmin(SuperuserReadOnlyAdmin):
    list_display = ("created_at", "func", "args", "options", "attempts", "last_error")
    list_filter = ("func",)
    date_hierarchy = "created_at"
