"""TC3-HMAC-SHA256: Tencent Cloud API 3.0 request signatures, verified and made.

The canonical request is rebuilt from what was received (method, Host and Content-Type header
values, raw body bytes or the query string), exactly as the SDK builds it before signing
(docs/platform/api3.md#tc3-hmac-sha256). The verifier is generic over the service name so a stand-in for
another Tencent API (CKafka) can reuse it; `sign_request` is the client side, for tests and tools.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from harvest.errors import (
    InvalidAuthorization,
    InvalidParameter,
    MissingParameter,
    SecretIdNotFound,
    SignatureExpire,
    SignatureFailure,
)

ALGORITHM = "TC3-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# The SDK always signs "/" (its _requestPath), whatever path a gateway later routes the call through.
CANONICAL_URI = "/"
_AUTHORIZATION = re.compile(
    r"TC3-HMAC-SHA256\s+Credential=(?P<secret_id>[^/\s,]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z0-9-]+)"
    r"/tc3_request\s*,\s*SignedHeaders=(?P<signed>[a-z0-9-]+(?:;[a-z0-9-]+)*)\s*,\s*Signature=(?P<sig>[0-9a-f]{64})",
    re.ASCII,
)


@dataclass(frozen=True)
class Authorization:
    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Authorization:
    """Split the Authorization header; AuthFailure.InvalidAuthorization when it has another shape."""
    match = _AUTHORIZATION.fullmatch(value.strip())
    if match is None:
        raise InvalidAuthorization(
            "Authorization must look like 'TC3-HMAC-SHA256"
            " Credential=<SecretId>/<yyyy-mm-dd>/<service>/tc3_request,"
            " SignedHeaders=content-type;host, Signature=<64 hex>'"
        )
    signed = tuple(match["signed"].split(";"))
    if "content-type" not in signed or "host" not in signed:
        raise InvalidAuthorization("SignedHeaders must include at least content-type and host")
    return Authorization(match["secret_id"], match["date"], match["service"], signed, match["sig"])


# --- the algorithm --------------------------------------------------------------------------------


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def utc_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")


def payload_hash(method: str, body: bytes, unsigned_payload: bool) -> str:
    if unsigned_payload:
        return hashlib.sha256(UNSIGNED_PAYLOAD.encode()).hexdigest()
    return hashlib.sha256(b"" if method == "GET" else body).hexdigest()


def canonical_request(
    method: str,
    canonical_query: str,
    headers: Sequence[tuple[str, str]],
    payload_digest: str,
    uri: str = CANONICAL_URI,
) -> str:
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in headers)
    signed = ";".join(name for name, _ in headers)
    return f"{method}\n{uri}\n{canonical_query}\n{canonical_headers}\n{signed}\n{payload_digest}"


def signature(secret_key: str, date: str, service: str, timestamp: str, canonical: str) -> str:
    scope = f"{date}/{service}/tc3_request"
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"
    k_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    k_service = _hmac(k_date, service)
    k_signing = _hmac(k_service, "tc3_request")
    return hmac.new(k_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


# --- client side ----------------------------------------------------------------------------------


def sign_request(
    *,
    secret_id: str,
    secret_key: str,
    host: str,
    action: str,
    version: str,
    service: str = "mdp",
    method: str = "POST",
    body: bytes | str = b"",
    query: str = "",
    region: str | None = None,
    timestamp: int | None = None,
    content_type: str | None = None,
    token: str | None = None,
    unsigned_payload: bool = False,
    extra_signed_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers the Python SDK would send for this request (Authorization included).

    `query` is the urlencoded query string (GET); `body` the exact bytes (POST). Extra signed
    headers are added to SignedHeaders after content-type and host, names lower-cased.
    """
    method = method.upper()
    timestamp = int(time.time()) if timestamp is None else timestamp
    if content_type is None:
        content_type = "application/x-www-form-urlencoded" if method == "GET" else "application/json"
    raw_body = body.encode("utf-8") if isinstance(body, str) else body
    headers = {
        "Content-Type": content_type,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(timestamp),
    }
    if region:
        headers["X-TC-Region"] = region
    if token:
        headers["X-TC-Token"] = token
    if unsigned_payload:
        headers["X-TC-Content-SHA256"] = UNSIGNED_PAYLOAD
    signed = [("content-type", content_type), ("host", host)]
    for name, value in (extra_signed_headers or {}).items():
        headers[name] = value
        signed.append((name.lower(), value.strip()))
    date = utc_date(timestamp)
    canonical = canonical_request(
        method, query if method == "GET" else "", signed, payload_hash(method, raw_body, unsigned_payload)
    )
    sig = signature(secret_key, date, service, str(timestamp), canonical)
    headers["Authorization"] = (
        f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request,"
        f" SignedHeaders={';'.join(name for name, _ in signed)}, Signature={sig}"
    )
    return headers


# --- server side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """What the verifier needs from a received request. Header names are lower-case."""

    method: str
    headers: Mapping[str, str]
    body: bytes
    # The query string as the client signed it. A gateway hands over parsed parameters only, so
    # the caller may offer a few faithful re-encodings (as sent, sorted); any one may match.
    canonical_queries: Sequence[str] = ("",)


class ReplayCache:
    """Signatures seen within the skew window, to refuse a captured request sent again.

    Bounded: past `max_entries` the oldest entries go first, which only shortens the window in
    which a replay is caught. Per process: on SCF each instance keeps its own cache.
    """

    def __init__(self, window: float, max_entries: int = 100_000) -> None:
        self._window = window
        self._max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()  # signature -> expiry, in insertion order
        self._lock = threading.Lock()

    def check_and_remember(self, sig: str, timestamp: int, now: float) -> bool:
        """True the first time `sig` is seen (and remembers it); False for a replay."""
        with self._lock:
            self._evict(now)
            if sig in self._seen:
                return False
            self._seen[sig] = timestamp + self._window
            while len(self._seen) > self._max_entries:
                self._seen.popitem(last=False)
            return True

    def _evict(self, now: float) -> None:
        # Entries arrive roughly in expiry order (clients' clocks differ a little), so expired ones
        # are dropped from the front; one that outlives its neighbours only delays their eviction.
        while self._seen:
            sig, expiry = next(iter(self._seen.items()))
            if expiry >= now:
                break
            del self._seen[sig]

    def __len__(self) -> int:
        return len(self._seen)


class Tc3Verifier:
    """Checks a request's TC3 signature; returns the authenticated SecretId or raises AuthFailure.*."""

    def __init__(
        self,
        credentials: Mapping[str, str] | Callable[[str], str | None],
        service: str,
        max_skew: float,
        replay: ReplayCache | None = None,
    ) -> None:
        self._lookup: Callable[[str], str | None] = (
            credentials.get if isinstance(credentials, Mapping) else credentials
        )
        self._service = service
        self._max_skew = max_skew
        self._replay = replay

    def verify(self, request: SignedRequest, now: float) -> str:
        headers = request.headers
        raw_auth = headers.get("authorization", "")
        if not raw_auth:
            raise InvalidAuthorization("the Authorization header is missing")
        auth = parse_authorization(raw_auth)
        secret_key = self._lookup(auth.secret_id)
        if not secret_key:
            raise SecretIdNotFound(f"SecretId {auth.secret_id[:64]!r} is not known to this service")
        timestamp = check_timestamp("X-TC-Timestamp", headers.get("x-tc-timestamp", ""), now, self._max_skew)
        if auth.service != self._service:
            raise InvalidAuthorization(
                f"the credential scope names service {auth.service!r}; this endpoint serves {self._service!r}"
            )
        if auth.date != utc_date(timestamp):
            raise SignatureFailure(
                f"the credential date {auth.date} is not the UTC date of X-TC-Timestamp"
                f" ({utc_date(timestamp)})"
            )
        if not self._matches(request, auth, secret_key, str(timestamp)):
            raise SignatureFailure(
                "The provided credentials could not be validated. Please check your signature is correct."
            )
        if self._replay is not None and not self._replay.check_and_remember(auth.signature, timestamp, now):
            raise SignatureFailure("this signature was already used: the request is a replay; sign it afresh")
        return auth.secret_id

    def _matches(self, request: SignedRequest, auth: Authorization, secret_key: str, timestamp: str) -> bool:
        unsigned = request.headers.get("x-tc-content-sha256", "").strip() == UNSIGNED_PAYLOAD
        digest = payload_hash(request.method, request.body, unsigned)
        as_sent = [(name, request.headers.get(name, "").strip()) for name in auth.signed_headers]
        # The SDK signs header values as sent; the API 3.0 documentation lower-cases them. Accept both.
        header_forms = [as_sent]
        lowered = [(name, value.lower()) for name, value in as_sent]
        if lowered != as_sent:
            header_forms.append(lowered)
        matched = False
        for query in dict.fromkeys(request.canonical_queries):
            for signed_headers in header_forms:
                canonical = canonical_request(request.method, query, signed_headers, digest)
                expected = signature(secret_key, auth.date, auth.service, timestamp, canonical)
                # Constant time, and no early exit, so timing says nothing about which form was close.
                matched |= hmac.compare_digest(expected, auth.signature)
        return matched


def check_timestamp(name: str, raw: str, now: float, max_skew: float) -> int:
    """A request's signing time (`name`: the header or parameter it came in), as integer Unix
    seconds within `max_skew` of `now`: the same rule for TC3 and the v1 signatures."""
    raw = raw.strip()
    if not raw:
        what = f"the {name} header" if name.startswith("X-") else name
        raise MissingParameter(f"{what} is missing")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise InvalidParameter(f"{name} must be integer Unix seconds, got {raw[:32]!r}")
    timestamp = int(raw)
    if abs(now - timestamp) > max_skew:
        raise SignatureExpire(
            f"{name} {timestamp} is {now - timestamp:+.0f} s from server time;"
            f" at most {max_skew:.0f} s of clock skew is allowed"
        )
    return timestamp
