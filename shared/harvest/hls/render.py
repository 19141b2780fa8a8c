"""Write the VOD media playlists and the master for a harvested window.

Rules followed (anchors §5, RFC 8216 section numbers):
- EXT-X-PLAYLIST-TYPE:VOD and EXT-X-ENDLIST (§4.3.3.5, §4.3.3.4); LL-HLS tags never appear.
- EXT-X-TARGETDURATION is recomputed over the clipped window as max(EXTINF rounded half up)
  (§4.3.3.1); the planner passes one value shared by every non-subtitle, non-I-frame playlist (§6.2.4).
- EXT-X-MEDIA-SEQUENCE is the source MSN of the first selected segment. Keeping the source numbers
  keeps implicit AES-128 IVs (the IV is the MSN, §5.2) valid without rewriting every key tag.
- EXT-X-DISCONTINUITY-SEQUENCE is the source DSN of the first selected segment. A discontinuity on
  the first selected segment is dropped (nothing precedes it in the VOD); its count is already in
  that segment's DSN, so every rendition, clipped at the same PDT, writes the same DSN.
- The EXT-X-MAP and every EXT-X-KEY (one per KEYFORMAT) in force at the first segment are written
  again before it, then every later change; an init section is written under the keys that were in
  force where the source declared it (§4.3.2.4, §4.3.2.5).
- EXT-X-PROGRAM-DATE-TIME on the first segment, after every discontinuity, and wherever the source had one.
- EXT-X-DATERANGE is kept when its START-DATE lies in [first segment start, last segment end).
  Ranges that started before the window (an ad break already open, say) are dropped: the VOD has
  no media for their start, and a client cannot act on a range that began before the asset.
- EXT-X-BYTERANGE always carries an explicit offset (§4.3.2.2): the first clipped segment has no
  predecessor to follow, and harvested ranges are re-based to the stored object.
- EXTINF is written exactly as the source wrote it; GAP segments keep EXT-X-GAP and their URI.
- EXT-X-VERSION is the lowest the written features need (§7): IV 2; float EXTINF 3; BYTERANGE or
  I-FRAMES-ONLY 4; KEYFORMAT(VERSIONS) or SAMPLE-AES 5; MAP 5 in I-frame playlists, else 6; GAP 8
  (Apple's version table).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from harvest.hls.model import ByteRange, DateRange, InitSection, Key, MasterPlaylist, Segment
from harvest.hls.parse import format_attributes, format_date
from harvest.hls.window import Window

MPEGURL = "application/vnd.apple.mpegurl"


class Locator(Protocol):
    """Where the output playlist finds each resource: a URI (relative or absolute) and byte range."""

    def segment(self, segment: Segment) -> tuple[str, ByteRange | None]: ...

    def init(self, init: InitSection) -> tuple[str, ByteRange | None]: ...

    def key(self, key: Key) -> str | None: ...


@dataclass(frozen=True)
class SourceLocator:
    """Points every resource back at the origin (absolute URIs, source byte ranges)."""

    def segment(self, segment: Segment) -> tuple[str, ByteRange | None]:
        return segment.uri, segment.byterange

    def init(self, init: InitSection) -> tuple[str, ByteRange | None]:
        return init.uri, init.byterange

    def key(self, key: Key) -> str | None:
        return key.uri


def round_duration(duration: float) -> int:
    """Round half up, as §4.3.3.1 means it (Python's round() would turn 6.5 into 6)."""
    return int(duration + 0.5)


def target_duration(windows: Iterable[Window]) -> int:
    """The smallest EXT-X-TARGETDURATION valid for every given window (at least 1)."""
    longest = max(
        (round_duration(segment.duration) for window in windows for segment in window.segments), default=1
    )
    return max(longest, 1)


def _is_float(text: str) -> bool:
    return "." in text or "e" in text or "E" in text


class _MediaWriter:
    def __init__(self, window: Window, locator: Locator) -> None:
        self.window = window
        self.locator = locator
        self.lines: list[str] = []
        self.version = 1
        self.keys: tuple[Key, ...] = ()
        self.map: InitSection | None = None
        self.iframes_only = window.playlist.iframes_only

    def needs(self, version: int) -> None:
        if version > self.version:
            self.version = version

    def write_keys(self, keys: tuple[Key, ...]) -> None:
        current = {key.format_name: key for key in self.keys}
        wanted = {key.format_name: key for key in keys}
        if not keys or any(name not in wanted for name in current):
            # METHOD=NONE ends encryption; then the formats still wanted are declared again.
            self.lines.append("#EXT-X-KEY:METHOD=NONE")
            current = {}
        for name, key in wanted.items():
            if current.get(name) != key:
                self.lines.append(self.key_line(key))
        self.keys = keys

    def key_line(self, key: Key) -> str:
        parts = [f"METHOD={key.method}"]
        uri = self.locator.key(key)
        if uri is not None:
            parts.append(f'URI="{uri}"')
        if key.iv is not None:
            parts.append(f"IV={key.iv}")
            self.needs(2)
        if key.keyformat is not None:
            parts.append(f'KEYFORMAT="{key.keyformat}"')
            self.needs(5)
        if key.keyformatversions is not None:
            parts.append(f'KEYFORMATVERSIONS="{key.keyformatversions}"')
            self.needs(5)
        if key.method.startswith("SAMPLE-AES"):
            self.needs(5)
        return "#EXT-X-KEY:" + ",".join(parts)

    def write_map(self, init: InitSection) -> None:
        if init.keys != self.keys:
            self.write_keys(init.keys)
        uri, byterange = self.locator.init(init)
        line = f'#EXT-X-MAP:URI="{uri}"'
        if byterange is not None:
            line += f',BYTERANGE="{byterange.length}@{byterange.offset}"'
        self.lines.append(line)
        self.map = init
        self.needs(5 if self.iframes_only else 6)

    def write_dateranges(self, dateranges: Iterable[DateRange]) -> None:
        begins, ends = self.window.begins, self.window.ends
        for daterange in dateranges:
            if begins <= daterange.start < ends:
                self.lines.append(f"#EXT-X-DATERANGE:{daterange.attributes}")

    def write_segment(self, segment: Segment, first: bool) -> None:
        lines = self.lines
        if segment.dateranges:
            self.write_dateranges(segment.dateranges)
        discontinuity = segment.discontinuity and not first
        if discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if segment.map is not None and segment.map != self.map:
            self.write_map(segment.map)
        if segment.keys != self.keys:
            self.write_keys(segment.keys)
        if first or discontinuity or segment.pdt_text is not None:
            if segment.pdt_text is not None:
                lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{segment.pdt_text}")
            elif segment.pdt is not None:
                lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_date(segment.pdt)}")
        if segment.gap:
            lines.append("#EXT-X-GAP")
            self.needs(8)
        uri, byterange = self.locator.segment(segment)
        if byterange is not None:
            lines.append(f"#EXT-X-BYTERANGE:{byterange.length}@{byterange.offset}")
            self.needs(4)
        if self.version < 3 and _is_float(segment.duration_text):
            self.needs(3)
        lines.append(f"#EXTINF:{segment.duration_text},{segment.title}")
        lines.append(uri)

    def body(self) -> list[str]:
        window = self.window
        segments = window.playlist.segments
        # Date ranges declared before the window whose START-DATE still falls inside it.
        for earlier in segments[: window.first]:
            if earlier.dateranges:
                self.write_dateranges(earlier.dateranges)
        first = True
        for segment in window.segments:
            self.write_segment(segment, first)
            first = False
        for later in segments[window.stop :]:
            if later.dateranges:
                self.write_dateranges(later.dateranges)
        self.write_dateranges(window.playlist.trailing_dateranges)
        return self.lines


def render_media(window: Window, locator: Locator, target: int | None = None) -> str:
    """A VOD media playlist for `window`; `target` is the shared EXT-X-TARGETDURATION.

    `target` is raised to this window's own minimum if it is lower, so the output never breaks
    §4.3.3.1 even when a caller passes a stale value.
    """
    writer = _MediaWriter(window, locator)
    body = writer.body()
    playlist = window.playlist
    first = window.segments[0]
    if playlist.iframes_only:
        writer.needs(4)
    header = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{writer.version}",
        f"#EXT-X-TARGETDURATION:{max(target or 0, target_duration([window]))}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        f"#EXT-X-MEDIA-SEQUENCE:{first.msn}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{first.discontinuity_seq}",
    ]
    if playlist.independent_segments:
        header.append("#EXT-X-INDEPENDENT-SEGMENTS")
    if playlist.iframes_only:
        header.append("#EXT-X-I-FRAMES-ONLY")
    return "\n".join([*header, *body, "#EXT-X-ENDLIST", ""])


def _with_uri(attributes: Iterable[tuple[str, str]], uri: str) -> str:
    """The attribute list with URI replaced where it stood (or appended), every other one untouched."""
    rewritten = [(name, f'"{uri}"' if name == "URI" else value) for name, value in attributes]
    if not any(name == "URI" for name, _ in rewritten):
        rewritten.append(("URI", f'"{uri}"'))
    return format_attributes(rewritten)


def render_master(master: MasterPlaylist, uris: Mapping[str, str]) -> str:
    """The harvested master: every attribute kept, URIs replaced by `uris[source absolute URI]`.

    EXT-X-VERSION is the source's (attributes are carried verbatim, so whatever they needed still
    holds), raised when carried features need more: INSTREAM-ID="SERVICEn" 7, KEYFORMAT 5.
    """
    version = master.version or 1
    body: list[str] = []
    for tag in master.session_tags:
        body.append(tag)
        if "KEYFORMAT" in tag and tag.startswith("#EXT-X-SESSION-KEY"):
            version = max(version, 5)
    for media in master.media:
        if media.uri is None:
            body.append(f"#EXT-X-MEDIA:{format_attributes(media.attributes)}")
        else:
            body.append(f"#EXT-X-MEDIA:{_with_uri(media.attributes, uris[media.uri])}")
        if any(name == "INSTREAM-ID" and value.startswith('"SERVICE') for name, value in media.attributes):
            version = max(version, 7)
    for variant in master.variants:
        body.append(f"#EXT-X-STREAM-INF:{format_attributes(variant.attributes)}")
        body.append(uris[variant.uri])
    for stream in master.iframe_streams:
        body.append(f"#EXT-X-I-FRAME-STREAM-INF:{_with_uri(stream.attributes, uris[stream.uri])}")
    header = ["#EXTM3U", f"#EXT-X-VERSION:{version}"]
    if master.independent_segments:
        header.append("#EXT-X-INDEPENDENT-SEGMENTS")
    return "\n".join([*header, *body, ""])
