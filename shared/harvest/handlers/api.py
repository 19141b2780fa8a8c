"""API function: an SCF HTTP event in, a Tencent Cloud API 3.0 answer out.

parse event -> protocol checks -> TC3 signature -> action -> rate limit -> parameters -> use case.
Every path ends in an integration response with HTTP 200 and a Response envelope: a HarvestError
answers with its own code (errors.py is the one table), anything unexpected with a generic
InternalError whose detail goes to the log under the RequestId, never to the client.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harvest.api.actions import ACTIONS, Action, ActionContext, Payload, parse_params
from harvest.api.envelope import error_body, integration_response, read_params, success_body
from harvest.api.events import ApiRequest, parse_event
from harvest.api.ratelimit import RateLimiter
from harvest.api.tc3 import ReplayCache, SignedRequest, Tc3Verifier
from harvest.domain.access import Caller
from harvest.domain.registry import Registry
from harvest.errors import (
    HarvestError,
    InvalidAction,
    MissingParameter,
    NoSuchVersion,
    RequestSizeLimitExceeded,
    UnsupportedProtocol,
    UnsupportedRegion,
)
from harvest.logs import log_context
from harvest.ports import JobStore, Relay
from harvest.settings import Settings

log = logging.getLogger(__name__)

SERVICE = "mdp"
API_VERSION = "2020-05-27"
INTERNAL_MESSAGE = "An internal error occurred. Quote the RequestId when reporting it."

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class ApiDeps:
    settings: Settings
    registry: Registry
    store: JobStore
    relay: Relay
    clock: Callable[[], float] = time.time  # wall clock: signatures carry Unix timestamps
    rate_limiter: RateLimiter | None = None  # None: one built from settings.rate_limit
    actions: Mapping[str, Action] = field(default_factory=lambda: dict(ACTIONS))


@dataclass
class _Outcome:
    """What one request did, for its log line."""

    action: str = ""
    secret_id: str = ""
    code: str = "OK"


def _query_size(request: ApiRequest) -> int:
    return sum(len(key) + len(str(value)) + 2 for key, value in request.query.items())


def _check_protocol(request: ApiRequest, settings: Settings) -> str:
    """Method, size, version and region; returns the action name."""
    if request.method not in ("GET", "POST"):
        method = request.method[:16] or "(none)"
        raise UnsupportedProtocol(f"HTTP method {method} is not supported; use POST or GET")
    query_size = len(request.raw_query) if request.raw_query is not None else _query_size(request)
    size = len(request.body) + query_size
    if size > settings.max_body_bytes:
        raise RequestSizeLimitExceeded(
            f"the request is {size} bytes; at most {settings.max_body_bytes} bytes are accepted"
        )
    action = request.header("x-tc-action").strip()
    if not action:
        raise MissingParameter("the X-TC-Action header is missing")
    version = request.header("x-tc-version").strip()
    if not version:
        raise MissingParameter("the X-TC-Version header is missing")
    if version != API_VERSION:
        raise NoSuchVersion(f"version {version[:32]!r} does not exist; this API is version {API_VERSION}")
    region = request.header("x-tc-region").strip()
    if not region:
        raise MissingParameter("the X-TC-Region header is missing")
    if region != settings.region:
        raise UnsupportedRegion(
            f"region {region[:32]!r} is not served here; this endpoint serves {settings.region}"
        )
    return action


def make_handler(deps: ApiDeps) -> Handler:
    settings = deps.settings
    limiter = deps.rate_limiter or RateLimiter(settings.rate_limit)
    replay = ReplayCache(settings.signature_max_skew) if settings.replay_protection else None
    verifier = Tc3Verifier(settings.credentials, SERVICE, settings.signature_max_skew, replay)

    def serve(request: ApiRequest, outcome: _Outcome) -> Payload:
        name = _check_protocol(request, settings)
        outcome.action = name[:64]
        now = deps.clock()
        signed = SignedRequest(request.method, request.headers, request.body, request.canonical_queries())
        outcome.secret_id = verifier.verify(signed, now)
        action = deps.actions.get(name)
        if action is None:
            raise InvalidAction(f"action {name[:64]!r} does not exist in {SERVICE} {API_VERSION}")
        caller = Caller(outcome.secret_id, settings.key_scopes.get(outcome.secret_id))
        caller.check_action(action.name)
        limiter.acquire(outcome.secret_id, action.name)
        raw, from_query = read_params(request)
        params = parse_params(action, raw, from_query)
        ctx = ActionContext(settings, deps.registry, deps.store, deps.relay, now, caller)
        return action.run(ctx, params)

    def main_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        with log_context(request_id=request_id):
            return _answer(event, request_id)

    def _answer(event: Mapping[str, Any], request_id: str) -> dict[str, Any]:
        started = time.monotonic()
        outcome = _Outcome()
        gateway_id = ""
        try:
            request = parse_event(event)
            gateway_id = request.request_id
            body = success_body(serve(request, outcome), request_id)
        except HarvestError as exc:
            outcome.code = exc.code
            message = exc.message
            if exc.code.startswith("InternalError"):  # storage or queue trouble: details stay in the log
                log.error("request failed: %s", exc.message, exc_info=True)
                message = INTERNAL_MESSAGE
            body = error_body(exc.code, message, request_id)
        except Exception:
            outcome.code = "InternalError"
            log.exception("unexpected error")
            body = error_body("InternalError", INTERNAL_MESSAGE, request_id)
        log.info(
            "%s %s",
            outcome.action or "-",
            outcome.code,
            extra={
                "gateway_request_id": gateway_id,
                "action": outcome.action,
                "caller": outcome.secret_id,  # the SecretId; a field named *secret* would be redacted
                "code": outcome.code,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return integration_response(body)

    return main_handler
