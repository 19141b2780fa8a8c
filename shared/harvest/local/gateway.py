"""A local stand-in for SCF's API-gateway trigger: HTTP requests in, handler events out.

Each request becomes the event API gateway would deliver (httpMethod, path, headers, body,
queryString, requestContext), the handler is called with it and an SCF-like context, and its
integration response ({statusCode, headers, body, isBase64Encoded}) is written back. The same
handler runs on SCF unchanged, so tests through this gateway exercise the deployed code path.

Other paths can be served by plain WSGI apps (`extra_routes`, path prefix -> app), for example
the local bucket, so one port serves the whole local stack.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote_plus, unquote_to_bytes, urlsplit

log = logging.getLogger(__name__)

EventHandler = Callable[[Mapping[str, Any], Any], Any]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

SCF_SYNC_EVENT_LIMIT = 6 * 1024 * 1024  # SCF refuses larger synchronous events
IDLE_KEEPALIVE_SECONDS = 120.0
SHUTDOWN_POLL_SECONDS = 0.05  # how soon stop() takes effect


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of concurrent clients (SDK users, the
    # CLI's workers) overflows it and sees connection resets.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], gateway: GatewayServer) -> None:
        self.gateway = gateway
        super().__init__(address, _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    # Headers and body go out as two writes; with Nagle on, the client's delayed ACK holds every
    # reply for ~40 ms (measured by the benchmark: 181 -> 1,479 Describe requests/s).
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK and the CLI reuse connections
    timeout = IDLE_KEEPALIVE_SECONDS
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # --- request ---------------------------------------------------------------------------------

    def _read_body(self, limit: int) -> bytes | None:
        """The request body, or None when it is larger than `limit` (the connection is then closed)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                length = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                size += length
                if size > limit:
                    return None
                chunks.append(self.rfile.read(length))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _headers(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for name in dict.fromkeys(self.headers.keys()):
            merged[name] = ", ".join(self.headers.get_all(name) or [])
        return merged

    def _dispatch(self) -> None:
        gateway = self.server.gateway
        try:
            body = self._read_body(gateway.max_body_bytes)
        except ValueError:
            self._send(400, {"Content-Type": "text/plain"}, b"malformed request body framing\n")
            self.close_connection = True
            return
        if body is None:
            self._send(413, {"Content-Type": "text/plain"}, b"request body too large\n")
            self.close_connection = True
            return
        path = urlsplit(self.path).path or "/"
        route = gateway.route_for(path)
        if route is not None:
            self._run_wsgi(route[0], route[1], body)
        else:
            self._run_handler(body)

    # --- the API handler --------------------------------------------------------------------------

    def _run_handler(self, body: bytes) -> None:
        gateway = self.server.gateway
        request_id = str(uuid.uuid4())
        source_ip = self.client_address[0]
        event = build_event(self.command, self.path, self._headers(), body, source_ip, request_id)
        context = {
            "request_id": request_id,
            "function_name": gateway.function_name,
            "namespace": "local",
            "time_limit_in_ms": 30_000,
            "memory_limit_in_mb": 256,
        }
        try:
            result = gateway.handler(event, context)
            status, headers, data = _integration_response(result)
        except Exception as exc:
            log.exception("handler failed for %s %s", self.command, self.path)
            message = {"errorCode": 502, "errorMessage": f"requestId {request_id}, function error: {exc}"}
            status, headers, data = 502, {"Content-Type": "application/json"}, json.dumps(message).encode()
        self._send(status, headers, data)

    # --- WSGI routes ------------------------------------------------------------------------------

    def _run_wsgi(self, prefix: str, app: WsgiApp, body: bytes) -> None:
        split = urlsplit(self.path)
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": prefix.rstrip("/"),
            # PEP 3333: environ strings hold the raw bytes, decoded as latin-1.
            "PATH_INFO": unquote_to_bytes(split.path).decode("latin-1")[len(prefix.rstrip("/")) :],
            "QUERY_STRING": split.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self._headers().items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = value
        started: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[..., Any]:
            started["status"], started["headers"] = status, headers
            return lambda data: None  # the legacy write() callable: unused by our apps

        try:
            result = app(environ, start_response)
        except Exception:
            log.exception("route %s failed for %s %s", prefix, self.command, self.path)
            self._send(500, {"Content-Type": "text/plain"}, b"internal error\n")
            return
        try:
            chunks = iter(result)
            first = next(chunks, b"")  # WSGI apps may call start_response lazily, on first iteration
            status = int(str(started["status"]).split(" ", 1)[0])
            headers = list(started["headers"])
            length = next((value for name, value in headers if name.lower() == "content-length"), None)
            if length is None:
                # No declared length: buffer so keep-alive clients still get one.
                data = first + b"".join(chunks)
                self._send(status, {name: value for name, value in headers}, data)
                return
            # Declared length (bucket objects, HEAD included): stream, never hold a whole object.
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in ("connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(first)
                for chunk in chunks:
                    self.wfile.write(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    # --- response ---------------------------------------------------------------------------------

    def _send(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


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


class GatewayServer:
    """`GatewayServer(handler, port=0).start()` serves until `stop()`; `.port` is the bound port."""

    def __init__(
        self,
        handler: EventHandler,
        host: str = "127.0.0.1",
        port: int = 0,
        extra_routes: Mapping[str, WsgiApp] | None = None,
        max_body_bytes: int = SCF_SYNC_EVENT_LIMIT,
        function_name: str = "api",
    ) -> None:
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.function_name = function_name
        # Longest prefix first, so /cos/bucket/ wins over /cos/.
        self._routes = sorted((extra_routes or {}).items(), key=lambda item: len(item[0]), reverse=True)
        self._server = _Server((host, port), self)
        self._thread: threading.Thread | None = None
        self._serving = False

    def route_for(self, path: str) -> tuple[str, WsgiApp] | None:
        for prefix, app in self._routes:
            base = prefix.rstrip("/")
            if path == base or path.startswith(base + "/"):
                return prefix, app
        return None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """host:port, as the Tencent SDK's HttpProfile(endpoint=...) wants it."""
        return f"{self.host}:{self.port}"

    def start(self) -> GatewayServer:
        """Serve in a background thread."""
        self._serving = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), name="gateway", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (a CLI's foreground mode) until `stop()` from another thread."""
        self._serving = True
        self._server.serve_forever(SHUTDOWN_POLL_SECONDS)

    def stop(self) -> None:
        """Stop accepting requests and close the listening socket; idle keep-alive threads just end."""
        if self._serving:
            self._server.shutdown()
            self._serving = False
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
