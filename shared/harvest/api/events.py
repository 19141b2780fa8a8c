"""SCF HTTP events -> ApiRequest.

Two shapes arrive at the API function: the API-gateway trigger event (httpMethod, headers, body,
queryString, path, requestContext) and the plainer function-URL event (headers and body, perhaps
rawBody / isBase64Encoded, the method under requestContext.http.method). The function-URL shape was
long undocumented (docs/platform/scf.md#function-url), so every field is optional and read
tolerantly; what cannot be read at all is an InvalidParameter, never a crash.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from harvest.errors import InvalidParameter

# A query value as API gateway delivers it: a string, a list of strings (a repeated key), or
# True (a key without '=').
QueryValue = str | list[str] | bool


@dataclass(frozen=True)
class ApiRequest:
    method: str
    host: str
    content_type: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    query: Mapping[str, QueryValue] = field(default_factory=dict)
    source_ip: str = ""
    request_id: str = ""
    path: str = "/"
    raw_query: str | None = None  # when the event carries the query string exactly as sent

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def canonical_queries(self) -> tuple[str, ...]:
        """The query string as the client may have signed it, most likely first.

        API gateway hands over parsed parameters only. The Python SDK signs `urlencode(params)` in
        its own order, which the event's key order preserves; the Go SDK sorts keys. Both use the
        same escaping (quote_plus), so re-encoding in either order reproduces what was signed.
        """
        if self.raw_query is not None:
            return (self.raw_query,)
        in_order = encode_query(list(self.query.items()))
        by_key = encode_query(sorted(self.query.items()))
        return (in_order,) if in_order == by_key else (in_order, by_key)


def encode_query(items: list[tuple[str, QueryValue]]) -> str:
    parts: list[str] = []
    for key, value in items:
        if value is True:
            parts.append(quote_plus(key))
        elif isinstance(value, list):
            parts.extend(f"{quote_plus(key)}={quote_plus(item)}" for item in value)
        else:
            parts.append(f"{quote_plus(key)}={quote_plus(str(value))}")
    return "&".join(parts)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return "" if value is None else str(value)


def _headers(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidParameter("the event's headers are not an object")
    return {str(name).lower(): _text(value) for name, value in raw.items()}


def _query(raw: Any) -> dict[str, QueryValue]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidParameter("the event's query string parameters are not an object")
    query: dict[str, QueryValue] = {}
    for key, value in raw.items():
        if value is True or isinstance(value, str):
            query[str(key)] = value
        elif isinstance(value, list):
            query[str(key)] = [_text(item) for item in value]
        elif value is None or value is False:
            query[str(key)] = ""
        else:
            query[str(key)] = str(value)
    return query


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _body(event: Mapping[str, Any]) -> bytes:
    raw_body = event.get("rawBody")
    if isinstance(raw_body, str):  # function URL: the unmodified body, when present
        return raw_body.encode("utf-8")
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise InvalidParameter("the event's body is not a string")
    if _truthy(event.get("isBase64Encoded")):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidParameter("the event says isBase64Encoded, but its body is not Base64") from None
    return body.encode("utf-8")


def _get(mapping: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def parse_event(event: Any) -> ApiRequest:
    """Read an API-gateway or function-URL event. Raises InvalidParameter for an unreadable one."""
    if not isinstance(event, Mapping):
        raise InvalidParameter("the event is not an HTTP request object")
    headers = _headers(event.get("headers"))
    method = _text(event.get("httpMethod") or _get(event, "requestContext", "http", "method") or "").upper()
    raw_query = event.get("rawQueryString")
    query_source = event.get("queryString")
    if query_source is None:
        query_source = event.get("queryStringParameters")
    source_ip = _get(event, "requestContext", "sourceIp") or _get(event, "requestContext", "http", "sourceIp")
    request_id = _get(event, "requestContext", "requestId") or _get(event, "requestContext", "request_id")
    path = event.get("path") or event.get("rawPath") or _get(event, "requestContext", "http", "path") or "/"
    return ApiRequest(
        method=method,
        host=headers.get("host", ""),
        content_type=headers.get("content-type", ""),
        headers=headers,
        body=_body(event),
        query=_query(query_source),
        source_ip=_text(source_ip),
        request_id=_text(request_id),
        path=_text(path),
        raw_query=raw_query if isinstance(raw_query, str) else None,
    )
