"""Malformed and adversarial playlists: the job ends Failed with a clear ErrMessage, never a crash loop.

A small origin in the test serves exactly the bytes each case needs as the endpoint's master (or
media) playlist; jobs run through the real handlers, queue pump and HTTP origin client. Each case
checks that the job ends Failed, that ErrMessage says what is wrong with which playlist, and that
no message for it is left queued or retrying.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.reliability.table import Recorder
from tests.support.clock import ManualClock
from tests.support.engine import Engine
from tests.support.media import TEST_NOW

from harvest.adapters.http_origin import PLAYLIST_MAX_BYTES
from harvest.devtools import ChannelSpec, Pool
from harvest.devtools.origin import format_pdt
from harvest.domain.job import JobStatus
from harvest.hls.parse import MAX_SEGMENTS
from harvest.usecases.harvest import RECENT_END_SECONDS

pytest_plugins = ("tests.support.media", "tests.support.engine")

pytestmark = pytest.mark.media

PLAYLIST = "application/vnd.apple.mpegurl"
OLD_END = TEST_NOW - 600  # ended long ago: a playlist error fails the job at once
WINDOW = 60.0


class HostileOrigin:
    """Serves fixed bodies by path (queries ignored). Quacks like LiveOrigin for write_channels_yaml."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.routes: dict[str, bytes] = {}
        self.channels: dict[str, ChannelSpec] = {}
        self.requests: list[str] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                origin.requests.append(path)
                body = origin.routes.get(path)
                status = 200 if body is not None else 404
                body = body if body is not None else b"not found\n"
                self.send_response(status)
                self.send_header("Content-Type", PLAYLIST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    self.close_connection = True  # the client gave up on a body it refused

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def channel(self, name: str, master: bytes, extra: dict[str, bytes] | None = None) -> str:
        """A channel whose endpoint URL serves `master`; the URL."""
        self.channels[name] = ChannelSpec("ts", self._pool, dvr_window=86400)
        self.routes[f"/{name}/master.m3u8"] = master
        for path, body in (extra or {}).items():
            self.routes[f"/{name}/{path}"] = body
        return f"{self.url}/{name}/master.m3u8"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def hostile_origin(media_pools: dict[str, Pool]) -> Iterator[HostileOrigin]:
    origin = HostileOrigin(media_pools["ts"])
    yield origin
    origin.stop()


# --- the playlists -------------------------------------------------------------------------------


def media_playlist(
    count: int = 40, duration: str = "2.000", pdt: bool = True, extinf: bool = True, ended: bool = True
) -> bytes:
    """A plain media playlist covering the test window: `count` segments of 2 s ending at OLD_END + 20."""
    first = int(OLD_END + 20 - 2 * count)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    for n in range(count):
        if pdt:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_pdt(first + 2 * n)}")
        if extinf:
            lines.append(f"#EXTINF:{duration},")
        lines.append(f"{n}.ts")
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return ("\n".join(lines) + "\n").encode()


def huge_segment_count() -> bytes:
    # 300,000 segments: past the parser's MAX_SEGMENTS, so it stops reading instead of planning them.
    segment = b"#EXTINF:2.000,\nseg.ts\n"
    return b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + segment * 300_000 + b"#EXT-X-ENDLIST\n"


MASTER_TO_SELF = (
    b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nmaster.m3u8\n"
    b"#EXT-X-STREAM-INF:BANDWIDTH=200000\nother.m3u8\n"
)
# other.m3u8 is itself a master pointing back at the first one: a two-step cycle.
MASTER_CYCLE = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nmaster.m3u8\n"


@dataclass(frozen=True)
class Case:
    scenario: str
    injected: str
    master: Callable[[], bytes]
    expected: str  # a meaningful part of ErrMessage
    extra: Callable[[], dict[str, bytes]] = dict
    recent: bool = False  # a window that ended moments ago: only an uncovered window is retried


CASES = [
    Case(
        "Playlist over the size limit",
        f"a {PLAYLIST_MAX_BYTES // 2**20} MB + 1 byte media playlist",
        lambda: b"#EXTM3U\n" + b"#" * (PLAYLIST_MAX_BYTES - 7),
        "larger than 64 MB after 1 attempt",
    ),
    Case(
        "Master that lists itself",
        "a master whose first variant URI is the master, the second a master pointing back",
        lambda: MASTER_TO_SELF,
        "this is a master playlist where a media playlist was expected",
        extra=lambda: {"other.m3u8": MASTER_CYCLE},
    ),
    Case(
        "Absurd segment durations",
        "#EXTINF:1e12",
        lambda: media_playlist(duration="1e12"),
        "#EXTINF duration '1e12' must be a positive number of seconds up to a day",
    ),
    Case(
        "Absurd segment durations",
        "#EXTINF:-1",
        lambda: media_playlist(duration="-1"),
        "#EXTINF duration '-1' must be a positive number of seconds up to a day",
    ),
    Case(
        "Absurd segment durations",
        "#EXTINF:nan",
        lambda: media_playlist(duration="nan"),
        "#EXTINF duration 'nan' must be a positive number of seconds up to a day",
    ),
    Case(
        "Playlist without #EXTM3U",
        "the #EXTM3U line removed (window ended 10 min ago)",
        lambda: media_playlist().removeprefix(b"#EXTM3U\n"),
        "line 1: does not start with #EXTM3U",
    ),
    Case(
        "Playlist without #EXTM3U",
        "the #EXTM3U line removed (window ended 10 s ago, near the live edge)",
        lambda: media_playlist().removeprefix(b"#EXTM3U\n"),
        "line 1: does not start with #EXTM3U",
        recent=True,
    ),
    Case(
        "Segment without #EXTINF",
        "segment URIs with no #EXTINF",
        lambda: media_playlist(extinf=False),
        "segment URI '0.ts' has no #EXTINF before it",
    ),
    Case(
        "Ended playlist without PROGRAM-DATE-TIME",
        "an #EXT-X-ENDLIST playlist with no PDT at all",
        lambda: media_playlist(pdt=False),
        "has no EXT-X-PROGRAM-DATE-TIME; cannot place a time window",
    ),
    Case(
        "300k-segment playlist",
        "300,000 #EXTINF segments (6.6 MB)",
        huge_segment_count,
        f"more than {MAX_SEGMENTS} segments",
    ),
    Case(
        "Binary garbage playlist",
        "64 KB of random bytes",
        lambda: random.Random(3).randbytes(65536),
        "not UTF-8 text",
    ),
    Case(
        "Binary garbage playlist",
        "64 KB of NUL and control characters (valid UTF-8)",
        lambda: bytes(random.Random(4).randrange(0, 32) for _ in range(65536)),
        "does not start with #EXTM3U",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.scenario}: {case.injected}"[:60])
def test_a_hostile_playlist_fails_the_job_with_a_clear_message(
    case: Case,
    hostile_origin: HostileOrigin,
    engine_factory: Callable[..., Engine],
    reliability_record: Recorder,
) -> None:
    # GIVEN an endpoint whose playlist is hostile
    url = hostile_origin.channel("hostile", case.master(), case.extra())
    clock = ManualClock(TEST_NOW)
    engine = engine_factory(hostile_origin, clock, fetch_attempts=3)
    end = TEST_NOW - 10 if case.recent else OLD_END
    assert (TEST_NOW - end < RECENT_END_SECONDS) is case.recent
    # WHEN a job harvests a window of it
    started = time.monotonic()
    engine.create("job-hostile", "hostile", end - WINDOW, end)
    job = engine.wait("job-hostile", timeout=60)
    elapsed = time.monotonic() - started
    # THEN it is Failed with an ErrMessage that names the playlist and what is wrong with it
    assert job.status is JobStatus.FAILED
    assert case.expected in job.err_message, job.err_message
    assert "/hostile/" in job.err_message or "playlist" in job.err_message
    # AND nothing about it is left queued or retrying, and no segment was ever requested
    engine.drain()
    # A broken playlist is not "not yet covered": it fails at once, even near the live edge.
    assert engine.queue.dead_letters() == []
    assert all(path.endswith(".m3u8") for path in hostile_origin.requests), hostile_origin.requests
    message = job.err_message if len(job.err_message) < 300 else job.err_message[:297] + "..."
    message = message.replace(url.rsplit("/", 2)[0], "<origin>")
    reliability_record(
        case.scenario,
        case.injected,
        f"Failed in {elapsed:.1f} s, no retries; ErrMessage {message!r}; queue empty",
    )
