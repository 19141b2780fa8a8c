"""The one callback receiver: an HTTP server on 127.0.0.1 that keeps every request and answers as told.

Paths can be scripted with answers (status and headers; the last one repeats), so one receiver
plays a CallbackURL that fails then accepts, one that redirects, or one that refuses. Paths not
scripted get `unscripted` (200 by default). Load the `callback_receiver` fixture with
`pytest_plugins = ("tests.support.callback_receiver",)`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body as JSON; an unreadable body as {"unreadable": text}, for a test to show."""
        try:
            payload: dict[str, Any] = json.loads(self.body or b"{}")
        except ValueError:
            return {"unreadable": self.body.decode("utf-8", "replace")}
        return payload


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: CallbackReceiver) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receiver = receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a notifier may close its connection without reading the answer; the reset is expected


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        received = Received(self.command, self.path, dict(self.headers.items()), body)
        answer = self.server.receiver._take(received)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


class CallbackReceiver:
    """Records every request (method, path, headers, body) and answers it from the path's script."""

    def __init__(self, unscripted: Answer = Answer(200)) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Answer]] = {}
        self._unscripted = unscripted
        self._requests: list[Received] = []
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="callback-receiver", daemon=True
        )
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: Answer) -> str:
        """Answer requests to `path` with `answers` in turn (the last repeats); the path's URL."""
        with self._lock:
            self._scripts[path] = list(answers)
        return self.url(path)

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def received(self) -> list[tuple[str, dict[str, Any]]]:
        """(path, JSON body) of each request so far, in arrival order."""
        return [(request.path, request.json()) for request in self.requests()]

    def count(self, path: str) -> int:
        return sum(1 for request in self.requests() if request.path == path)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CallbackReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _take(self, request: Received) -> Answer:
        with self._lock:
            self._requests.append(request)
            script = self._scripts.get(request.path)
            if not script:
                return self._unscripted
            return script.pop(0) if len(script) > 1 else script[0]


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    """A running CallbackReceiver that answers 200 to every path."""
    with CallbackReceiver() as running:
        yield running
