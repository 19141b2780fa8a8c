"""live_event_end function: CSS / StreamLive push callbacks in, harvest jobs out.

It sits behind an API-gateway trigger or a function URL and answers with an integration response.
CSS retries a notification up to 12 times (once a minute) until it gets HTTP 200, so the status
says whether a retry could help: 200 for everything handled or deliberately ignored, 403 for a bad
or expired signature, 429 for a source sending too often, 400 for an unreadable body, 503 for a
transient failure (the database or the queue), where a retry within the signature's validity may
well succeed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from harvest.api.events import parse_event
from harvest.errors import (
    AuthFailure,
    HarvestError,
    InvalidParameter,
    QueueError,
    RequestLimitExceeded,
    RetryableError,
    StorageError,
)
from harvest.logs import log_context
from harvest.ports import Handler
from harvest.usecases.live_events import LiveEventDeps, handle_live_event

log = logging.getLogger(__name__)



def _response(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "isBase64Encoded": False,
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, ensure_ascii=False),
    }


def _refusal(status: int, message: str) -> dict[str, Any]:
    return _response(status, {"code": status, "message": message})


def unconfigured_handler(error: HarvestError) -> Handler:
    """A function that could not start answers 503, so CSS keeps retrying until it is fixed."""

    def main_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        log.error("not configured: %s", error.message)
        return _refusal(503, "the service is not configured; the notification was not handled")

    return main_handler


def _request_id(event: Mapping[str, Any], context: Any) -> str:
    if isinstance(context, Mapping) and context.get("request_id"):
        return str(context["request_id"])
    request_context = event.get("requestContext")
    if isinstance(request_context, Mapping) and request_context.get("requestId"):
        return str(request_context["requestId"])
    return ""


def _payload(event: Mapping[str, Any]) -> Any:
    """The notification's JSON. Raises InvalidParameter when the body is not JSON."""
    if "body" not in event and "event_type" in event:
        # Invoked directly (tests, the console's "test" button): the event is the notification itself.
        return event
    body = parse_event(event).body
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidParameter(f"the body is not JSON: {exc}") from exc


def _source(event: Mapping[str, Any]) -> str:
    """The sender's address: API gateway's requestContext, a function URL's header, or "direct"."""
    request_context = event.get("requestContext")
    if isinstance(request_context, Mapping) and request_context.get("sourceIp"):
        return str(request_context["sourceIp"])
    headers = event.get("headers")
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if str(name).lower() == "x-scf-remote-addr" and value:
                return str(value)
    return "direct"


def respond(deps: LiveEventDeps, event: Mapping[str, Any]) -> dict[str, Any]:
    method = str(event.get("httpMethod") or "POST").upper()
    if method != "POST":
        return _refusal(405, f"{method} is not supported: CSS and StreamLive POST their notifications")
    try:
        payload = _payload(event)
        if not isinstance(payload, Mapping):
            raise InvalidParameter("the body must be a JSON object")
        result = handle_live_event(deps, payload, _source(event))
    except RequestLimitExceeded as exc:
        log.warning("notification refused: %s", exc.message, extra={"error_code": exc.code})
        return _refusal(429, exc.message)
    except AuthFailure as exc:
        log.warning("notification refused: %s", exc.message, extra={"error_code": exc.code})
        return _refusal(403, exc.message)
    except InvalidParameter as exc:
        return _refusal(400, exc.message)
    except (RetryableError, StorageError, QueueError) as exc:
        log.error("notification not handled, the sender will retry: %s", exc.message)
        return _refusal(503, exc.message)
    except HarvestError as exc:
        # The job request itself is wrong (e.g. no default destination configured): a retry would
        # fail the same way, so answer 200 to stop CSS retrying, and leave the reason in the log.
        log.error("no job created: %s: %s", exc.code, exc.message, extra={"error_code": exc.code})
        return _response(200, {"code": 0, "message": f"no job created: {exc.code}: {exc.message}"})
    # An unknown stream or another event type is answered 200 too: CSS would otherwise resend it 12
    # times, and no retry can make an unmapped stream known.
    body: dict[str, Any] = {"code": 0, "outcome": result.outcome, "message": result.message}
    if result.job_id:
        body["job_id"] = result.job_id
    return _response(200, body)


def make_handler(deps: LiveEventDeps) -> Handler:
    def main_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        with log_context(request_id=_request_id(event, context)):
            if not isinstance(event, Mapping):
                return _refusal(400, "the event is not a JSON object")
            try:
                return respond(deps, event)
            except Exception:
                log.exception("live event handler failed")
                return _refusal(500, "internal error; the notification may be retried")

    return main_handler
