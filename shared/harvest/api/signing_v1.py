"""HmacSHA1 / HmacSHA256: API 3.0's older signature (the SDK's `signMethod` other than TC3).

Every common parameter travels with the action's parameters (GET query or POST form body):
Action, Version, Region, Timestamp, Nonce, SecretId, SignatureMethod, Signature, and Token or
Language when set. The string signed is `METHOD + Host + "/" + "?" + k=v&...` over every parameter
but Signature, sorted by name, values as sent (not URL-encoded), `_` in names read as `.` (the
SDK's `_format_sign_string`); the signature is Base64 of HMAC(SecretKey, that string).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from harvest.errors import InvalidParameter, MissingParameter

METHODS = {"HmacSHA1": hashlib.sha1, "HmacSHA256": hashlib.sha256}
# The parameters of the request itself, as opposed to the action's; Language and Token are optional.
COMMON = ("Action", "Version", "Region", "Timestamp", "Nonce", "SecretId", "SignatureMethod", "Signature")
OPTIONAL_COMMON = ("Token", "Language", "RequestClient")


def is_v1(params: Mapping[str, str]) -> bool:
    return "Signature" in params and "SecretId" in params


def string_to_sign(method: str, host: str, params: Mapping[str, str], path: str = "/") -> str:
    pairs = sorted((name.replace("_", "."), value) for name, value in params.items() if name != "Signature")
    return f"{method}{host}{path}?" + "&".join(f"{name}={value}" for name, value in pairs)


def sign(secret_key: str, text: str, method: str) -> str:
    digest = hmac.new(secret_key.encode("utf-8"), text.encode("utf-8"), METHODS[method]).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_method(params: Mapping[str, str]) -> str:
    """The SignatureMethod; the v1 default is HmacSHA1 when it is absent."""
    method = params.get("SignatureMethod", "HmacSHA1")
    if method not in METHODS:
        raise InvalidParameter(
            f"SignatureMethod {method[:32]!r} is not supported: use HmacSHA1, HmacSHA256 or TC3-HMAC-SHA256",
            zh=f"不支持 SignatureMethod {method[:32]!r}:请使用 HmacSHA1、HmacSHA256 或 TC3-HMAC-SHA256",
        )
    return method


def matches(secret_key: str, method: str, host: str, params: Mapping[str, str]) -> bool:
    """Whether the request's Signature is the one its SecretKey makes. Constant time."""
    expected = sign(secret_key, string_to_sign(method, host, params), signature_method(params))
    return hmac.compare_digest(expected.encode(), params.get("Signature", "").encode())


def common(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise MissingParameter(f"the common parameter {name} is missing", zh=f"缺少公共参数 {name}")
    return value
