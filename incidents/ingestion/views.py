"""HTTP endpoints under /integrations/. Each authenticates by integration token,
validates, stores and processes the event before answering 2xx."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from incidents.ingestion import alertmanager, generic, pagerduty
from incidents.ingestion.common import (
    check_rate_limit,
    handle,
    ingest_events,
    integration_for_token,
    parse_json_object,
    read_body,
)
from incidents.models import Integration
from incidents.services import change_event_record


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


def _pagerduty_integration(data: dict) -> Integration:
    routing_key = pagerduty.routing_key_of(data)
    return integration_for_token(routing_key, Integration.Kind.PAGERDUTY, what="routing key")


@csrf_exempt
@require_POST
def pagerduty_enqueue(request: HttpRequest) -> JsonResponse:
    """PagerDuty Events API v2 ``/v2/enqueue``: the routing key is in the body."""

    def work() -> JsonResponse:
        data = parse_json_object(read_body(request))
        integration = _pagerduty_integration(data)
        event = pagerduty.event_from(data)
        check_rate_limit(integration)
        result = ingest_events(integration, [event])[0]
        return JsonResponse(
            {
                "status": "success",
                "message": "Event processed",
                "dedup_key": result.alert.dedup_key,
                # Beyond PagerDuty's answer (clients ignore unknown keys): what it did.
                "outcome": result.outcome,
                "detail": result.message,
                "incident": result.incident.ref if result.incident else None,
            },
            status=202,
        )

    return handle(request, work, pagerduty.error_body)


@csrf_exempt
@require_POST
def pagerduty_change_enqueue(request: HttpRequest) -> JsonResponse:
    """PagerDuty Events API v2 ``/v2/change/enqueue``: context on the service's
    timeline, never an incident."""

    def work() -> JsonResponse:
        data = parse_json_object(read_body(request))
        integration = _pagerduty_integration(data)
        fields = pagerduty.change_event_from(data)
        check_rate_limit(integration)
        change_event_record(integration=integration, **fields)
        return JsonResponse({"status": "success", "message": "Change event processed"}, status=202)

    return handle(request, work, pagerduty.error_body)


def _alertmanager_like(request: HttpRequest, token: str, kind: str) -> JsonResponse:
    grafana = kind == Integration.Kind.GRAFANA

    def work() -> JsonResponse:
        integration = integration_for_token(token, kind)
        data = parse_json_object(read_body(request))
        events = alertmanager.events_from(integration, data, grafana=grafana)
        check_rate_limit(integration, events=len(events))
        results = ingest_events(integration, events)
        return JsonResponse(
            {
                "status": "accepted",
                "events": len(results),
                "results": [
                    {
                        "dedup_key": r.alert.dedup_key,
                        "outcome": r.outcome,
                        "message": r.message,
                        "incident": r.incident.ref if r.incident else None,
                    }
                    for r in results
                ],
            },
            status=202,
        )

    return handle(request, work)


@csrf_exempt
@require_POST
def alertmanager_webhook(request: HttpRequest, token: str) -> JsonResponse:
    return _alertmanager_like(request, token, Integration.Kind.ALERTMANAGER)


@csrf_exempt
@require_POST
def grafana_webhook(request: HttpRequest, token: str) -> JsonResponse:
    return _alertmanager_like(request, token, Integration.Kind.GRAFANA)
