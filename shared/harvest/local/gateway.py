"""A local stand-in for SCF's API-gateway trigger: HTTP requests in, handler events out.

Each request becomes the event API gateway would deliver (httpMethod, path, headers, body,
queryString, requestContext), the handler is called with it and an SCF-like context, and its
integration response ({statusCode, headers, body, isBase64Encoded}) is written back. The same
handler runs on SCF unchanged, so tests through this gateway exercise the deployed code path.

This module is only that translation; the HTTP server, its limits and its other routes (the local
bucket) are in http_server.py.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from harvest.local.http_server import (
    HttpRequest,
    HttpResponse,
    HttpServer,
    Route,
    ServerLimits,
    TooLargeAnswer,
    WsgiApp,
    too_large_text,
)
from harvest.ports import Handler

log = logging.getLogger(__name__)


SCF_SYNC_EVENT_LIMIT = 6 * 1024 * 1024  # SCF refuses larger synchronous events


def parse_query(raw: str) -> dict[str, str | list[str] | bool]:
    """API gateway's `queryString`: repeated keys become lists, a key without '=' becomes True."""
    query: dict[str, str | list[str] | bool] = {}
    for part in raw.split("&"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        key = unquote_plus(name)
        item: str | bool = unquote_plus(value) if sep else True
        if key not in query:
            query[key] = item
            continue
        previous = query[key]
        values = previous if isinstance(previous, list) else ["" if previous is True else str(previous)]
        values.append("" if item is True else str(item))
        query[key] = values
    return query


def build_event(
    method: str, target: str, headers: Mapping[str, str], body: bytes, source_ip: str, request_id: str
) -> dict[str, Any]:
    """The API-gateway trigger event for one request (docs/platform/scf.md#api-gateway-integrated-request)."""
    split = urlsplit(target)
    query = parse_query(split.query)
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    return {
        "httpMethod": method,
        "path": split.path or "/",
        "headers": dict(headers),
        "body": text,
        "isBase64Encoded": is_base64,
        "queryString": query,
        "queryStringParameters": dict(query),
        "pathParameters": {},
        "headerParameters": {},
        "stageVariables": {"stage": "release"},
        "requestContext": {
            "serviceId": "service-local",
            "path": "/",
            "httpMethod": "ANY",
            "requestId": request_id,
            "identity": {},
            "sourceIp": source_ip,
            "stage": "release",
        },
    }


def _integration_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body from a handler's integration response (as API gateway reads it)."""
    if not isinstance(result, Mapping) or not isinstance(result.get("statusCode"), int):
        raise ValueError("Invalid scf response. expected scf response valid JSON.")
    raw_headers = result.get("headers") or {}
    headers = {str(name): str(value) for name, value in raw_headers.items()}
    body = result.get("body", "")
    if not isinstance(body, str):
        body = json.dumps(body)
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    return int(result["statusCode"]), headers, data


def event_route(handler: Handler, function_name: str = "api") -> Route:
    """A route that calls an SCF function's handler with the API-gateway event for each request."""

    def route(request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        event = build_event(
            request.method, request.target, request.header_map(), request.body, request.client, request_id
        )
        context = {
            "request_id": request_id,
            "function_name": function_name,
            "namespace": "local",
            "time_limit_in_ms": 30_000,
            "memory_limit_in_mb": 256,
        }
        try:
            status, headers, data = _integration_response(handler(event, context))
        except Exception as exc:
            log.exception("handler failed for %s %s", request.method, request.path)
            message = {"errorCode": 502, "errorMessage": f"requestId {request_id}, function error: {exc}"}
            status, headers, data = 502, {"Content-Type": "application/json"}, json.dumps(message).encode()
        kept = [(name, value) for name, value in headers.items() if name.lower() != "content-length"]
        return HttpResponse(status, [*kept, ("Content-Length", str(len(data)))], [data])

    return route


class GatewayServer(HttpServer):
    """The API function behind the HTTP server: `GatewayServer(handler, port=0).start()`.

    `extra_routes` mounts WSGI apps by path prefix (the local bucket at /cos/), so one port serves
    the whole local stack; everything else goes to the handler."""

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        extra_routes: Mapping[str, WsgiApp] | None = None,
        max_body_bytes: int = SCF_SYNC_EVENT_LIMIT,
        function_name: str = "api",
        limits: ServerLimits | None = None,
        too_large: TooLargeAnswer = too_large_text,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        limits = replace(limits or ServerLimits(), max_body_bytes=max_body_bytes)
        super().__init__(
            event_route(handler, function_name),
            host,
            port,
            limits,
            ssl_context=ssl_context,
            too_large=too_large,
        )
        for prefix, app in (extra_routes or {}).items():
            self.mount_wsgi(prefix, app)

    def start(self) -> GatewayServer:
        super().start()
        return self

    def __enter__(self) -> GatewayServer:
        return self.start()
