"""The HTTP server of `harvest serve`: Hypercorn's HTTP/1.1 (h11) and HTTP/2 (h2) protocol code on an
asyncio loop in its own thread, with the limits a public port needs.

What each limit is and who enforces it:
- **strict parsing**: h11 refuses a negative or non-numeric Content-Length, a chunk size that is
  not hex (`-1`), any Transfer-Encoding other than `chunked`, and a request head or chunk-size line
  longer than `max_head_bytes`, answering 4xx/501 and closing;
- **a deadline for the whole request head**: Hypercorn's idle timer runs from the moment a
  connection is idle (opened, or its last answer sent) until a complete request head arrives;
  trickling bytes does not reset it, so `head_timeout` is also the keep-alive idle limit;
- **keep-alive limits**: `head_timeout` idle, `keep_alive_max_requests` answers per connection;
- **body limit while reading**: `_read_body` stops at `max_body_bytes` (a larger Content-Length is
  refused before reading) and the rest of the connection is dropped; Hypercorn's bounded app queue
  stops reading the socket while the body waits, so memory stays at the limit plus one queue;
  the body must also arrive within `body_timeout`;
- **a connection cap** (`max_connections`): a connection past the cap is answered 503 and closed at
  once, so a flood of idle sockets cannot take the file descriptors the API needs;
- **graceful shutdown**: `stop()` stops accepting, lets requests in flight finish for
  `graceful_timeout`, closes idle keep-alive connections, then cancels what is left.
Nagle is off on every connection (headers and body go out as separate writes; with Nagle on, the
client's delayed ACK would hold every keep-alive answer for ~40 ms).

Routes are plain synchronous callables (`Route`: HttpRequest -> HttpResponse) run in a thread pool,
mounted by path prefix (`mount`); WSGI apps mount through `wsgi_route`. TLS is a context handed to
the constructor (`ssl_context`): the protocol code reads it from the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import io
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote_to_bytes

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.typing import AppWrapper

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# The whole answer to a connection past the cap, written before it is dropped.
_SERVER_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 27\r\n"
    b"Connection: close\r\nRetry-After: 1\r\n\r\ntoo many connections, retry"
)


TLS_SHUTDOWN_TIMEOUT = 2.0  # seconds a closing TLS connection waits for the peer's close_notify
# Python 3.11+ can bound that wait (30 s by default, which would keep a closed connection's slot
# taken that long); 3.10 cannot.
_TLS_CLOSE: dict[str, Any] = (
    {"ssl_shutdown_timeout": TLS_SHUTDOWN_TIMEOUT} if sys.version_info >= (3, 11) else {}
)


@dataclass(frozen=True)
class ServerLimits:
    max_body_bytes: int = 6 * 1024 * 1024
    max_connections: int = 2048
    head_timeout: float = 15.0  # a complete request head within this, also the keep-alive idle limit
    body_timeout: float = 30.0  # the whole body within this once the head is in
    max_head_bytes: int = 16 * 1024  # request line + headers, and any chunk-size line
    keep_alive_max_requests: int = 1000
    graceful_timeout: float = 5.0
    worker_threads: int = 32  # routes run here; a request waits for a free one


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str  # path and query as sent, still percent-encoded
    headers: tuple[tuple[str, str], ...]  # names as sent, in order
    body: bytes
    client: str
    server: tuple[str, int]
    scheme: str = "http"
    http_version: str = "1.1"

    @property
    def path(self) -> str:
        return self.target.partition("?")[0] or "/"

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header_map(self) -> dict[str, str]:
        """Headers by name as sent; repeated headers joined with ', '."""
        merged: dict[str, str] = {}
        index: dict[str, str] = {}
        for name, value in self.headers:
            key = index.setdefault(name.lower(), name)
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return merged


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes] = ()
    close: Callable[[], None] | None = None  # called once the body is sent (or abandoned)


Route = Callable[[HttpRequest], HttpResponse]
# The answer to a body over the limit (limit in bytes): a route's own error format, or plain text.
TooLargeAnswer = Callable[[int], HttpResponse]


def text_response(status: int, message: str, extra: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    data = message.encode("utf-8")
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data))), *extra]
    return HttpResponse(status, headers, [data])


def too_large_text(limit: int) -> HttpResponse:
    return text_response(413, f"request body too large: at most {limit} bytes are accepted\n")


def wsgi_route(prefix: str, app: WsgiApp) -> Route:
    """A WSGI app as a route mounted at `prefix` (SCRIPT_NAME = prefix, PATH_INFO = the rest)."""
    script_name = prefix.rstrip("/")

    def route(request: HttpRequest) -> HttpResponse:
        # PEP 3333: environ strings hold the raw bytes, decoded as latin-1.
        path_info = unquote_to_bytes(request.path).decode("latin-1")[len(script_name) :]
        headers = request.header_map()
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": script_name,
            "PATH_INFO": path_info,
            "QUERY_STRING": request.query,
            "CONTENT_TYPE": next((v for k, v in headers.items() if k.lower() == "content-type"), ""),
            "CONTENT_LENGTH": str(len(request.body)),
            "SERVER_NAME": request.server[0],
            "SERVER_PORT": str(request.server[1]),
            "SERVER_PROTOCOL": f"HTTP/{request.http_version}",
            "REMOTE_ADDR": request.client,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.scheme,
            "wsgi.input": io.BytesIO(request.body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = value
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started["status"], started["headers"] = status, headers
            return lambda data: None  # the legacy write() callable: unused by our apps

        result = app(environ, start_response)
        chunks = iter(result)
        try:
            first = next(chunks, b"")  # WSGI apps may call start_response lazily, on first iteration
        except BaseException:
            getattr(result, "close", lambda: None)()
            raise
        status = int(str(started["status"]).split(" ", 1)[0])
        body = _prepend(first, chunks)
        return HttpResponse(status, list(started["headers"]), body, getattr(result, "close", None))

    return route


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


class _Routes:
    """Path prefix -> route; the longest prefix wins, the fallback takes the rest."""

    def __init__(self, fallback: Route) -> None:
        self.fallback = fallback
        self._mounted: list[tuple[str, Route]] = []

    def add(self, prefix: str, route: Route) -> None:
        self._mounted.append((prefix, route))
        self._mounted.sort(key=lambda item: len(item[0]), reverse=True)

    def find(self, path: str) -> Route:
        for prefix, route in self._mounted:
            base = prefix.rstrip("/")
            if path == base or path.startswith(base + "/"):
                return route
        return self.fallback


class HttpServer:
    """`HttpServer(fallback_route, host, port).start()` serves until `stop()`; `.port` is the bound port.

    The listening socket is bound in the constructor (port 0 picks a free one)."""

    def __init__(
        self,
        fallback: Route,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ServerLimits = ServerLimits(),
        ssl_context: ssl.SSLContext | None = None,
        too_large: TooLargeAnswer = too_large_text,
    ) -> None:
        self.limits = limits
        self.too_large = too_large
        self._routes = _Routes(fallback)
        self._ssl = ssl_context
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=1024)
        self._config = _hypercorn_config(limits)
        self._pool = ThreadPoolExecutor(limits.worker_threads, thread_name_prefix="http")
        self._connections: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._thread: threading.Thread | None = None

    # --- wiring -----------------------------------------------------------------------------------

    def mount(self, prefix: str, route: Route) -> HttpServer:
        """Serve `prefix` (and everything below it) with `route`."""
        self._routes.add(prefix, route)
        return self

    def mount_wsgi(self, prefix: str, app: WsgiApp) -> HttpServer:
        return self.mount(prefix, wsgi_route(prefix, app))

    @property
    def host(self) -> str:
        return str(self._socket.getsockname()[0])

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def endpoint(self) -> str:
        """host:port, as the Tencent SDK's HttpProfile(endpoint=...) wants it."""
        return f"{self.host}:{self.port}"

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # --- life cycle -------------------------------------------------------------------------------

    def start(self) -> HttpServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="http-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            self._thread.join()
            raise RuntimeError(f"the HTTP server could not start: {self._start_error}") from self._start_error
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop()` from another thread."""
        asyncio.run(self._serve())

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (up to graceful_timeout), then close."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and self._ready.is_set():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._socket.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run_on_loop(self, func: Callable[[], None], timeout: float = 10.0) -> None:
        """Run `func` on the server's event loop and wait for it: what must not interleave with a
        connection's set-up (a certificate reload) goes through here."""
        loop = self._loop
        if loop is None or not self._ready.is_set() or self._thread is None:
            func()  # not serving (yet): nothing to interleave with
            return

        async def call() -> None:
            func()

        asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        context = WorkerContext(None)
        # _App reads and writes the ASGI messages as plain dicts; Hypercorn types them as unions of
        # TypedDicts. The shape is the same (tests/integration/test_http_server.py drives it).
        app = cast(AppWrapper, _App(self))
        state: dict[str, Any] = {}

        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            if len(self._connections) >= self.limits.max_connections:
                writer.write(_SERVER_BUSY)
                with contextlib.suppress(OSError):
                    await asyncio.wait_for(writer.drain(), 1.0)
                writer.transport.abort()
                return
            _no_nagle(writer)
            self._connections.add(task)
            try:
                await _TcpServer(app, loop, self._config, context, state, reader, writer)
            except (TimeoutError, ConnectionError, ssl.SSLError) as exc:
                # A TLS peer that never answers our close_notify, or breaks the TLS close off: the
                # connection is over either way, and nothing of it is left to answer.
                log.debug("connection closed uncleanly: %r", exc)
            finally:
                self._connections.discard(task)

        try:
            if self._ssl is None:
                server = await asyncio.start_server(on_connection, sock=self._socket)
            else:
                server = await asyncio.start_server(
                    on_connection,
                    sock=self._socket,
                    ssl=self._ssl,
                    ssl_handshake_timeout=self.limits.head_timeout,
                    **_TLS_CLOSE,
                )
        except BaseException as exc:
            self._start_error = exc
            raise
        finally:
            self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            await context.terminated.set()  # idle keep-alive connections close, busy ones after their answer
            pending = list(self._connections)
            if pending:
                _done, still = await asyncio.wait(pending, timeout=self.limits.graceful_timeout)
                for task in still:
                    task.cancel()
                await asyncio.gather(*still, return_exceptions=True)

    # --- one request ------------------------------------------------------------------------------

    def find_route(self, path: str) -> Route:
        return self._routes.find(path)

    async def run_in_pool(self, func: Callable[..., Any], *args: Any) -> Any:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._pool, func, *args)


class _TcpServer(TCPServer):
    """Hypercorn's connection driver, but a connection the client closed while idle is let go at
    once: Hypercorn would hold it (socket and connection slot) until its idle timer ran out."""

    async def _read_data(self) -> None:
        await super()._read_data()
        await self.idle_task.stop()


def _no_nagle(writer: asyncio.StreamWriter) -> None:
    # asyncio turns Nagle off only for sockets whose proto is IPPROTO_TCP, and a socket accepted from
    # socket.create_server()'s has proto 0: without this every keep-alive answer waits ~40 ms for the
    # client's delayed ACK (measured: 44 ms per signed Describe instead of 1-2 ms).
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _hypercorn_config(limits: ServerLimits) -> Config:
    config = Config()
    config.keep_alive_timeout = limits.head_timeout
    config.keep_alive_max_requests = limits.keep_alive_max_requests
    config.h11_max_incomplete_size = limits.max_head_bytes
    config.h11_pass_raw_headers = True  # keep header names as sent: handlers see what SCF would pass
    config.graceful_timeout = limits.graceful_timeout
    config.include_server_header = False
    config.accesslog = None
    config.errorlog = log
    return config


ReceiveCallable = Callable[[], Awaitable[dict[str, Any]]]
SendCallable = Callable[[dict[str, Any]], Awaitable[None]]


class _App:
    """What Hypercorn's protocol code calls for each request (its AppWrapper interface)."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server

    async def __call__(
        self, scope: dict[str, Any], receive: ReceiveCallable, send: SendCallable, *_: Any
    ) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close"})
            return
        if scope["type"] != "http":
            return
        limits = self._server.limits
        try:
            reading = _read_body(scope, receive, limits.max_body_bytes)
            body = await asyncio.wait_for(reading, limits.body_timeout)
        except asyncio.TimeoutError:
            message = f"request body not received within {limits.body_timeout:g} s\n"
            await _answer_and_close(receive, send, text_response(408, message))
            return
        if body is _Refused.TOO_LARGE:
            await _answer_and_close(receive, send, self._server.too_large(limits.max_body_bytes))
            return
        if isinstance(body, _Refused):  # the client went away
            return
        request = _request(scope, body)
        route = self._server.find_route(request.path)
        try:
            response: HttpResponse = await self._server.run_in_pool(route, request)
        except Exception:
            log.exception("route failed for %s %s", request.method, request.path)
            response = text_response(500, "internal error\n")
        await _send_response(self._server, request, response, send)


def _request(scope: Mapping[str, Any], body: bytes) -> HttpRequest:
    query = scope.get("query_string", b"")
    target = scope["raw_path"].decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    client = scope.get("client") or ("", 0)
    server = scope.get("server") or ("", 0)
    return HttpRequest(
        method=scope["method"],
        target=target,
        headers=tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]),
        body=body,
        client=str(client[0]),
        server=(str(server[0]), int(server[1] or 0)),
        scheme=scope.get("scheme", "http"),
        http_version=scope.get("http_version", "1.1"),
    )


class _Refused(enum.Enum):
    TOO_LARGE = "too large"
    GONE = "the client went away"


async def _read_body(scope: Mapping[str, Any], receive: ReceiveCallable, limit: int) -> bytes | _Refused:
    # A refusal is returned, not raised: a traceback would keep this frame, and the body read so
    # far, alive until the cycle collector runs (measured: ~1 MB held per refused request).
    for name, value in scope["headers"]:
        # h11 has already refused a Content-Length that is not a plain number.
        if name.lower() == b"content-length" and int(value) > limit:
            return _Refused.TOO_LARGE
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _Refused.GONE
        body += message.get("body", b"")
        if len(body) > limit:
            return _Refused.TOO_LARGE
        if not message.get("more_body", False):
            return bytes(body)


async def _answer_and_close(receive: ReceiveCallable, send: SendCallable, response: HttpResponse) -> None:
    """Answer and drop the connection without reading the rest of the body.

    While the answer goes out, whatever the protocol already queued for us is drained (and thrown
    away): a full queue would otherwise block the protocol's clean-up, and the connection with it."""

    async def drain() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    drainer = asyncio.create_task(drain())
    try:
        headers = [*response.headers, ("Connection", "close")]
        await send({"type": "http.response.start", "status": response.status, "headers": _encode(headers)})
        await send({"type": "http.response.body", "body": b"".join(response.body), "more_body": False})
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(drainer), 1.0)
    finally:
        drainer.cancel()


async def _send_response(
    server: HttpServer, request: HttpRequest, response: HttpResponse, send: SendCallable
) -> None:
    try:
        headers = [
            (name, value)
            for name, value in response.headers
            if name.lower() not in ("connection", "transfer-encoding", "keep-alive")
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": _encode(headers)})
        if request.method != "HEAD":
            if isinstance(response.body, (list, tuple)):
                for chunk in response.body:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            else:
                # A streamed body (a bucket object): read each piece in the pool, never the whole.
                chunks = iter(response.body)
                while (chunk := await server.run_in_pool(next, chunks, None)) is not None:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        if response.close is not None:
            response.close()


def _encode(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
