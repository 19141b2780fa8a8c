"""HTTP servers for tests that play origins, CDNs or internal services, recording what reaches them.

`servers(host)` (a fixture) starts one on `host` (any 127.x address) and a free port; routes map a
path to a body or to ("redirect", location); every request is kept with its query and headers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from harvest.devtools import ChannelSpec

PLAYLIST = "application/vnd.apple.mpegurl"


@dataclass(frozen=True)
class Seen:
    path: str
    query: str
    headers: dict[str, str]


@dataclass
class Server:
    """Answers fixed routes (path -> body, or path -> ('redirect', location)) and records requests."""

    host: str
    routes: dict[str, bytes | tuple[str, str]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    channels: dict[str, ChannelSpec] = field(default_factory=dict)  # for write_channels_yaml

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                server.seen.append(Seen(parts.path, parts.query, dict(self.headers.items())))
                route = server.routes.get(parts.path)
                if isinstance(route, tuple):
                    self.send_response(302)
                    self.send_header("Location", route[1])
                    body = b""
                else:
                    body = route if route is not None else b"not found\n"
                    self.send_response(200 if route is not None else 404)
                    self.send_header(
                        "Content-Type", PLAYLIST if parts.path.endswith(".m3u8") else "video/mp2t"
                    )
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def servers() -> Iterator[Callable[[str], Server]]:
    started: list[Server] = []

    def start(host: str) -> Server:
        started.append(Server(host))
        return started[-1]

    yield start
    for server in started:
        server.stop()
