"""Who is calling: the request's signature (TC3-HMAC-SHA256, HmacSHA256 or HmacSHA1), its key
(a permanent one from settings, or a temporary one from the CredentialStore) and its token.

Checks, in order: the signature (with the same skew rule for every method), then the
token, so that nothing about a key's token is revealed to a caller who cannot sign with it:
- a temporary key needs its own token, before it expires (AuthFailure.TokenFailure otherwise);
- a permanent key takes no token: a token sent with one is refused, not ignored.
The verified signature travels on the Caller: the handler's replay ledger guards mutating actions.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from harvest.api import signing_v1
from harvest.api.tc3 import SignedRequest, Tc3Verifier, check_timestamp, parse_authorization
from harvest.domain.credentials import TemporaryKey, hash_token, scope_allows
from harvest.errors import (
    SecretIdNotFound,
    SignatureFailure,
    TokenFailure,
    UnauthorizedOperation,
)
from harvest.ports import CredentialStore


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: the SecretId, and the scope of a temporary key (empty: every action)."""

    secret_id: str
    scope: tuple[str, ...] = ()
    temporary: bool = False
    # The verified signature and its timestamp, for the replay ledger of mutating actions.
    signature: str = ""
    timestamp: int = 0


@dataclass(frozen=True)
class V1Request:
    """An HmacSHA1/HmacSHA256 request: its parameters (common ones included) and where it was sent."""

    method: str
    host: str
    params: Mapping[str, str]


class Authenticator:
    def __init__(
        self,
        permanent: Mapping[str, str],
        temporary: CredentialStore | None,
        service: str,
        max_skew: float,
    ) -> None:
        self._permanent = permanent
        self._temporary = temporary
        self._service = service
        self._max_skew = max_skew

    def _key(self, secret_id: str) -> tuple[str, TemporaryKey | None] | None:
        secret_key = self._permanent.get(secret_id)
        if secret_key:
            return secret_key, None
        found = self._temporary.get(secret_id) if self._temporary is not None else None
        return (found.secret_key, found) if found is not None else None

    def verify_tc3(self, request: SignedRequest, now: float) -> Caller:
        looked_up: dict[str, tuple[str, TemporaryKey | None]] = {}

        def lookup(secret_id: str) -> str | None:
            key = self._key(secret_id)
            if key is None:
                return None
            looked_up[secret_id] = key
            return key[0]

        verifier = Tc3Verifier(lookup, self._service, self._max_skew)
        secret_id = verifier.verify(request, now)
        token = request.headers.get("x-tc-token", "")
        caller = self._with_token(secret_id, looked_up[secret_id][1], token, now)
        # verify() checked both: the timestamp is a well-formed integer within the skew.
        signature = parse_authorization(request.headers.get("authorization", "")).signature
        return replace(caller, signature=signature, timestamp=int(request.headers["x-tc-timestamp"]))

    def verify_v1(self, request: V1Request, now: float) -> Caller:
        params = request.params
        secret_id = signing_v1.common(params, "SecretId")
        key = self._key(secret_id)
        if key is None:
            raise SecretIdNotFound(f"SecretId {secret_id[:64]!r} is not known to this service")
        timestamp = check_timestamp("Timestamp", signing_v1.common(params, "Timestamp"), now, self._max_skew)
        signing_v1.common(params, "Nonce")
        if not signing_v1.matches(key[0], request.method, request.host, params):
            raise SignatureFailure(
                "The provided credentials could not be validated. Please check your signature is correct."
            )
        caller = self._with_token(secret_id, key[1], params.get("Token", ""), now)
        return replace(caller, signature=params["Signature"], timestamp=timestamp)

    @staticmethod
    def _with_token(secret_id: str, temporary: TemporaryKey | None, token: str, now: float) -> Caller:
        token = token.strip()
        if temporary is None:
            if token:
                raise TokenFailure(
                    f"SecretId {secret_id} is a permanent key and takes no token; send the token only"
                    " with the temporary key it was issued with",
                    zh=f"SecretId {secret_id} 是永久密钥,不能携带 Token",
                )
            return Caller(secret_id)
        if not token:
            raise TokenFailure(
                f"SecretId {secret_id} is a temporary key: send its token (X-TC-Token) with it",
                zh=f"SecretId {secret_id} 是临时密钥,请求必须携带其 Token(X-TC-Token)",
            )
        if not hmac.compare_digest(hash_token(token), temporary.token_hash):
            raise TokenFailure(
                f"the token is not the one issued with SecretId {secret_id}",
                zh=f"Token 与临时密钥 {secret_id} 不匹配",
            )
        if now >= temporary.expires_at:
            expired = _iso(temporary.expires_at)
            raise TokenFailure(
                f"the temporary credential {secret_id} expired at {expired}; issue a new one",
                zh=f"临时密钥 {secret_id} 已于 {expired} 过期,请重新签发",
            )
        return Caller(secret_id, temporary.scope, temporary=True)


def authorize(caller: Caller, action: str) -> None:
    """Refuse an action outside the caller's scope (UnauthorizedOperation)."""
    if not scope_allows(caller.scope, action):
        raise UnauthorizedOperation(
            f"SecretId {caller.secret_id} may call only {', '.join(caller.scope)}; not {action}",
            zh=f"SecretId {caller.secret_id} 只能调用 {', '.join(caller.scope)},无权调用 {action}",
        )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
