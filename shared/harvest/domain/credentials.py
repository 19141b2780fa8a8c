"""Temporary credentials: a SecretId/SecretKey/Token triple that expires, with an optional scope.

Like STS credentials, a temporary key is only good together with its token (X-TC-Token), until it
expires. The token is kept only as a SHA-256 hash: it is compared, never used to sign. The
SecretKey is kept as issued, because verifying an HMAC signature needs the key itself.

A scope is a tuple of action-name patterns (`fnmatch`, e.g. `Describe*`); empty means every action.
`scope_allows` is the one place a scope is checked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from fnmatch import fnmatchcase

TEMPORARY_ID_PREFIX = "AKIDtmp"
MAX_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class TemporaryKey:
    secret_id: str
    secret_key: str
    token_hash: str
    expires_at: float
    scope: tuple[str, ...] = ()
    created_at: float = 0.0


@dataclass(frozen=True)
class IssuedKey:
    """What `harvest keys issue` hands out once: the token is never stored in the clear."""

    key: TemporaryKey
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mint(ttl: float, scope: tuple[str, ...], now: float) -> IssuedKey:
    """A fresh random triple valid for `ttl` seconds from `now`."""
    if not 0 < ttl <= MAX_TTL_SECONDS:
        raise ValueError(f"a temporary key lives between 1 s and {MAX_TTL_SECONDS} s, not {ttl:g} s")
    token = secrets.token_urlsafe(48)
    key = TemporaryKey(
        secret_id=TEMPORARY_ID_PREFIX + secrets.token_hex(14),
        secret_key=secrets.token_urlsafe(30),
        token_hash=hash_token(token),
        expires_at=now + ttl,
        scope=scope,
        created_at=now,
    )
    return IssuedKey(key, token)


def scope_allows(scope: tuple[str, ...], action: str) -> bool:
    """Whether a credential with `scope` may call `action` (an empty scope allows everything)."""
    return not scope or any(fnmatchcase(action, pattern) for pattern in scope)
