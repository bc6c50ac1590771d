from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

# Apps add what monitoring should see (the alert queue's backlog) without ircore
# importing them: name -> callable returning JSON-able data.
health_details: dict[str, Callable[[], Any]] = {}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and `make run`. The
    details (e.g. alert_queue) inform monitoring; they never make this a 503, which
    would take a web server out of rotation for a problem elsewhere."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        details = {name: detail() for name, detail in health_details.items()}
    except Exception as exc:  # noqa: BLE001
        return JsonResponse({"status": "error", "database": str(exc)}, status=503)
    return JsonResponse({"status": "ok", **details})
