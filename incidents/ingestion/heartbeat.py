"""``POST``/``GET /integrations/heartbeat/<token>/``: record a ping."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from incidents.heartbeats import heartbeat_options, heartbeat_pinged
from incidents.ingestion.common import InvalidEvent, check_rate_limit, handle, integration_for_token
from incidents.models import Integration


@csrf_exempt
@require_http_methods(["GET", "POST", "HEAD"])
def heartbeat_ping(request: HttpRequest, token: str) -> JsonResponse:
    def work() -> JsonResponse:
        integration = integration_for_token(token, Integration.Kind.HEARTBEAT)
        check_rate_limit(integration)
        try:
            options = heartbeat_options(integration)
        except ValueError as exc:
            raise InvalidEvent([str(exc)], "Heartbeat integration is misconfigured") from None
        now = timezone.now()
        heartbeat_pinged.send(sender=Integration, integration=integration, at=now)
        due = now + timedelta(seconds=options.seconds)
        return JsonResponse(
            {"status": "ok", "received_at": now.isoformat(), "next_expected_before": due.isoformat()},
            status=202,
        )

    return handle(request, work)
