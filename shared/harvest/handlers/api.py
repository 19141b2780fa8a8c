"""API function: an SCF HTTP event in, a Tencent Cloud API 3.0 answer out.

parse event -> protocol checks -> signature and token -> action and scope -> rate limit ->
parameters -> use case. Every path ends in an integration response with HTTP 200 and a Response
envelope: a HarvestError answers with its own code (errors.py is the one table), anything
unexpected with a generic InternalError whose detail goes to the log under the RequestId, never to
the client. Messages are English, or Chinese for `X-TC-Language: zh-CN` (`Language` in v1 requests).

Two request forms arrive: TC3-HMAC-SHA256, whose common parameters are X-TC-* headers, and the
older HmacSHA1/HmacSHA256 form, whose common parameters (Action, Signature, ...) travel with the
action's own in the GET query or the POST form body (api/signing_v1.py).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harvest.api import signing_v1
from harvest.api.actions import ACTIONS, Action, ActionContext, Payload, parse_params
from harvest.api.auth import Authenticator, Caller, V1Request, authorize
from harvest.api.envelope import error_body, integration_response, read_flat_params, read_params, success_body
from harvest.api.envelope import parse_query_params as nest_params
from harvest.api.events import ApiRequest, parse_event
from harvest.api.i18n import message_for
from harvest.api.ratelimit import REPLAY_PROTECTED_ACTIONS, RateLimiter
from harvest.api.tc3 import ReplayCache, SignedRequest
from harvest.console import static as console
from harvest.domain import access
from harvest.domain.registry import Registry
from harvest.errors import (
    HarvestError,
    InvalidAction,
    InvalidParameter,
    MissingParameter,
    NoSuchVersion,
    RequestSizeLimitExceeded,
    SignatureFailure,
    UnsupportedProtocol,
    UnsupportedRegion,
)
from harvest.logs import log_context
from harvest.ports import CredentialStore, Handler, JobRecords, Limiter, Relay, SignatureLedger
from harvest.settings import Settings

log = logging.getLogger(__name__)

SERVICE = "mdp"
API_VERSION = "2020-05-27"
INTERNAL_MESSAGE = {
    "en-US": "An internal error occurred. Quote the RequestId when reporting it.",
    "zh-CN": "内部错误。反馈问题时请提供 RequestId。",
}
LANGUAGES = ("en-US", "zh-CN")  # what API 3.0 answers in; en-US when the request names none



@dataclass(frozen=True)
class ApiDeps:
    settings: Settings
    registry: Registry
    store: JobRecords
    relay: Relay
    clock: Callable[[], float] = time.time  # wall clock: signatures carry Unix timestamps
    rate_limiter: Limiter | None = None  # None: one in this process, from settings.rate_limit
    # Where signatures are remembered when settings.replay_protection is on; None: in this process.
    replay_ledger: SignatureLedger | None = None
    actions: Mapping[str, Action] = field(default_factory=lambda: dict(ACTIONS))
    credentials: CredentialStore | None = None  # temporary keys; None: permanent keys only


@dataclass
class _Outcome:
    """What one request did, for its log line."""

    action: str = ""
    secret_id: str = ""
    code: str = "OK"
    language: str = "en-US"


@dataclass(frozen=True)
class _Call:
    """One request's common parameters and action parameters, whichever form it came in."""

    action: str
    version: str
    region: str
    language: str
    v1: V1Request | None = None  # set for an HmacSHA1/HmacSHA256 request
    v1_params: dict[str, Any] = field(default_factory=dict)  # its own parameters, every value a string


def _query_size(request: ApiRequest) -> int:
    return sum(len(key) + len(str(value)) + 2 for key, value in request.query.items())


def _language(raw: str) -> str:
    if not raw.strip():
        return "en-US"
    for language in LANGUAGES:
        if raw.strip().lower() == language.lower():
            return language
    raise InvalidParameter(
        f"language {raw[:16]!r} is not supported: use zh-CN or en-US",
        zh=f"不支持语言 {raw[:16]!r}:请使用 zh-CN 或 en-US",
    )


def _guess_language(request: ApiRequest) -> str:
    """The language to answer errors in, read leniently before anything else is checked."""
    raw = request.header("x-tc-language") or str(request.query.get("Language", ""))
    try:
        return _language(raw)
    except InvalidParameter:
        return "en-US"


def _read_call(request: ApiRequest, settings: Settings) -> _Call:
    """Method, size, then the common parameters of a TC3 or a v1 request, and its own parameters."""
    if request.method not in ("GET", "POST"):
        method = request.method[:16] or "(none)"
        raise UnsupportedProtocol(
            f"HTTP method {method} is not supported; use POST or GET",
            zh=f"不支持 HTTP 方法 {method},请使用 POST 或 GET",
        )
    query_size = len(request.raw_query) if request.raw_query is not None else _query_size(request)
    size = len(request.body) + query_size
    if size > settings.max_body_bytes:
        raise RequestSizeLimitExceeded(
            f"the request is {size} bytes; at most {settings.max_body_bytes} bytes are accepted",
            zh=f"请求大小为 {size} 字节,最多接受 {settings.max_body_bytes} 字节",
        )
    if request.header("authorization") or request.header("x-tc-action"):
        action = _required_header(request, "X-TC-Action")
        version = _required_header(request, "X-TC-Version")
        _check_version(version)
        region = _required_header(request, "X-TC-Region")
        _check_region(region, settings)
        # The body is read only once the signature is checked (serve), as before v1 existed.
        return _Call(action, version, region, _language(request.header("x-tc-language")))
    flat = read_flat_params(request)
    if not signing_v1.is_v1(flat):
        raise MissingParameter(
            "the X-TC-Action header is missing (and the request is not HmacSHA1/HmacSHA256-signed either)",
            zh="缺少 X-TC-Action 请求头(请求也不是 HmacSHA1/HmacSHA256 签名)",
        )
    signing_v1.signature_method(flat)
    version = signing_v1.common(flat, "Version")
    _check_version(version)
    region = signing_v1.common(flat, "Region")
    _check_region(region, settings)
    own = {
        key: value for key, value in flat.items() if key not in signing_v1.COMMON + signing_v1.OPTIONAL_COMMON
    }
    return _Call(
        action=signing_v1.common(flat, "Action"),
        version=version,
        region=region,
        language=_language(flat.get("Language", "")),
        v1=V1Request(request.method, request.host, flat),
        v1_params=nest_params(own),
    )


def _required_header(request: ApiRequest, name: str) -> str:
    value = request.header(name.lower()).strip()
    if not value:
        raise MissingParameter(f"the {name} header is missing", zh=f"缺少 {name} 请求头")
    return value


def _check_version(version: str) -> None:
    if version != API_VERSION:
        raise NoSuchVersion(
            f"version {version[:32]!r} does not exist; this API is version {API_VERSION}",
            zh=f"接口版本 {version[:32]!r} 不存在,本接口版本为 {API_VERSION}",
        )


def _check_region(region: str, settings: Settings) -> None:
    if region != settings.region:
        raise UnsupportedRegion(
            f"region {region[:32]!r} is not served here; this endpoint serves {settings.region}",
            zh=f"此处不提供地域 {region[:32]!r} 的服务,本接入点服务于 {settings.region}",
        )


def unconfigured_handler(error: HarvestError) -> Handler:
    """The API of a function that could not start: every call is an InternalError with a RequestId.

    The cause was logged once at start-up; each call logs it again under its RequestId, so an
    operator holding a caller's RequestId finds the reason.
    """

    def main_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        with log_context(request_id=request_id):
            log.error("not configured: %s", error.message, extra={"code": "InternalError"})
            try:
                language = _guess_language(parse_event(event))
            except HarvestError:
                language = "en-US"
            return integration_response(error_body("InternalError", INTERNAL_MESSAGE[language], request_id))

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
    auth = Authenticator(settings.credentials, deps.credentials, SERVICE, settings.signature_max_skew)

    def refuse_replay(caller: Caller, now: float) -> None:
        assert ledger is not None
        if not ledger.check_and_remember(caller.signature, caller.timestamp, now):
            raise SignatureFailure(
                "this signature was already used: the request is a replay; sign it afresh",
                zh="此签名已被使用过:请求为重放请求,请重新签名",
            )

    def serve(request: ApiRequest, outcome: _Outcome) -> Payload:
        outcome.language = _guess_language(request)
        call = _read_call(request, settings)
        outcome.action, outcome.language = call.action[:64], call.language
        now = deps.clock()
        if call.v1 is not None:
            caller = auth.verify_v1(call.v1, now)
        else:
            signed = SignedRequest(request.method, request.headers, request.body, request.canonical_queries())
            caller = auth.verify_tc3(signed, now)
        outcome.secret_id = caller.secret_id
        action = deps.actions.get(call.action)
        if action is None:
            name = call.action[:64]
            raise InvalidAction(
                f"action {name!r} does not exist in {SERVICE} {API_VERSION}",
                zh=f"接口 {name!r} 在 {SERVICE} {API_VERSION} 中不存在",
            )
        authorize(caller, action.name)
        if ledger is not None and action.name in REPLAY_PROTECTED_ACTIONS:
            refuse_replay(caller, now)
        # A permanent key's scope (HARVEST_CREDENTIALS): actions, channels, buckets; the actions check
        # here, the channel and bucket checks where a job is read or written.
        holder = access.Caller(caller.secret_id, settings.key_scopes.get(caller.secret_id))
        holder.check_action(action.name)
        limiter.acquire(outcome.secret_id, action.name)
        raw, from_query = read_params(request) if call.v1 is None else (call.v1_params, True)
        params = parse_params(action, raw, from_query)
        ctx = ActionContext(settings, deps.registry, deps.store, deps.relay, now, holder)
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
            message = message_for(exc, outcome.language)
            if exc.code.startswith("InternalError"):  # storage or queue trouble: details stay in the log
                log.error("request failed: %s", exc.message, exc_info=True)
                message = INTERNAL_MESSAGE[outcome.language]
            body = error_body(exc.code, message, request_id)
        except Exception:
            outcome.code = "InternalError"
            log.exception("unexpected error")
            body = error_body("InternalError", INTERNAL_MESSAGE[outcome.language], request_id)
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
