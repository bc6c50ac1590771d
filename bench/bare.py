"""The baseline: a Django view behind the same middleware and gunicorn as the ingestion
endpoints, that reads and parses the body and answers the same JSON as the PagerDuty
endpoint, but stores nothing."""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def bare_view(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    return JsonResponse(
        {"status": "success", "message": "Event processed", "dedup_key": data.get("dedup_key", "")},
        status=202,
    )
