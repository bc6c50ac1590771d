"""HTTP endpoints under /integrations/. Each authenticates by integration token,
validates, stores and processes the event before answering 2xx."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from incidents.ingestion import generic
from incidents.ingestion.common import (
    check_rate_limit,
    handle,
    ingest_events,
    integration_for_token,
    read_body,
)
from incidents.models import Integration


@csrf_exempt
@require_POST
def generic_webhook(request: HttpRequest, token: str) -> JsonResponse:
    def work() -> JsonResponse:
        integration = integration_for_token(token, Integration.Kind.GENERIC)
        check_rate_limit(integration)
        data = generic.parse_body(read_body(request), request.content_type or "")
        results = ingest_events(integration, generic.events_from(integration, data))
        result = results[0]
        return JsonResponse(
            {
                "status": "accepted",
                "outcome": result.outcome,
                "message": result.message,
                "dedup_key": result.alert.dedup_key,
                "alert_id": result.alert.pk,
                "incident": result.incident.ref if result.incident else None,
            },
            status=202,
        )

    return handle(request, work)
