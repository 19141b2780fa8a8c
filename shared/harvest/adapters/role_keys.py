"""The execution role's temporary keys, read afresh for every request to COS and CKafka.

SCF hands a function with an execution role temporary keys (TENCENTCLOUD_SECRETID, _SECRETKEY,
_SESSIONTOKEN, 583/32748) that expire within hours, while a warm instance lives on. So the adapters
never keep keys: they ask a `KeySource` each time they sign, and an answer saying the token expired
makes them ask again (see `EXPIRED_TOKEN_CODES` in each adapter).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import NamedTuple


class CloudKeys(NamedTuple):
    secret_id: str
    secret_key: str
    token: str  # "" for long-lived keys


KeySource = Callable[[], CloudKeys]


def environment_keys(env: Mapping[str, str] | None = None) -> KeySource:
    """Keys as SCF's runtime currently sets them in the environment, read at every call."""
    source = os.environ if env is None else env

    def current() -> CloudKeys:
        return CloudKeys(
            source.get("TENCENTCLOUD_SECRETID", "").strip(),
            source.get("TENCENTCLOUD_SECRETKEY", "").strip(),
            source.get("TENCENTCLOUD_SESSIONTOKEN", "").strip(),
        )

    return current


def fixed_keys(secret_id: str, secret_key: str, token: str = "") -> KeySource:
    """Keys that never change (long-lived keys, tests)."""
    keys = CloudKeys(secret_id, secret_key, token)
    return lambda: keys


class SdkCredential:
    """A Tencent Cloud SDK credential over a KeySource: the SDK calls get_credential_info() per request."""

    def __init__(self, keys: KeySource) -> None:
        self._keys = keys

    def get_credential_info(self) -> tuple[str, str, str | None]:
        keys = self._keys()
        return keys.secret_id, keys.secret_key, keys.token or None
