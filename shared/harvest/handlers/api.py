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
from harvest.api.ratelimit import REPLAY_PROTECTED_ACTIONS, Limiter, RateLimiter, SignatureLedger
from harvest.api.tc3 import ReplayCache, SignedRequest, Tc3Verifier, parse_authorization
from harvest.console import static as console
from harvest.domain.registry import Registry
from harvest.errors import (
    HarvestError,
    InvalidAction,
    MissingParameter,
    NoSuchVersion,
    RequestSizeLimitExceeded,
    SignatureFailure,
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
    rate_limiter: Limiter | None = None  # None: one in this process, from settings.rate_limit
    # Where signatures are remembered when settings.replay_protection is on; None: in this process.
    replay_ledger: SignatureLedger | None = None
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


def unconfigured_handler(error: HarvestError) -> Handler:
    """The API of a function that could not start: every call is an InternalError with a RequestId.

    The cause was logged once at start-up; each call logs it again under its RequestId, so an
    operator holding a caller's RequestId finds the reason.
    """

    def main_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        with log_context(request_id=request_id):
            log.error("not configured: %s", error.message, extra={"code": "InternalError"})
            return integration_response(error_body("InternalError", INTERNAL_MESSAGE, request_id))

    return main_handler


def make_handler(deps: ApiDeps) -> Handler:
    settings = deps.settings
    limiter = deps.rate_limiter or RateLimiter(settings.rate_limit)
    # The console's static files share the api function's URL; the local bucket sits beside them
    # only under `harvest serve` (the one place with a local object store).
    console_config = console.ConsoleConfig(
        settings.region, bucket="../cos/" if settings.object_store == "local" else ""
    )
    ledger: SignatureLedger | None = None
    if settings.replay_protection:
        ledger = deps.replay_ledger or ReplayCache(settings.signature_max_skew)
    verifier = Tc3Verifier(settings.credentials, SERVICE, settings.signature_max_skew)

    def refuse_replay(request: ApiRequest, now: float) -> None:
        # Only after the signature verified: its timestamp is a well-formed integer within the skew.
        assert ledger is not None
        signature = parse_authorization(request.header("authorization")).signature
        if not ledger.check_and_remember(signature, int(request.header("x-tc-timestamp")), now):
            raise SignatureFailure("this signature was already used: the request is a replay; sign it afresh")

    def serve(request: ApiRequest, outcome: _Outcome) -> Payload:
        name = _check_protocol(request, settings)
        outcome.action = name[:64]
        now = deps.clock()
        signed = SignedRequest(request.method, request.headers, request.body, request.canonical_queries())
        outcome.secret_id = verifier.verify(signed, now)
        action = deps.actions.get(name)
        if action is None:
            raise InvalidAction(f"action {name[:64]!r} does not exist in {SERVICE} {API_VERSION}")
        if ledger is not None and action.name in REPLAY_PROTECTED_ACTIONS:
            refuse_replay(request, now)
        limiter.acquire(outcome.secret_id, action.name)
        raw, from_query = read_params(request)
        params = parse_params(action, raw, from_query)
        ctx = ActionContext(settings, deps.registry, deps.store, deps.relay, now)
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
            if console.is_console_path(request.path):
                page = console.console_response(request.method, request.path, request.headers, console_config)
                return console.integration_response(page)
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
