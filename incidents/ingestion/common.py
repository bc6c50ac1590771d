"""What every ingestion endpoint shares: token look-up, body limits, rate limits,
JSON parsing, and turning failures into the right status code. Accepted events go to
the queue (``incidents.alert_queue.events_enqueue``).

An adapter is a function ``(integration, body: dict) -> list[AlertEvent]`` that raises
``InvalidEvent`` with messages naming the offending fields.
"""

from __future__ import annotations

import json
import logging
import textwrap
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse

from incidents.ingestion.rate_limit import WINDOW_SECONDS, ingest_limiter
from incidents.models import Integration
from ircore.process_cache import ProcessCache

log = logging.getLogger(__name__)

# Responses are built by the endpoint so each source gets the answer shape it knows
# (PagerDuty's {"status": "invalid event", ...} vs our generic one).
ErrorBody = Callable[[int, str, list[str]], dict[str, Any]]


class InvalidEvent(Exception):
    def __init__(self, errors: list[str], message: str = "Event object is invalid"):
        super().__init__(message)
        self.message = message
        self.errors = errors


class RejectEvent(Exception):
    """An answer other than 2xx that is not a validation error (404, 413, 429, 503)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def generic_error_body(status: int, message: str, errors: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": message}
    if errors:
        body["errors"] = errors
    return body


def read_body(request: HttpRequest) -> bytes:
    limit = settings.INGEST_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    try:
        if int(declared) > limit:
            raise RejectEvent(413, f"Request body is larger than {limit // 1024} KB.")
    except ValueError:
        raise InvalidEvent(["Content-Length header is not a number"], "Bad request") from None
    # Read one byte more than allowed so a body without (or with a lying)
    # Content-Length is still caught.
    body = request.read(limit + 1)
    if len(body) > limit:
        raise RejectEvent(413, f"Request body is larger than {limit // 1024} KB.")
    return body


def _not_json(word: str) -> Any:
    raise ValueError(f"{word} is not a JSON value")


# Python's json accepts NaN, Infinity and -Infinity, which JSON (RFC 8259) does not have
# and PostgreSQL's jsonb refuses: an event carrying one would be accepted, then never stored.
_strict_decoder = json.JSONDecoder(parse_constant=_not_json)


def json_strict_loads(data: bytes | str) -> Any:
    """``json.loads`` without the NaN / Infinity extension (ValueError, as for any other
    malformed JSON)."""
    if isinstance(data, bytes | bytearray):
        data = data.decode(json.detect_encoding(data), "surrogatepass")
    return _strict_decoder.decode(data)


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise InvalidEvent(["request body is empty; send a JSON object"], "Empty body")
    try:
        data = json_strict_loads(body)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN / Infinity
        raise InvalidEvent([f"body is not valid JSON: {exc}"], "Malformed JSON") from None
    if not isinstance(data, dict):
        raise InvalidEvent(["body must be a JSON object"], "Event object is invalid")
    return data


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_details(value: Any) -> str:
    """Free-form details (PagerDuty custom_details, annotations, ...) as text a person
    reads in the console and a triage keyword can match: ``key: value`` lines, nested
    structures as indented JSON."""
    if value is None or value == "" or value == {} or value == []:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    lines = []
    for key, item in value.items():
        if isinstance(item, dict | list):
            text = json.dumps(item, indent=2, ensure_ascii=False, default=str)
            lines.append(f"{key}:\n{textwrap.indent(text, '  ')}")
        elif isinstance(item, str) and "\n" in item:
            lines.append(f"{key}:\n{textwrap.indent(item, '  ')}")
        else:
            lines.append(f"{key}: {_scalar(item)}")
    return "\n".join(lines)


# Integrations by (token, kind), per process: every event needs its integration, and
# the look-up would otherwise be a third of the request's work. Saving or deleting an
# integration clears this process's entries at once (``integration_cache_clear``, on
# the model's signals); other processes notice within the time-to-live.
INTEGRATION_CACHE_SECONDS = 5.0
_integrations: ProcessCache[Integration] = ProcessCache(INTEGRATION_CACHE_SECONDS)


def integration_cache_clear(**_: Any) -> None:
    _integrations.clear()


def integration_for_token(token: str, kind: str, *, what: str = "integration token") -> Integration:
    cached = _integrations.get((token, kind))
    if cached is not None:
        return cached
    # The token is unique: no ORDER BY (which .first() would add).
    rows = list(
        Integration.objects.select_related("service")
        .filter(token=token, kind=kind, enabled=True)
        .order_by()[:1]
    )
    if not rows:
        _integrations.discard((token, kind))
        raise RejectEvent(404, f"Unknown or disabled {what}.")
    return _integrations.put((token, kind), rows[0])


def check_rate_limit(integration: Integration, events: int = 1) -> None:
    """Per integration, in events per minute (``rate_limit.ingest_limiter``), so one
    Alertmanager notification carrying 20 alerts costs 20. Rejected events count too."""
    limit = integration.rate_limit_per_minute or settings.INGEST_RATE_LIMIT_PER_MINUTE
    if ingest_limiter.count(integration.pk, events, limit) > limit:
        retry_after = max(1, WINDOW_SECONDS - int(time.time() % WINDOW_SECONDS))
        raise RejectEvent(429, f"Rate limit of {limit} events per minute exceeded.", retry_after)


def error_response(status: int, message: str, errors: list[str], error_body: ErrorBody,
                   retry_after: int | None = None) -> JsonResponse:
    response = JsonResponse(error_body(status, message, errors), status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def handle(
    request: HttpRequest,
    work: Callable[[], JsonResponse],
    error_body: ErrorBody = generic_error_body,
) -> JsonResponse:
    """Run ``work`` and map every failure to its documented status code. A database
    failure is a 503 so the sender retries: never a 2xx for an event not stored."""
    try:
        return work()
    except InvalidEvent as exc:
        return error_response(400, exc.message, exc.errors, error_body)
    except RejectEvent as exc:
        return error_response(exc.status, exc.message, [], error_body, exc.retry_after)
    except DatabaseError:
        log.exception("Database unavailable while ingesting")
        return error_response(503, "Database unavailable; the event was not stored, retry later.",
                              [], error_body, retry_after=30)
