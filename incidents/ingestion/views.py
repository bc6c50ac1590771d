"""HTTP endpoints under /integrations/. Each authenticates by integration token,
validates, and stores the event in the queue before answering 2xx; the applier turns
it into an alert within moments (``incidents.alert_queue``). Like PagerDuty's Events
API, the answer says the event was accepted, with its dedup key; what it did (opened,
grouped, resolved...) is on the alert, in the console and at /api/v1/alerts/."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from incidents.alert_queue import events_enqueue
from incidents.ingestion import alertmanager, generic, pagerduty
from incidents.ingestion.common import (
    check_rate_limit,
    handle,
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
        body = read_body(request)
        data = generic.parse_body(body, request.content_type or "")
        json_body = (data, body) if generic.is_json(request.content_type or "") else None
        keys = events_enqueue(integration=integration, events=generic.events_from(integration, data),
                              body=json_body)
        return JsonResponse(
            {"status": "accepted", "message": "Event accepted", "dedup_key": keys[0]}, status=202
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
        body = read_body(request)
        data = parse_json_object(body)
        integration = _pagerduty_integration(data)
        event = pagerduty.event_from(data)
        check_rate_limit(integration)
        keys = events_enqueue(integration=integration, events=[event], body=(data, body))
        # PagerDuty's own answer, word for word: clients may compare the message.
        return JsonResponse(
            {"status": "success", "message": "Event processed", "dedup_key": keys[0]}, status=202
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
        body = read_body(request)
        data = parse_json_object(body)
        events = alertmanager.events_from(integration, data, grafana=grafana)
        check_rate_limit(integration, events=len(events))
        keys = events_enqueue(integration=integration, events=events, body=(data, body))
        return JsonResponse(
            {"status": "accepted", "message": f"{len(keys)} event(s) accepted", "events": len(keys),
             "dedup_keys": keys},
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
