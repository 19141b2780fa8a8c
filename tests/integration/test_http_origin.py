"""HttpOrigin against a real HTTP server on 127.0.0.1 whose answers are scripted per path."""

from __future__ import annotations

import gzip
import logging
import random
import re
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harvest.adapters import http_origin
from harvest.adapters.http_origin import MIB, HttpOrigin, OriginPlaylistError, OriginSegmentError
from harvest.adapters.retry import RetryPolicy
from harvest.domain.urlpolicy import ScopedHeaders, UrlPolicy
from harvest.errors import PlaylistError, SegmentFetchError
from harvest.local.tls import ensure_self_signed

SEGMENT = bytes(range(256)) * 40  # 10,240 bytes, every offset distinguishable


@dataclass(frozen=True)
class Reply:
    """One scripted answer. The last reply of a path's script repeats forever."""

    status: int = 200
    body: bytes = SEGMENT
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None  # declared length when it should differ from the body
    send_bytes: int | None = None  # send only this much of the body, then close (a short body)
    stall_after: int | None = None  # send this much of the body, then stop sending
    stall_before_headers: bool = False
    reset: bool = False  # drop the connection with a TCP reset instead of answering
    honour_range: bool = True
    chunked: bool = False


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]


class ScriptedOrigin:
    """The test's side of the server: scripts, what was requested, how many connections were opened."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self.requests: list[SeenRequest] = []
        self.connections = 0
        self.release = threading.Event()  # lets stalled handlers go at teardown
        self.base_url = ""

    def script(self, path: str, *replies: Reply) -> str:
        with self._lock:
            self._scripts[path] = list(replies)
        return self.base_url + path

    def next_reply(self, path: str, headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(SeenRequest(path, headers))
            script = self._scripts.get(path.split("?", 1)[0], [Reply(status=404, body=b"")])
            return script.pop(0) if len(script) > 1 else script[0]

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for seen in self.requests if seen.path.split("?", 1)[0] == path)

    def connection_opened(self) -> None:
        with self._lock:
            self.connections += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    origin: ScriptedOrigin

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up on stalled or oversized bodies is the point of several tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: without NODELAY, Nagle plus the client's delayed
        # ACK would add 40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.origin.connection_opened()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        origin = self.server.origin
        reply = origin.next_reply(self.path, {k: v for k, v in self.headers.items()})
        if reply.stall_before_headers:
            origin.release.wait(5)
            self.close_connection = True
            return
        if reply.reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        status, body, headers = reply.status, reply.body, dict(reply.headers)
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if match and reply.honour_range and status == 200:
            start, end = int(match[1]), int(match[2])
            status, body = 206, body[start : end + 1]
            headers.setdefault("Content-Range", f"bytes {start}-{end}/{len(reply.body)}")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if reply.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._send_chunked(body)
            return
        self.send_header("Content-Length", str(reply.content_length or len(body)))
        self.end_headers()
        if reply.stall_after is not None:
            self.wfile.write(body[: reply.stall_after])
            self.wfile.flush()
            origin.release.wait(5)
            self.close_connection = True
            return
        self.wfile.write(body[: reply.send_bytes])
        if reply.send_bytes is not None or reply.content_length is not None:
            self.close_connection = True

    def _send_chunked(self, body: bytes) -> None:
        for start in range(0, len(body), 64 * 1024):
            piece = body[start : start + 64 * 1024]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def origin(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedOrigin]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    scripted = ScriptedOrigin()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.origin = scripted
    scripted.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield scripted
    scripted.release.set()
    server.shutdown()
    server.server_close()


@dataclass
class Client:
    http: HttpOrigin
    sleeps: list[float]


@pytest.fixture(params=["curl", "requests"])
def make_client(request: pytest.FixtureRequest) -> Iterator[Callable[..., Client]]:
    """Every test runs against both segment clients: libcurl (pycurl) and the requests fallback."""
    made: list[HttpOrigin] = []

    def make(timeout: float = 5.0, pool_size: int = 4, attempts: int = 5, **kwargs: Any) -> Client:
        sleeps: list[float] = []
        policy = RetryPolicy(attempts=attempts, rng=random.Random(7))
        kwargs.setdefault("client", request.param)
        http = HttpOrigin(policy, timeout, pool_size, "harvest-test/1", sleep=sleeps.append, **kwargs)
        assert http.client == request.param
        made.append(http)
        return Client(http, sleeps)

    yield make
    for http in made:
        http.close()


# --- retries ------------------------------------------------------------------------------------


def test_two_503s_then_200_succeeds_on_the_third_request(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a segment that answers 503 twice, then the bytes
    url = origin.script(
        "/live/v360/1.ts", Reply(status=503, body=b"busy"), Reply(status=503, body=b""), Reply()
    )
    client = make_client()
    # WHEN fetching it
    data = client.http.get_bytes(url, {})
    # THEN it arrives whole after 3 requests, with 2 backoff waits in between
    assert data == SEGMENT
    assert origin.count("/live/v360/1.ts") == 3
    assert len(client.sleeps) == 2


def test_404_forever_fails_naming_the_segment_status_and_attempts(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a segment the origin never has
    url = origin.script("/live/v360/14096535.ts", Reply(status=404, body=b"not found"))
    client = make_client()
    # WHEN fetching it
    with pytest.raises(SegmentFetchError) as caught:
        client.http.get_bytes(url, {})
    # THEN all 5 attempts were made (404 is retried at the live edge) and the error says so
    assert str(caught.value) == "segment v360/14096535.ts: HTTP 404 after 5 attempts"
    assert isinstance(caught.value, OriginSegmentError)
    assert (caught.value.url, caught.value.status, caught.value.attempts) == (url, 404, 5)
    assert caught.value.code == "FailedOperation"
    assert origin.count("/live/v360/14096535.ts") == 5
    assert len(client.sleeps) == 4


@pytest.mark.parametrize("status", [400, 401, 410])
def test_other_4xx_fail_at_once(
    status: int, origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a segment answering a 4xx that no retry can fix
    url = origin.script("/live/v360/2.ts", Reply(status=status, body=b""))
    client = make_client()
    # WHEN fetching it
    with pytest.raises(SegmentFetchError, match=rf"^segment v360/2.ts: HTTP {status} after 1 attempt$"):
        client.http.get_bytes(url, {})
    # THEN only one request was made and nothing waited
    assert origin.count("/live/v360/2.ts") == 1
    assert client.sleeps == []


def test_403_and_408_are_retried(origin: ScriptedOrigin, make_client: Callable[..., Client]) -> None:
    # GIVEN a segment that answers 403, then 408, then the bytes
    url = origin.script("/live/v360/3.ts", Reply(status=403, body=b""), Reply(status=408, body=b""), Reply())
    # WHEN fetching it
    data = make_client().http.get_bytes(url, {})
    # THEN it arrives on the third request
    assert data == SEGMENT
    assert origin.count("/live/v360/3.ts") == 3


def test_body_shorter_than_content_length_is_retried(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a segment whose first two answers declare 2000 bytes but close after 1000
    short = Reply(body=SEGMENT[:2000], send_bytes=1000)
    url = origin.script("/live/v360/4.ts", short, short, Reply())
    # WHEN fetching it
    data = make_client().http.get_bytes(url, {})
    # THEN the short bodies were not accepted: the third, whole answer is returned
    assert data == SEGMENT
    assert origin.count("/live/v360/4.ts") == 3


def test_short_body_forever_fails_with_the_byte_counts(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a segment that always closes after 1000 of its declared 2000 bytes
    url = origin.script("/live/v360/1.ts", Reply(body=SEGMENT[:2000], send_bytes=1000))
    # WHEN fetching it
    with pytest.raises(SegmentFetchError) as caught:
        make_client().http.get_bytes(url, {})
    # THEN the error says how short it was and how often it was tried
    assert str(caught.value) == "segment v360/1.ts: short body (1000 of 2000 bytes) after 5 attempts"


@pytest.mark.parametrize(
    "stalled", [Reply(stall_after=500), Reply(stall_before_headers=True)], ids=["mid-body", "before-headers"]
)
def test_stalled_answer_is_cut_off_after_timeout_and_retried(
    stalled: Reply, origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a segment whose first answer stalls (mid-body or before any header), then answers properly
    url = origin.script("/live/v360/5.ts", stalled, Reply())
    client = make_client(timeout=0.3)
    # WHEN fetching it with a short timeout
    data = client.http.get_bytes(url, {})
    # THEN the stalled attempt was abandoned and the retry returned the whole segment
    assert data == SEGMENT
    assert origin.count("/live/v360/5.ts") == 2
    assert len(client.sleeps) == 1


def test_stall_forever_reports_read_timeout(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a segment that always stalls mid-body
    url = origin.script("/live/v360/6.ts", Reply(stall_after=100))
    client = make_client(timeout=0.2, attempts=2)
    # WHEN fetching it with a short timeout and two attempts
    with pytest.raises(SegmentFetchError) as caught:
        client.http.get_bytes(url, {})
    # THEN both attempts reached the origin and the error calls it a read timeout
    assert origin.count("/live/v360/6.ts") == 2
    assert str(caught.value) == "segment v360/6.ts: read timeout after 2 attempts"


def test_429_and_503_retry_after_is_honoured_up_to_max_delay(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a segment answering 429 (wait 2 s), 503 (wait 60 s), then the bytes
    url = origin.script(
        "/live/v360/7.ts",
        Reply(status=429, body=b"", headers={"Retry-After": "2"}),
        Reply(status=503, body=b"", headers={"Retry-After": "60"}),
        Reply(),
    )
    client = make_client()
    # WHEN fetching it
    data = client.http.get_bytes(url, {})
    # THEN the first wait was the server's 2 s, the second capped at the policy's 5 s
    assert data == SEGMENT
    assert client.sleeps == [2.0, 5.0]


def test_connection_reset_forever_fails_naming_it(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a segment whose every request is answered by dropping the connection
    url = origin.script("/live/v360/1.ts", Reply(reset=True))
    # WHEN fetching it
    with pytest.raises(SegmentFetchError) as caught:
        make_client().http.get_bytes(url, {})
    # THEN the error names the reset and the attempts
    assert str(caught.value) == "segment v360/1.ts: connection reset after 5 attempts"
    assert isinstance(caught.value, OriginSegmentError)
    assert caught.value.status is None


def test_refused_connection_is_retried_then_reported(make_client: Callable[..., Client]) -> None:
    # GIVEN a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client()
    # WHEN fetching from it
    with pytest.raises(SegmentFetchError, match=r"^segment v1/9.ts: connection refused after 5 attempts$"):
        client.http.get_bytes(f"http://127.0.0.1:{port}/v1/9.ts", {})
    # THEN every attempt was made
    assert len(client.sleeps) == 4


# --- byte ranges ---------------------------------------------------------------------------------


def test_range_request_returns_exactly_the_slice(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a resource served with Range support
    url = origin.script("/live/v360/all.ts", Reply())
    # WHEN fetching bytes 1000..1499
    data = make_client().http.get_bytes(url, {}, (1000, 500))
    # THEN exactly that slice comes back, asked for with the inclusive HTTP range
    assert data == SEGMENT[1000:1500]
    assert origin.requests[-1].headers["Range"] == "bytes=1000-1499"
    assert origin.requests[-1].headers["Accept-Encoding"] == "identity"


def test_origin_ignoring_range_is_sliced_from_the_full_body_with_a_warning(
    origin: ScriptedOrigin, make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an origin that answers a ranged request with 200 and the whole resource
    url = origin.script("/live/v360/all.ts", Reply(honour_range=False))
    # WHEN fetching bytes 4096..6143
    with caplog.at_level(logging.WARNING, logger="harvest.adapters.http_origin"):
        data = make_client().http.get_bytes(url, {}, (4096, 2048))
    # THEN the right slice is returned and the fallback is logged
    assert data == SEGMENT[4096:6144]
    assert any("ignored Range" in record.getMessage() for record in caplog.records)


def test_full_body_too_short_for_the_range_is_not_accepted(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN an origin ignoring Range whose resource ends before the range does
    url = origin.script("/live/v360/all.ts", Reply(honour_range=False))
    # WHEN fetching a range reaching past the end
    with pytest.raises(SegmentFetchError) as caught:
        make_client().http.get_bytes(url, {}, (10_000, 1000))
    # THEN no short slice is returned
    assert str(caught.value) == "segment v360/all.ts: short body (10240 of 11000 bytes) after 5 attempts"


def test_206_with_a_different_content_range_is_retried_then_rejected(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN an origin whose 206 answers always claim another range than asked
    url = origin.script("/live/v360/all.ts", Reply(headers={"Content-Range": "bytes 1-100/10240"}))
    # WHEN fetching bytes 0..99
    with pytest.raises(SegmentFetchError) as caught:
        make_client().http.get_bytes(url, {}, (0, 100))
    # THEN the mismatch is named, after every attempt
    assert str(caught.value) == (
        "segment v360/all.ts: Content-Range bytes 1-100/10240 does not match bytes=0-99 after 5 attempts"
    )


def test_206_body_shorter_than_the_range_is_retried(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a first 206 answer with the right Content-Range but a body 40 bytes short, then a good one
    lying = Reply(status=206, body=SEGMENT[:60], headers={"Content-Range": "bytes 0-99/10240"})
    url = origin.script("/live/v360/all.ts", lying, Reply())
    client = make_client()
    # WHEN fetching bytes 0..99
    data = client.http.get_bytes(url, {}, (0, 100))
    # THEN the short slice was refused and the retry returned 100 bytes
    assert data == SEGMENT[:100]
    assert origin.count("/live/v360/all.ts") == 2


def test_invalid_byte_range_is_refused_without_a_request(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a zero-length range
    url = origin.script("/live/v360/all.ts", Reply())
    # WHEN fetching it
    with pytest.raises(SegmentFetchError, match="invalid byte range"):
        make_client().http.get_bytes(url, {}, (10, 0))
    # THEN the origin was not asked
    assert origin.count("/live/v360/all.ts") == 0


# --- connections --------------------------------------------------------------------------------


def test_sequential_requests_reuse_one_keep_alive_connection(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a client and a segment resource
    url = origin.script("/live/v360/all.ts", Reply())
    client = make_client()
    # WHEN making 10 whole and 10 ranged requests one after another
    for n in range(10):
        assert client.http.get_bytes(url, {}) == SEGMENT
        assert client.http.get_bytes(url, {}, (n * 100, 100)) == SEGMENT[n * 100 : n * 100 + 100]
    # THEN they all went over a single TCP connection
    assert origin.connections == 1


def test_retried_404s_keep_the_connection(origin: ScriptedOrigin, make_client: Callable[..., Client]) -> None:
    # GIVEN a segment at the live edge: 404 twice (with a small body), then there
    url = origin.script(
        "/live/v360/8.ts", Reply(status=404, body=b"nope"), Reply(status=404, body=b"x"), Reply()
    )
    # WHEN fetching it
    make_client().http.get_bytes(url, {})
    # THEN the error bodies were drained and the connection reused
    assert origin.connections == 1


def test_parallel_threads_share_a_pool_of_pool_size_connections(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a client with a pool of 4 and 40 distinct segments
    urls = [origin.script(f"/live/v360/{n}.ts", Reply(body=SEGMENT * (n % 3 + 1))) for n in range(40)]
    client = make_client(pool_size=4)
    # WHEN 4 threads fetch them all
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda url: client.http.get_bytes(url, {}), urls))
    # THEN every thread got its own segment's bytes, over at most 4 connections
    assert results == [SEGMENT * (n % 3 + 1) for n in range(40)]
    assert 1 <= origin.connections <= 4


def test_caller_headers_and_user_agent_are_sent(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN an endpoint that needs an auth header
    url = origin.script("/live/v360/9.ts", Reply())
    # WHEN fetching with it
    make_client().http.get_bytes(url, {"X-Auth": "token-1"})
    # THEN the origin saw it, and our User-Agent
    seen = origin.requests[-1].headers
    assert (seen["X-Auth"], seen["User-Agent"]) == ("token-1", "harvest-test/1")


# --- playlists ----------------------------------------------------------------------------------


def test_playlist_is_decoded_as_utf8_without_bom(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a playlist starting with a UTF-8 BOM and holding non-ASCII text
    text = '#EXTM3U\n#EXT-X-SESSION-DATA:DATA-ID="t",VALUE="Füßball 直播"\n'
    url = origin.script("/live/main.m3u8", Reply(body=b"\xef\xbb\xbf" + text.encode()))
    # WHEN reading it
    # THEN the text comes back exactly, BOM removed
    assert make_client().http.get_text(url, {}) == text


def test_gzip_playlist_is_decompressed(origin: ScriptedOrigin, make_client: Callable[..., Client]) -> None:
    # GIVEN an origin that compresses playlists
    text = "#EXTM3U\n" + "#EXTINF:2.0,\nseg.ts\n" * 1000
    url = origin.script(
        "/live/gz.m3u8", Reply(body=gzip.compress(text.encode()), headers={"Content-Encoding": "gzip"})
    )
    # WHEN reading it
    # THEN the decompressed text comes back
    assert make_client().http.get_text(url, {}) == text


def test_a_redirected_playlist_reports_the_url_it_finally_came_from(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a master URL that redirects to another path (where its relative URIs belong)
    text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv0/index.m3u8\n"
    final = origin.script("/edge/abc/master.m3u8", Reply(body=text.encode()))
    asked = origin.script("/live/master.m3u8", Reply(status=302, body=b"", headers={"Location": final}))
    # WHEN reading it
    fetched = make_client().http.get_playlist(asked, {})
    # THEN the text comes with the final URL, against which relative URIs must resolve
    assert (fetched.text, fetched.url) == (text, final)


def test_playlist_404_forever_names_the_url_without_its_query(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a playlist URL (with a token in the query) that always answers 404
    url = origin.script("/live/main.m3u8", Reply(status=404, body=b"")) + "?token=secret"
    # WHEN reading it
    with pytest.raises(PlaylistError) as caught:
        make_client().http.get_text(url, {})
    # THEN the error names the URL, status and attempts, but not the token
    assert str(caught.value) == f"playlist {origin.base_url}/live/main.m3u8: HTTP 404 after 5 attempts"
    assert isinstance(caught.value, OriginPlaylistError)
    assert (caught.value.status, caught.value.attempts) == (404, 5)


def test_playlist_declaring_more_than_64_mb_is_refused_unread(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a playlist declaring 64 MB + 1 byte (the server sends only a little of it)
    url = origin.script("/live/huge.m3u8", Reply(body=b"#EXTM3U\n", content_length=64 * MIB + 1))
    # WHEN reading it with the default cap
    with pytest.raises(PlaylistError) as caught:
        make_client().http.get_text(url, {})
    # THEN it is refused at once, without retrying something that will not shrink
    assert str(caught.value) == f"playlist {url}: larger than 64 MB after 1 attempt"
    assert origin.count("/live/huge.m3u8") == 1


def test_streamed_playlist_is_cut_off_at_the_cap(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a chunked playlist (no Content-Length) of 300 KB and a client capped at 256 KB
    url = origin.script("/live/stream.m3u8", Reply(body=b"#" * 300_000, chunked=True))
    client = make_client(playlist_max_bytes=256 * 1024)
    # WHEN reading it
    with pytest.raises(PlaylistError, match=r"larger than 262144 bytes after 1 attempt$"):
        client.http.get_text(url, {})
    # THEN one request was made
    assert origin.count("/live/stream.m3u8") == 1


def test_playlist_that_is_not_utf8_is_a_playlist_error(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a playlist in Latin-1
    url = origin.script("/live/latin1.m3u8", Reply(body="#EXTM3U\n# Fußball\n".encode("latin-1")))
    # WHEN reading it
    # THEN it is refused as a PlaylistError, not a UnicodeDecodeError
    with pytest.raises(PlaylistError, match="not UTF-8"):
        make_client().http.get_text(url, {})


# --- the connect-time address check, on both clients ------------------------------------------------


def test_a_redirect_to_a_name_resolving_to_loopback_is_refused_at_connect_time(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN an endpoint on 127.0.0.1 (its own host, trusted) whose segment redirects to "localhost",
    # a name the system resolver (libcurl's own, for the curl client) turns into a loopback address
    port = origin.base_url.rsplit(":", 1)[1]
    origin.script(
        "/live/v360/1.ts", Reply(status=302, body=b"", headers={"Location": f"http://localhost:{port}/meta"})
    )
    origin.script("/meta", Reply(body=b"credentials"))
    client = make_client(targets=UrlPolicy())
    # WHEN fetching the segment
    with pytest.raises(SegmentFetchError) as caught:
        client.http.get_bytes(origin.base_url + "/live/v360/1.ts", {})
    # THEN the hop is refused once, without retry, and the loopback target got no request
    assert "refused" in str(caught.value), str(caught.value)
    assert "after 1 attempt" in str(caught.value), str(caught.value)
    assert origin.count("/meta") == 0
    assert client.sleeps == []


def test_a_name_the_resolver_pins_is_checked_then_connected_to(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a CDN name that the (injected) resolver maps to the test server's 127.0.0.1
    port = int(origin.base_url.rsplit(":", 1)[1])
    origin.script("/cdn/1.ts", Reply())
    url = f"http://cdn.example:{port}/cdn/1.ts"

    def resolver(host: str, _port: int) -> list[str]:
        assert host == "cdn.example"
        return ["127.0.0.1"]

    # WHEN the policy refuses it, and WHEN the operator allows that name
    refused = make_client(targets=UrlPolicy(), resolver=resolver)
    with pytest.raises(SegmentFetchError, match="refused"):
        refused.http.get_bytes(url, ScopedHeaders({}, "http://endpoint.example/"))
    assert origin.count("/cdn/1.ts") == 0
    allowed = make_client(targets=UrlPolicy(("cdn.example",)), resolver=resolver)
    data = allowed.http.get_bytes(url, ScopedHeaders({"X-Secret": "s"}, "http://endpoint.example/"))
    # THEN the refused one sent nothing; the allowed one reached the resolved address under its own
    # name, without the endpoint's header
    assert data == SEGMENT
    assert origin.requests[-1].headers["Host"] == f"cdn.example:{port}"
    assert "X-Secret" not in origin.requests[-1].headers


def test_a_large_body_read_slowly_arrives_whole(
    origin: ScriptedOrigin, make_client: Callable[..., Client]
) -> None:
    # GIVEN a 6 MB segment (more than libcurl's read-ahead limit) and a sink that takes its time
    body = bytes(random.Random(3).getrandbits(8) for _ in range(256)) * (6 * 4096)
    url = origin.script("/live/v360/big.ts", Reply(body=body))
    seen: list[int] = []

    def slow_sink(chunks: Iterator[bytes]) -> bytes:
        parts = []
        for chunk in chunks:
            seen.append(len(chunk))
            parts.append(chunk)
            time.sleep(0.001)
        return b"".join(parts)

    # WHEN streaming it
    data = make_client().http.stream(url, {}, None, slow_sink)
    # THEN every byte arrives in order, in pieces no larger than 1 MB
    assert data == body
    assert max(seen) <= MIB


def test_without_pycurl_segments_fall_back_to_requests_logged_once(
    origin: ScriptedOrigin, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an environment where pycurl cannot be imported
    monkeypatch.setitem(sys.modules, "pycurl", None)
    monkeypatch.delitem(sys.modules, "harvest.adapters.curl_transport", raising=False)
    monkeypatch.setattr(http_origin, "_fallback_logged", threading.Event())
    url = origin.script("/live/v360/1.ts", Reply())
    # WHEN two clients are made with the default choice
    with caplog.at_level(logging.WARNING, logger="harvest.adapters.http_origin"):
        clients = [HttpOrigin(RetryPolicy(attempts=1), 5.0, 2) for _ in range(2)]
    # THEN both fetch with requests, and it was said once
    assert [c.client for c in clients] == ["requests", "requests"]
    assert clients[0].get_bytes(url, {}) == SEGMENT
    assert sum("pycurl is not available" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(ImportError):
        HttpOrigin(RetryPolicy(attempts=1), 5.0, 2, client="curl")
    for client in clients:
        client.close()


def test_an_origin_whose_certificate_is_not_trusted_is_refused(
    tmp_path: Path, make_client: Callable[..., Client]
) -> None:
    # GIVEN an HTTPS origin on 127.0.0.1 with a self-signed certificate (no CA vouches for it)
    cert, key = ensure_self_signed(tmp_path, ["127.0.0.1"])
    scripted = ScriptedOrigin()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.origin = scripted
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    scripted.script("/live/v360/1.ts", Reply())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        client = make_client()
        # WHEN fetching a segment from it
        with pytest.raises(SegmentFetchError) as caught:
            client.http.get_bytes(f"https://127.0.0.1:{server.server_address[1]}/live/v360/1.ts", {})
    finally:
        server.shutdown()
        server.server_close()
    # THEN the certificate check failed it at once (no retry heals a certificate), no body was read
    assert str(caught.value) == "segment v360/1.ts: TLS error after 1 attempt"
    assert client.sleeps == []
    assert scripted.count("/live/v360/1.ts") == 0
