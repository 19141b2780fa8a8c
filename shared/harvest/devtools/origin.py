"""A live HLS origin with a DVR (startover) window that loops real media pools.

Time model: with d = segment_seconds and epoch0 the channel's anchor (default 0, the Unix epoch, so a
channel shows the same content at the same wall time across restarts), the segment with media
sequence number n covers [epoch0 + n*d, epoch0 + (n+1)*d) and carries pool segment n % pool_size.
At wall time `now` the live edge is the last segment that has fully ended; the live playlist lists
the last `dvr_window // d` segments up to it, each with its PROGRAM-DATE-TIME, and marks every wrap
of the pool with EXT-X-DISCONTINUITY (the discontinuity sequence number of segment n is n // size).

URLs (relative inside playlists, so a client must resolve them):
    /<channel>/master.m3u8                    master; a query (?start=&end=) is passed to child URIs
    /<channel>/<rendition>/index.m3u8         media playlist; ?start=<epoch>&end=<epoch> = timeshift
    /<channel>/<rendition>/iframes.m3u8       I-frame playlist ("ts" channels, video renditions)
    /<channel>/<rendition>/<n>.<ts|m4s|vtt>   segment n, addressable for ever once it has ended
    /<channel>/<rendition>/init.mp4           fMP4 initialization section
    /<channel>/<rendition>/pack-<j>.ts        "byterange" resource: segments j*P .. j*P+P-1
    /<channel>/keys/<k>.key                   "aes" key k, used by segments k*K .. k*K+K-1
    /<channel>/manifest.mpd                   "fmp4" channels with `dash`: the same segments as live
                                              DASH (devtools.dash_origin: addressing modes, Periods,
                                              ContentProtection, SCTE-35 EventStream, UTCTiming)

Broadcast features (ChannelSpec flags, any kind):
    ad_breaks=(every, length)   an SCTE-35 ad break of `length` segments every `every` segments,
                                marked both ways packagers write it: an EXT-X-DATERANGE pair (the
                                opening with START-DATE and SCTE35-OUT, the closing with the same ID,
                                END-DATE and SCTE35-IN but no START-DATE, as RFC 8216 §8.10 shows)
                                and CUE-OUT / CUE-OUT-CONT / CUE-IN with #EXT-OATCLS-SCTE35
    variables=True              EXT-X-DEFINE: the master defines values (CODECS uses one), media
                                playlists IMPORT one and define another, and build URIs from them
    subtitles_pdt=False         subtitles playlists carry no PROGRAM-DATE-TIME
    steering=True               EXT-X-CONTENT-STEERING with two pathways: "A" (the initial one) and
                                "B", a mirror served under /<channel>/b/... (counted as "pathway-b")
    script_uris=True            segments are /<channel>/<rendition>/get.php?seg=<n>: nothing in the
                                URI says what the media is ("ts" and "fmp4" kinds)
    broken_tag_msn=n            a malformed #EXT-X-DATERANGE (START-DATE "not a date") before segment n
    timeshift=False             the time-shift query is ignored (an origin without that API): every
                                playlist is the whole DVR window
    extras=True                 what real packagers add: SESSION-DATA and a CLOSED-CAPTIONS rendition
                                with a URI (which it may not have) in the master; KEYID and a vendor
                                attribute on "aes" keys; EXT-X-START, EXT-X-BITRATE and a vendor tag
                                in media playlists; with ad_breaks, an interstitial EXT-X-DATERANGE
                                per break whose X-ASSET-URI is relative
    /<channel>/redirect/master.m3u8 always answers 302 to /<channel>/master.m3u8 (query kept), so
    a client that resolves relative URIs against the URL it asked for gets 404s.

Kinds: "ts" (video variants + audio + WebVTT + I-frame playlists), "fmp4" (CMAF with EXT-X-MAP),
"aes" (TS encrypted here with AES-128-CBC, implicit IV = msn, a new key every K segments),
"byterange" (TS packed P segments per resource, EXT-X-BYTERANGE with the offset omitted where the
previous segment is contiguous in the same resource, as RFC 8216 §4.3.2.2 allows).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import math
import re
import socket
import sys
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import yaml

from harvest.devtools.dash_origin import DASH_MODES, INDEXED_NAME, indexed_file, render_mpd, segment_number
from harvest.devtools.faults import Fault, FaultInjector, FaultPlan
from harvest.devtools.media import KINDS, Pool, Rendition, build_pool
from harvest.errors import ConfigError

log = logging.getLogger(__name__)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
_CONTENT_TYPES = {"ts": "video/mp2t", "m4s": "video/iso.segment", "vtt": "text/vtt", "mp4": "video/mp4"}
_SEGMENT = re.compile(r"^(\d+)\.(ts|m4s|vtt)$")
_PACK = re.compile(r"^pack-(\d+)\.ts$")
_KEY = re.compile(r"^(\d+)\.key$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class ChannelSpec:
    kind: str  # "ts" | "fmp4" | "aes" | "byterange"
    pool: Pool
    segment_seconds: int = 2
    dvr_window: int = 3600  # seconds the live playlist reaches back (the startover window)
    epoch0: float | None = None  # anchor of msn 0; None = 0.0 (the Unix epoch)
    key_rotation: int = 5  # "aes": segments per key
    key_seed: str = "harvest-devtools"  # "aes": keys are derive_key(key_seed, k)
    required_headers: Mapping[str, str] = field(default_factory=dict)  # else 403
    segments_per_resource: int = 5  # "byterange": segments packed per resource file
    ad_breaks: tuple[int, int] | None = None  # (every, length) in segments; see the module doc
    variables: bool = False  # EXT-X-DEFINE in the master and the media playlists
    subtitles_pdt: bool = True  # False: subtitles playlists have no EXT-X-PROGRAM-DATE-TIME
    steering: bool = False  # content steering with a second pathway
    script_uris: bool = False  # segments addressed as get.php?seg=<n> (no media suffix in the URI)
    broken_tag_msn: int | None = None  # a malformed EXT-X-DATERANGE before this segment
    timeshift: bool = True  # False: ?start=&end= is ignored, every playlist is the whole DVR window
    extras: bool = False  # the tags real packagers add; see the module doc
    dash: str | None = None  # "fmp4" only: also serve manifest.mpd in this mode (devtools.dash_origin)
    dash_period: int | None = None  # DASH: a new Period every this many segments
    dash_protection: bool = False  # DASH: CENC / Widevine / PlayReady ContentProtection on the video set

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown channel kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.pool.container != ("fmp4" if self.kind == "fmp4" else "ts"):
            raise ConfigError(f"a {self.kind!r} channel needs a {self.kind!r} pool, got {self.pool.kind!r}")
        if self.segment_seconds != self.pool.segment_seconds:
            raise ConfigError("segment_seconds must equal the pool's segment_seconds")
        if self.dvr_window < 3 * self.segment_seconds:
            # RFC 8216 §6.2.2: a live playlist must not be shorter than three target durations.
            raise ConfigError("dvr_window must be at least 3 segments long")
        if self.key_rotation < 1 or self.segments_per_resource < 1:
            raise ConfigError("key_rotation and segments_per_resource must be >= 1")
        if self.dash is not None and (self.kind != "fmp4" or self.dash not in DASH_MODES):
            raise ConfigError(f"dash is one of {', '.join(DASH_MODES)}, for an 'fmp4' channel only")
        if self.dash == "indexed" and self.dash_period != self.pool.size:
            raise ConfigError("an 'indexed' (SegmentBase) DASH channel has one Period per loop of the pool")
        if self.ad_breaks is not None and not 0 < self.ad_breaks[1] < self.ad_breaks[0]:
            raise ConfigError("ad_breaks is (every, length) with 0 < length < every")

    @property
    def anchor(self) -> float:
        return 0.0 if self.epoch0 is None else float(self.epoch0)

    @property
    def window_segments(self) -> int:
        return self.dvr_window // self.segment_seconds


def derive_key(seed: str, index: int) -> bytes:
    """AES-128 key number `index`: deterministic, so tests and restarts agree on it."""
    return hashlib.sha256(f"{seed}:{index}".encode()).digest()[:16]


def implicit_iv(msn: int) -> bytes:
    """RFC 8216 §5.2: without an IV attribute the IV is the media sequence number, big-endian."""
    return msn.to_bytes(16, "big")


def encrypt_segment(key: bytes, msn: int, plain: bytes) -> bytes:
    # Imported here: only "aes" channels need `cryptography`.
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(implicit_iv(msn))).encryptor()
    return encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()


def format_pdt(epoch: float) -> str:
    """ISO 8601 with milliseconds and Z, e.g. 2026-11-23T12:00:02.000Z."""
    millis = round(epoch * 1000)
    seconds, millis = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class OriginStats:
    """Counters the benchmark reads: requests by kind, statuses, faults, body bytes sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.bytes_sent = 0
        self.connections = 0

    def reset(self) -> None:
        with self._lock:
            self.requests, self.statuses, self.faults = Counter(), Counter(), Counter()
            self.bytes_sent = self.connections = 0

    def record(self, kind: str, status: int, sent: int) -> None:
        with self._lock:
            self.requests[kind] += 1
            self.statuses[status] += 1
            self.bytes_sent += sent

    def count_fault(self, name: str) -> None:
        with self._lock:
            self.faults[name] += 1

    def count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "faults": dict(self.faults),
                "bytes_sent": self.bytes_sent,
                "connections": self.connections,
            }


@dataclass(frozen=True)
class _Loaded:
    """A rendition with its bytes in memory: the origin never reads a file per request."""

    rendition: Rendition
    segments: tuple[bytes, ...]
    init: bytes | None


@dataclass
class _Response:
    status: int
    body: bytes | memoryview = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


# A routed request: its kind (for the stats), the answer, and the (channel, rendition, msn) it carries.
_Routed = tuple[str, _Response, list[tuple[str, str, int]]]


class _Channel:
    def __init__(self, name: str, spec: ChannelSpec) -> None:
        self.name = name
        self.spec = spec
        pool = spec.pool
        renditions = pool.renditions
        if spec.kind in ("aes", "byterange"):
            # Encrypted or packed segments: I-frame byte ranges would point at the wrong bytes.
            renditions = tuple(replace(r, iframes=()) for r in pool.variants) + pool.audio
        self.renditions = {
            r.name: _Loaded(r, r.read_segments(), r.init_file.read_bytes() if r.init_file else None)
            for r in renditions
        }
        self.size = pool.size
        self.target_duration = max(
            max(spec.segment_seconds, *(round(float(d)) for d in r.durations)) for r in renditions
        )

    # --- time model

    def segment_start(self, msn: int) -> float:
        return self.spec.anchor + msn * self.spec.segment_seconds

    def live_edge(self, now: float) -> int:
        """The last segment that has fully ended at `now` (-1 before the first one ends)."""
        return math.floor((now - self.spec.anchor) / self.spec.segment_seconds) - 1

    def live_window(self, now: float) -> tuple[int, int]:
        edge = self.live_edge(now)
        return max(0, edge - self.spec.window_segments + 1), edge

    # --- bytes

    def plain(self, rendition: str, msn: int) -> bytes:
        return self.renditions[rendition].segments[msn % self.size]

    def served(self, rendition: str, msn: int) -> bytes:
        plain = self.plain(rendition, msn)
        if self.spec.kind == "aes":
            return encrypt_segment(self.key(msn // self.spec.key_rotation), msn, plain)
        return plain

    def key(self, index: int) -> bytes:
        return derive_key(self.spec.key_seed, index)

    def pack_members(self, rendition: str, pack: int) -> list[tuple[int, int, int]]:
        """(msn, offset, length) of each segment inside resource `pack`."""
        per = self.spec.segments_per_resource
        members, offset = [], 0
        for msn in range(pack * per, (pack + 1) * per):
            length = len(self.plain(rendition, msn))
            members.append((msn, offset, length))
            offset += length
        return members

    def byte_range(self, rendition: str, msn: int) -> tuple[int, int]:
        members = self.pack_members(rendition, msn // self.spec.segments_per_resource)
        _, offset, length = members[msn % self.spec.segments_per_resource]
        return offset, length


class LiveOrigin:
    """A threaded HTTP/1.1 origin (keep-alive, Content-Length always, single-range Range requests)."""

    def __init__(
        self,
        channels: Mapping[str, ChannelSpec],
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        faults: FaultPlan | None = None,
    ) -> None:
        self.channels = dict(channels)
        self.host = host
        self.port = port
        self.clock = clock
        self.stats = OriginStats()
        self._runtime = {name: _Channel(name, spec) for name, spec in self.channels.items()}
        self._injector = FaultInjector(faults) if faults else None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._cache: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._cache_lock = threading.Lock()

    # --- lifecycle

    def start(self) -> LiveOrigin:
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        # A short poll interval: stop() waits up to one interval for the accept loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="live-origin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled requests
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()  # idle keep-alive connections would otherwise be served on
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LiveOrigin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise ConfigError("the origin is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def faults(self) -> FaultPlan | None:
        return self._injector.plan if self._injector else None

    @faults.setter
    def faults(self, plan: FaultPlan | None) -> None:
        # A new plan starts with fresh attempt counters.
        self._injector = FaultInjector(plan) if plan else None

    # --- helpers for tests and the benchmark

    def master_url(self, channel: str) -> str:
        return f"{self.url}/{channel}/master.m3u8"

    def playlist_url(self, channel: str, rendition: str) -> str:
        return f"{self.url}/{channel}/{rendition}/index.m3u8"

    def source_url(self, channel: str, rendition: str, msn: int) -> str:
        """Where segment `msn` is served ("byterange": its resource; see source_range)."""
        runtime = self._channel(channel)
        if runtime.spec.kind == "byterange":
            return f"{self.url}/{channel}/{rendition}/pack-{msn // runtime.spec.segments_per_resource}.ts"
        return f"{self.url}/{channel}/{rendition}/{msn}.{runtime.renditions[rendition].rendition.extension}"

    def source_range(self, channel: str, rendition: str, msn: int) -> tuple[int, int] | None:
        """(offset, length) of segment `msn` inside source_url's resource, or None for whole files."""
        runtime = self._channel(channel)
        return runtime.byte_range(rendition, msn) if runtime.spec.kind == "byterange" else None

    def segment_bytes(self, channel: str, rendition: str, msn: int) -> bytes:
        """Segment `msn` exactly as served ("aes": encrypted)."""
        return self._channel(channel).served(rendition, msn)

    def plain_segment_bytes(self, channel: str, rendition: str, msn: int) -> bytes:
        return self._channel(channel).plain(rendition, msn)

    def init_bytes(self, channel: str, rendition: str) -> bytes | None:
        return self._channel(channel).renditions[rendition].init

    def key_bytes(self, channel: str, index: int) -> bytes:
        return self._channel(channel).key(index)

    def live_edge(self, channel: str) -> int:
        return self._channel(channel).live_edge(self.clock())

    def live_window(self, channel: str) -> tuple[int, int]:
        """(first, last) msn of the live playlist now."""
        return self._channel(channel).live_window(self.clock())

    def segment_start(self, channel: str, msn: int) -> float:
        return self._channel(channel).segment_start(msn)

    def _channel(self, name: str) -> _Channel:
        try:
            return self._runtime[name]
        except KeyError:
            raise ConfigError(f"the origin has no channel {name!r}") from None

    # --- serving

    def _serve(self, handler: _Handler, head: bool) -> None:
        injector = self._injector
        if injector and injector.plan.down:
            self.stats.count_fault("down")
            handler.close_connection = True  # no answer at all: the client sees the connection drop
            return
        split = urlsplit(handler.path)
        kind, response, msns = self._route(handler, split.path, split.query)
        fault = None
        if injector and response.status < 400:
            if any(injector.plan.is_missing(*m) for m in msns):
                response = _text(404, "segment missing (fault plan)\n")
            else:
                key = f"{split.path}?{split.query}#{handler.headers.get('Range', '')}"
                fault = injector.decide(kind, key)
        if fault is not None:
            self.stats.count_fault(fault.value)
        if fault is Fault.STALL and self._stopping.wait(injector.plan.stall_seconds if injector else 0):
            handler.close_connection = True
            return
        if fault is Fault.ERROR:
            response = _text(503, "injected fault\n")
        if response.status == 200:
            response = _apply_range(response, handler.headers.get("Range"))
        sent = _write(handler, response, head, cut=fault is Fault.CUT)
        self.stats.record(kind, response.status, sent)

    def _route(self, handler: _Handler, path: str, query: str) -> _Routed:
        """(request kind, answer, the (channel, rendition, msn) segments the answer carries)."""
        parts = path.strip("/").split("/")
        runtime = self._runtime.get(parts[0])
        mirror = len(parts) == 4 and parts[1] == "b" and runtime is not None and runtime.spec.steering
        if mirror:
            parts = [parts[0], *parts[2:]]  # pathway B serves the same media
        if runtime is None or len(parts) not in (2, 3):
            return "other", _text(404, "not found\n"), []
        for name, value in runtime.spec.required_headers.items():
            if handler.headers.get(name) != value:
                return "other", _text(403, f"missing or wrong {name} header\n"), []
        if mirror:
            _, response, msns = self._route(handler, "/".join(parts), query)
            return "pathway-b", response, msns
        if len(parts) == 2:
            return self._channel_file(runtime, parts[1], query)
        return self._rendition_file(handler, runtime, parts[1], parts[2], query)

    def _channel_file(self, runtime: _Channel, name: str, query: str) -> _Routed:
        """/<channel>/<name>: the master playlist or the MPD."""
        if name == "master.m3u8":
            master = self._cached(("master", runtime.name, query), lambda: _master(runtime, query))
            return "master", master, []
        if name == "manifest.mpd" and runtime.spec.dash is not None:
            return "master", self._mpd(runtime, query), []
        return "other", _text(404, "not found\n"), []

    def _rendition_file(
        self, handler: _Handler, runtime: _Channel, folder: str, leaf: str, query: str
    ) -> _Routed:
        """/<channel>/<folder>/<leaf>: the redirect, a key, or a rendition's playlist, init or media."""
        if (folder, leaf) == ("redirect", "master.m3u8"):
            location = f"/{runtime.name}/master.m3u8" + (f"?{query}" if query else "")
            return "redirect", _Response(302, b"", headers=[("Location", location)]), []
        if folder == "keys" and runtime.spec.kind == "aes" and (m := _KEY.match(leaf)):
            return "key", _Response(200, runtime.key(int(m[1])), "application/octet-stream"), []
        loaded = runtime.renditions.get(folder)
        if loaded is None:
            return "other", _text(404, "no such rendition\n"), []
        if leaf in ("index.m3u8", "iframes.m3u8"):
            return "playlist", self._playlist(runtime, loaded, leaf == "iframes.m3u8", query), []
        if leaf == "init.mp4" and loaded.init is not None:
            return "init", _Response(200, loaded.init, _CONTENT_TYPES["mp4"]), []
        return self._media_file(handler, runtime, folder, loaded, leaf, query)

    def _media_file(
        self, handler: _Handler, runtime: _Channel, folder: str, loaded: _Loaded, leaf: str, query: str
    ) -> _Routed:
        """A segment (by name, script query or DASH number), the indexed file, or a byte-range pack."""
        edge = runtime.live_edge(self.clock())
        if leaf == "get.php" and runtime.spec.script_uris and (n := parse_qs(query).get("seg")):
            leaf = f"{n[0]}.{loaded.rendition.extension}"
        if leaf == INDEXED_NAME and runtime.spec.dash == "indexed":
            body, _, _ = indexed_file(loaded.init or b"", loaded.segments, runtime.spec.segment_seconds)
            return "segment", _Response(200, body, _CONTENT_TYPES["mp4"]), []
        dash_msn = segment_number(leaf, runtime.spec.segment_seconds) if runtime.spec.dash else None
        if dash_msn is not None:
            leaf = f"{dash_msn}.m4s"
        if (m := _SEGMENT.match(leaf)) and m[2] == loaded.rendition.extension:
            msn = int(m[1])
            if msn > edge:
                return "segment", _text(404, "segment not yet available\n"), []
            body = runtime.served(folder, msn)
            return "segment", _Response(200, body, _CONTENT_TYPES[m[2]]), [(runtime.name, folder, msn)]
        if (m := _PACK.match(leaf)) and runtime.spec.kind == "byterange":
            return self._pack(handler, runtime, folder, int(m[1]), edge)
        return "other", _text(404, "not found\n"), []

    def _pack(self, handler: _Handler, runtime: _Channel, folder: str, number: int, edge: int) -> _Routed:
        """One resource holding several segments (EXT-X-BYTERANGE channels); the segments hit."""
        members = runtime.pack_members(folder, number)
        if members[0][0] > edge:
            return "segment", _text(404, "resource not yet available\n"), []
        body = b"".join(runtime.plain(folder, msn) for msn, _, _ in members)
        wanted = _requested_range(handler.headers.get("Range"), len(body)) or range(len(body))
        hit = [
            (runtime.name, folder, msn)
            for msn, offset, length in members
            if offset < wanted.stop and wanted.start < offset + length
        ]
        return "segment", _Response(200, body, _CONTENT_TYPES["ts"]), hit

    def _playlist(self, runtime: _Channel, loaded: _Loaded, iframes: bool, query: str) -> _Response:
        if iframes and not loaded.rendition.iframes:
            return _text(404, "no I-frame playlist for this rendition\n")
        now = self.clock()
        first, last = runtime.live_window(now)
        endlist = False
        if query and runtime.spec.timeshift:
            try:
                window = _timeshift(parse_qs(query))
            except ValueError as exc:
                return _text(400, f"bad timeshift query: {exc}\n")
            if window is not None:
                start, end = window
                d, anchor = runtime.spec.segment_seconds, runtime.spec.anchor
                if start is not None:
                    # A DVR only reaches back dvr_window seconds: older starts are clipped to the window.
                    first = max(first, math.floor((start - anchor) / d))
                if end is not None:
                    wanted_last = math.ceil((end - anchor) / d) - 1
                    endlist = wanted_last <= last  # the whole range has ended: nothing will be added
                    last = min(last, wanted_last)
        if last < first:
            return _text(404, "no segments in the requested window\n")
        key = ("playlist", runtime.name, loaded.rendition.name, iframes, first, last, endlist)
        return self._cached(key, lambda: _media_playlist(runtime, loaded, first, last, endlist, iframes))

    def _mpd(self, runtime: _Channel, query: str) -> _Response:
        """The live MPD: the DVR window, or the part of it from the time-shift query's start."""
        now = self.clock()
        first, last = runtime.live_window(now)
        if query and runtime.spec.timeshift:
            try:
                window = _timeshift(parse_qs(query))
            except ValueError as exc:
                return _text(400, f"bad timeshift query: {exc}" + "\n")
            if window is not None and window[0] is not None:
                d = runtime.spec.segment_seconds
                first = max(first, math.floor((window[0] - runtime.spec.anchor) / d))
        if last < first:
            return _text(404, "no segments in the requested window" + "\n")
        return _Response(200, render_mpd(runtime, now, first, last), "application/dash+xml")

    def _cached(self, key: tuple[Any, ...], render: Callable[[], bytes]) -> _Response:
        # Playlists are pure functions of the key, so a cached one never goes stale.
        with self._cache_lock:
            body = self._cache.get(key)
            if body is not None:
                self._cache.move_to_end(key)
        if body is None:
            body = render()
            with self._cache_lock:
                self._cache[key] = body
                while len(self._cache) > 256:
                    self._cache.popitem(last=False)
        return _Response(200, body, PLAYLIST_TYPE)


# --- playlists ----------------------------------------------------------------------------------


def _timeshift(params: dict[str, list[str]]) -> tuple[float | None, float | None] | None:
    """(start, end) epoch seconds of a timeshift query; None where the query leaves one out."""
    if "start" not in params and "end" not in params:
        return None
    start = _epoch(params["start"][0]) if "start" in params else None
    end = _epoch(params["end"][0]) if "end" in params else None
    if start is not None and end is not None and not end > start:
        raise ValueError("end must be after start")
    return start, end


def _epoch(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a time")
    return value


def _master(runtime: _Channel, query: str) -> bytes:
    spec = runtime.spec
    suffix = f"?{query}" if query else ""
    loaded = [entry.rendition for entry in runtime.renditions.values()]
    variants = [r for r in loaded if r.media_type == "VIDEO"]
    audio = [r for r in loaded if r.media_type == "AUDIO"]
    subtitles = [r for r in loaded if r.media_type == "SUBTITLES"]
    lines, audio_codecs = _master_header(runtime, variants, audio)
    pathways = [("A", "", "")] + ([("B", "b/", "-b")] if spec.steering else [])
    for _, folder, group in pathways:
        lines += _media_lines(audio, subtitles, folder, group, suffix)
    for pathway, folder, group in pathways:
        for r in variants:
            where = (pathway, folder, group, suffix)
            lines += _variant_lines(spec, r, audio, bool(subtitles), audio_codecs, *where)
    for r in variants:
        if r.iframes:
            lines.append(
                f'#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={r.iframe_bandwidth},CODECS="{r.codecs}",'
                f'RESOLUTION={r.resolution},URI="{r.name}/iframes.m3u8{suffix}"'
                + (',PATHWAY-ID="A"' if spec.steering else "")
            )
    return ("\n".join(lines) + "\n").encode()


def _master_header(
    runtime: _Channel, variants: list[Rendition], audio: list[Rendition]
) -> tuple[list[str], str]:
    """The master's lines before its renditions, and how its variants name the audio codecs."""
    spec = runtime.spec
    has_iframes = any(r.iframes for r in variants)
    version = 6 if spec.kind == "fmp4" else 4 if has_iframes else 3
    if spec.variables:
        version = max(version, 8)  # EXT-X-DEFINE
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if spec.extras:
        lines.append(f'#EXT-X-SESSION-DATA:DATA-ID="com.example.channel",VALUE="{runtime.name}"')
        lines.append(
            '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="English",INSTREAM-ID="CC1",URI="cc.m3u8"'
        )
    audio_codecs = ",".join(sorted({a.codecs for a in audio}))
    if spec.variables:
        lines.append(f'#EXT-X-DEFINE:NAME="acodecs",VALUE="{audio_codecs}"')
        lines.append(f'#EXT-X-DEFINE:NAME="channel",VALUE="{runtime.name}"')
        audio_codecs = "{$acodecs}"
    if spec.steering:
        lines.append('#EXT-X-CONTENT-STEERING:SERVER-URI="steering.json",PATHWAY-ID="A"')
    return lines, audio_codecs


def _media_lines(
    audio: list[Rendition], subtitles: list[Rendition], folder: str, group: str, suffix: str
) -> list[str]:
    """The EXT-X-MEDIA lines of one pathway's audio and subtitle renditions."""
    lines = [
        f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud{group}",LANGUAGE="{r.language}",NAME="{r.name}",'
        f'DEFAULT={"YES" if i == 0 else "NO"},AUTOSELECT=YES,CHANNELS="{r.channels}",'
        f'URI="{folder}{r.name}/index.m3u8{suffix}"'
        for i, r in enumerate(audio)
    ]
    lines += [
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs{group}",LANGUAGE="{r.language}",NAME="{r.name}",'
        f'DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="{folder}{r.name}/index.m3u8{suffix}"'
        for r in subtitles
    ]
    return lines


def _variant_lines(
    spec: ChannelSpec,
    r: Rendition,
    audio: list[Rendition],
    subtitles: bool,
    audio_codecs: str,
    pathway: str,
    folder: str,
    group: str,
    suffix: str,
) -> list[str]:
    """One variant's EXT-X-STREAM-INF and URI on one pathway (bandwidths include the audio's)."""
    codecs = ",".join([r.codecs, audio_codecs] if audio else [r.codecs])
    attributes = [
        f"BANDWIDTH={r.bandwidth + max((a.bandwidth for a in audio), default=0)}",
        f"AVERAGE-BANDWIDTH={r.average_bandwidth + max((a.average_bandwidth for a in audio), default=0)}",
        f'CODECS="{codecs}"',
        f"RESOLUTION={r.resolution}",
        f"FRAME-RATE={r.frame_rate}",
    ]
    attributes += [f'AUDIO="aud{group}"'] if audio else []
    attributes += [f'SUBTITLES="subs{group}"'] if subtitles else []
    attributes += ['CLOSED-CAPTIONS="cc"'] if spec.extras else []
    attributes += [f'PATHWAY-ID="{pathway}"'] if spec.steering else []
    return ["#EXT-X-STREAM-INF:" + ",".join(attributes), f"{folder}{r.name}/index.m3u8{suffix}"]


def scte35_hex(event: int, out: bool) -> str:
    """A stand-in SCTE-35 splice_info_section for break `event` (out: the splice out, else back in).

    The harvester carries these values verbatim; only their shape (0xFC30... hex) matters here.
    """
    return f"0xFC302000000000000000FFF00F05{event:08X}{'7FEF' if out else '7F4F'}FE0052EC0000"


def _ad_markers(runtime: _Channel, msn: int) -> list[str]:
    """The ad-break tags written before segment `msn` (see the module doc)."""
    spec = runtime.spec
    if spec.ad_breaks is None:
        return []
    every, length = spec.ad_breaks
    d = spec.segment_seconds
    # Break `event` starts at segment event * every + every // 2 (the middle of its period).
    event = (msn - every // 2) // every
    first = event * every + every // 2  # the first segment of the latest break at or before msn
    position = msn - first  # 0 .. every - 1; the closing tags sit at position == length
    seconds = length * d
    if position == 0:
        start = format_pdt(runtime.segment_start(first))
        interstitial = (
            [
                f'#EXT-X-DATERANGE:ID="ad-{event}",CLASS="com.apple.hls.interstitial",START-DATE="{start}",'
                f'DURATION={seconds}.0,X-ASSET-URI="../ads/{event}.m3u8",X-RESUME-OFFSET=0'
            ]
            if spec.extras
            else []
        )
        return [
            *interstitial,
            f'#EXT-X-DATERANGE:ID="splice-{event}",CLASS="urn:scte:scte35:2013:bin",START-DATE="{start}",'
            f"PLANNED-DURATION={seconds}.0,SCTE35-OUT={scte35_hex(event, True)}",
            f"#EXT-X-CUE-OUT:{seconds}.0",
            f"#EXT-OATCLS-SCTE35:{base64.b64encode(bytes.fromhex(scte35_hex(event, True)[2:])).decode()}",
        ]
    if 0 < position < length:
        return [f"#EXT-X-CUE-OUT-CONT:ElapsedTime={position * d}.0,Duration={seconds}.0"]
    if position == length:
        end = format_pdt(runtime.segment_start(first + length))
        return [
            f'#EXT-X-DATERANGE:ID="splice-{event}",END-DATE="{end}",DURATION={seconds}.0,'
            f"SCTE35-IN={scte35_hex(event, False)}",
            "#EXT-X-CUE-IN",
        ]
    return []


def _media_playlist(
    runtime: _Channel, loaded: _Loaded, first: int, last: int, endlist: bool, iframes: bool
) -> bytes:
    spec, rendition = runtime.spec, loaded.rendition
    packed = spec.kind == "byterange"
    # Variables: URIs become /{$channel}/<rendition>/<n>.{$ext}, `channel` imported from the master.
    base = f"/{{$channel}}/{rendition.name}/" if spec.variables else ""
    lines = _media_header(runtime, loaded, first, iframes, packed)
    for msn in range(first, last + 1):
        lines += _segment_tags(runtime, loaded, msn, first, iframes, packed)
        lines.append(f"#EXTINF:{rendition.durations[msn % runtime.size]},")
        lines += _segment_uri(runtime, loaded, msn, first, iframes, packed, base)
    if endlist:
        lines.append("#EXT-X-ENDLIST")
    return ("\n".join(lines) + "\n").encode()


def _media_header(runtime: _Channel, loaded: _Loaded, first: int, iframes: bool, packed: bool) -> list[str]:
    """The media playlist's lines before its first segment."""
    spec, rendition = runtime.spec, loaded.rendition
    version = 6 if loaded.init is not None else 4 if (iframes or packed) else 3
    if spec.variables:
        version = max(version, 8)
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{version}",
        f"#EXT-X-TARGETDURATION:{runtime.target_duration}",
        f"#EXT-X-MEDIA-SEQUENCE:{first}",
        # Each wrap of the pool before `first` is one discontinuity: segment n's DSN is n // size.
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{first // runtime.size}",
    ]
    if spec.variables:
        lines += ['#EXT-X-DEFINE:IMPORT="channel"', f'#EXT-X-DEFINE:NAME="ext",VALUE="{rendition.extension}"']
    if iframes:
        lines.append("#EXT-X-I-FRAMES-ONLY")
    if spec.extras:
        lines.append("#EXT-X-START:TIME-OFFSET=-6.0")
    if loaded.init is not None:
        lines.append('#EXT-X-MAP:URI="init.mp4"')
    return lines


def _segment_tags(
    runtime: _Channel, loaded: _Loaded, msn: int, first: int, iframes: bool, packed: bool
) -> list[str]:
    """The tags before segment `msn`'s EXTINF: discontinuity at a wrap, key, PDT, ad markers, extras."""
    spec, rendition = runtime.spec, loaded.rendition
    lines = []
    if msn % runtime.size == 0 and msn != first:
        lines.append("#EXT-X-DISCONTINUITY")
    per_key = spec.key_rotation
    if spec.kind == "aes" and (msn == first or msn % per_key == 0):
        key = f'#EXT-X-KEY:METHOD=AES-128,URI="../keys/{msn // per_key}.key"'
        if spec.extras:
            key += f',KEYID=0x{msn // per_key:032X},X-KEY-VENDOR="harvest-devtools"'
        lines.append(key)
    if spec.subtitles_pdt or rendition.media_type != "SUBTITLES":
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_pdt(runtime.segment_start(msn))}")
    lines += _ad_markers(runtime, msn)
    if spec.extras:
        if msn == first and not (iframes or packed):  # BITRATE is for whole-file segments
            lines.append(f"#EXT-X-BITRATE:{max(rendition.bandwidth // 1000, 1)}")
        lines.append(f"#EXT-X-VENDOR-SEGMENT-NOTE:msn={msn}")
    if msn == spec.broken_tag_msn:
        lines.append('#EXT-X-DATERANGE:ID="broken",START-DATE="not a date"')
    return lines


def _segment_uri(
    runtime: _Channel, loaded: _Loaded, msn: int, first: int, iframes: bool, packed: bool, base: str
) -> list[str]:
    """Segment `msn`'s URI line, after its BYTERANGE when it is a slice of a larger resource."""
    spec, rendition = runtime.spec, loaded.rendition
    if iframes:
        frame = rendition.iframes[msn % runtime.size]
        return [f"#EXT-X-BYTERANGE:{frame.length}@{frame.offset}", f"{base}{msn}.ts"]
    if packed:
        per_pack = spec.segments_per_resource
        offset, length = runtime.byte_range(rendition.name, msn)
        # The offset may be left out only when this range directly follows the previous one.
        explicit = msn == first or msn % per_pack == 0
        byterange = f"#EXT-X-BYTERANGE:{length}" + (f"@{offset}" if explicit else "")
        return [byterange, f"pack-{msn // per_pack}.ts"]
    if spec.script_uris:
        return [f"{base}get.php?seg={msn}"]
    if spec.variables:
        return [f"{base}{msn}.{{$ext}}"]
    return [f"{msn}.{rendition.extension}"]


# --- HTTP plumbing ------------------------------------------------------------------------------


def _text(status: int, message: str) -> _Response:
    return _Response(status, message.encode())


def _requested_range(header: str | None, size: int) -> range | None:
    """The single byte range asked for; None to serve the whole body; an empty range = unsatisfiable."""
    match = _RANGE.match(header.strip()) if header else None
    if match is None or match[1] == match[2] == "":
        return None  # no Range, or one we do not support (multiple ranges): RFC 9110 lets us ignore it
    first, last = match[1], match[2]
    if first == "":
        suffix = int(last)
        return range(max(0, size - suffix), size) if suffix else range(0)
    start = int(first)
    if last and int(last) < start:
        return None
    stop = min(int(last) + 1, size) if last else size
    return range(start, stop) if start < size else range(0)


def _apply_range(response: _Response, header: str | None) -> _Response:
    size = len(response.body)
    wanted = _requested_range(header, size)
    if wanted is None:
        return response
    if len(wanted) == 0:
        return _Response(416, b"", response.content_type, [("Content-Range", f"bytes */{size}")])
    body = memoryview(response.body)[wanted.start : wanted.stop]
    content_range = ("Content-Range", f"bytes {wanted.start}-{wanted.stop - 1}/{size}")
    return _Response(206, body, response.content_type, [*response.headers, content_range])


def _write(handler: _Handler, response: _Response, head: bool, cut: bool) -> int:
    lines = [
        f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Accept-Ranges: bytes",
        *(f"{name}: {value}" for name, value in response.headers),
    ]
    if cut:
        handler.close_connection = True
    if handler.close_connection:
        lines.append("Connection: close")
    header = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    body = b"" if head else response.body
    if cut:
        body = memoryview(body)[: len(body) // 2]
    # One send for small answers (no header/body split on the wire); big bodies go out uncopied.
    if len(body) <= 65536:
        handler.wfile.write(header + bytes(body))
    else:
        handler.wfile.write(header)
        handler.wfile.write(body)
    return len(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the benchmark opens many connections at once

    def __init__(self, address: tuple[str, int], origin: LiveOrigin) -> None:
        self.origin = origin
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, opened: bool) -> None:
        with self._open_lock:
            if opened:
                self._open.add(connection)
            else:
                self._open.discard(connection)

    def close_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (timeouts, cut bodies, stop()) are normal here, not errors to print.
        if isinstance(sys.exc_info()[1], OSError):
            return
        log.exception("live origin: error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are closed eventually

    @property
    def _server(self) -> _Server:
        return cast(_Server, self.server)

    def setup(self) -> None:
        super().setup()
        self._server.track(self.connection, opened=True)
        self._server.origin.stats.count_connection()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._server.track(self.connection, opened=False)

    def do_GET(self) -> None:
        self._server.origin._serve(self, head=False)

    def do_HEAD(self) -> None:
        self._server.origin._serve(self, head=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # per-request logging would cost more than serving


# --- the demo origin (`harvest demo-origin`) -----------------------------------------------------

DEMO_AD_BREAKS = (10, 5)  # segments: a 5-segment break every 10
DEMO_CHANNEL_NAMES = {"ts": "demo", "fmp4": "demo-fmp4", "aes": "demo-aes", "byterange": "demo-byterange"}


def demo_channels(
    data_dir: Path, kinds: Iterable[str] = ("ts",), dvr_window: int = 3600, pool_seconds: int = 30
) -> dict[str, ChannelSpec]:
    """One channel per kind ("demo" for ts, "demo-<kind>" otherwise), pools cached in data_dir/media.

    The "demo" channel carries an SCTE-35 ad break of 10 s every 20 s (DEMO_AD_BREAKS), so any
    window longer than 10 s holds at least part of one.
    """
    media = Path(data_dir) / "media"
    return {
        DEMO_CHANNEL_NAMES[kind]: ChannelSpec(
            kind,
            build_pool(media, kind, seconds=pool_seconds),
            segment_seconds=2,
            dvr_window=dvr_window,
            ad_breaks=DEMO_AD_BREAKS if kind == "ts" else None,
        )
        for kind in kinds
    }


def run_demo_origin(
    data_dir: Path,
    host: str,
    port: int,
    kinds: Iterable[str] = ("ts",),
    dvr_window: int = 3600,
    stop_event: threading.Event | None = None,
    on_ready: Callable[[LiveOrigin], None] | None = None,
    pool_seconds: int = 30,
) -> None:
    """Serve the demo channels until `stop_event` is set (or the process is interrupted).

    `on_ready` gets the started origin (its `url` tells the port when `port` was 0).
    """
    unknown = set(kinds) - set(DEMO_CHANNEL_NAMES)
    if unknown:
        raise ConfigError(f"unknown demo kinds {sorted(unknown)} (known: {', '.join(DEMO_CHANNEL_NAMES)})")
    channels = demo_channels(data_dir, kinds, dvr_window, pool_seconds)
    origin = LiveOrigin(channels, host=host, port=port).start()
    try:
        if on_ready is not None:
            on_ready(origin)
        (stop_event or threading.Event()).wait()
    finally:
        origin.stop()


def write_channels_yaml(
    path: Path, origin_url: str, channels: Mapping[str, ChannelSpec], master: str = "master.m3u8"
) -> None:
    """A channel registry (see harvest.domain.registry) with one `hls` endpoint per origin channel.

    `master`: the endpoint's path under the channel ("redirect/master.m3u8" for the redirecting one).
    """
    entries = []
    for name, spec in channels.items():
        endpoint: dict[str, Any] = {
            "name": "hls",
            "url": f"{origin_url.rstrip('/')}/{name}/{master}",
            "protocol": "HLS",
            "startover_window": spec.dvr_window,
            "timeshift_query": "start={start}&end={end}",
        }
        if spec.required_headers:
            endpoint["headers"] = dict(spec.required_headers)
        endpoints = [endpoint]
        if spec.dash is not None:
            # The same channel as a DASH endpoint and as a CMAF one (HLS master + MPD, shared segments).
            mpd = f"{origin_url.rstrip('/')}/{name}/manifest.mpd"
            common = {k: v for k, v in endpoint.items() if k not in ("name", "url", "protocol")}
            endpoints.append({"name": "dash", "url": mpd, "protocol": "DASH", **common})
            endpoints.append({**endpoint, "name": "cmaf", "protocol": "CMAF", "dash_url": mpd})
            # CMAF without a dash_url: the MPD is written from the HLS playlists.
            endpoints.append({**endpoint, "name": "cmaf-hls", "protocol": "CMAF"})
        entries.append({"name": name, "endpoints": endpoints})
    Path(path).write_text(yaml.safe_dump({"channels": entries}, sort_keys=False), encoding="utf-8")
