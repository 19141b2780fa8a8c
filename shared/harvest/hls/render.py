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
- EXT-X-PROGRAM-DATE-TIME on the first segment, after every discontinuity, and wherever the source had one;
  none at all in a rendition whose times we derived (aligned to a sibling, or placed by the live
  edge): the VOD never presents a guessed time as the origin's.
- EXT-X-DATERANGE: the planner passes one set for every rendition, every range whose [START, END)
  overlaps the job's window, the tags of one ID merged (hls.parse); each is written before the first
  segment that ends after its START-DATE (a range already open when the window starts: before the
  first segment, with its original START-DATE, so a client knows the asset starts inside it).
- Ad markers and tags this code does not interpret (CUE-OUT/CUE-IN/CUE-OUT-CONT, OATCLS-SCTE35,
  EXT-X-ASSET, EXT-X-SCTE35, SPLICEPOINT, vendor tags) are written at the segment they preceded.
  A VOD that starts inside a CUE-OUT break whose first segment carries no CUE-OUT-CONT of its own
  gets `#EXT-X-CUE-OUT-CONT:ElapsedTime=<s>,Duration=<s>` (Duration when the CUE-OUT gave one).
- EXT-X-KEY and EXT-X-MAP are written with every source attribute, only URI (and BYTERANGE) replaced;
  EXT-X-BITRATE is written where the rate in force changes; EXT-X-START is kept.
- EXT-X-BYTERANGE always carries an explicit offset (§4.3.2.2): the first clipped segment has no
  predecessor to follow, and harvested ranges are re-based to the stored object.
- EXTINF is written exactly as the source wrote it; GAP segments keep EXT-X-GAP and their URI.
- EXT-X-VERSION is the lowest the written features need (§7): IV 2; float EXTINF 3; BYTERANGE or
  I-FRAMES-ONLY 4; KEYFORMAT(VERSIONS) or SAMPLE-AES 5; MAP 5 in I-frame playlists, else 6; GAP 8
  (Apple's version table).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from harvest.hls.model import Attributes, ByteRange, DateRange, InitSection, Key, MasterPlaylist, Segment
from harvest.hls.parse import format_attributes, format_date, replace_attribute
from harvest.hls.window import Window, overlapping_dateranges

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


BLOCK_LINES = 4096  # lines of a media playlist joined into one string while it is written


def target_duration(windows: Iterable[Window]) -> int:
    """The smallest EXT-X-TARGETDURATION valid for every given window (at least 1)."""
    longest = max(
        (round_duration(segment.duration) for window in windows for segment in window.segments), default=1
    )
    return max(longest, 1)


def _is_float(text: str) -> bool:
    return "." in text or "e" in text or "E" in text


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


class _MediaWriter:
    def __init__(self, window: Window, locator: Locator, dateranges: tuple[DateRange, ...]) -> None:
        self.window = window
        self.locator = locator
        self.lines: list[str] = []
        self.version = 1
        self.keys: tuple[Key, ...] = ()
        self.map: InitSection | None = None
        self.bitrate: str | None = None
        self.iframes_only = window.playlist.iframes_only
        self.write_pdt = not window.playlist.placed
        self.dateranges = dateranges  # sorted by start
        self.next_daterange = 0

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
        if key.iv is not None:
            self.needs(2)
        if key.keyformat or key.keyformatversions or key.method.startswith("SAMPLE-AES"):
            self.needs(5)
        return "#EXT-X-KEY:" + key_attributes(key, self.locator.key(key))

    def write_map(self, init: InitSection) -> None:
        if init.keys != self.keys:
            self.write_keys(init.keys)
        uri, byterange = self.locator.init(init)
        attributes = init.attributes or (("URI", ""),)
        attributes = replace_attribute(attributes, "URI", f'"{uri}"')
        span = f'"{byterange.length}@{byterange.offset}"' if byterange is not None else None
        self.lines.append(f"#EXT-X-MAP:{format_attributes(replace_attribute(attributes, 'BYTERANGE', span))}")
        self.map = init
        self.needs(5 if self.iframes_only else 6)

    def write_dateranges_before(self, segment: Segment) -> None:
        """Every chosen date range that starts before `segment` ends and is not written yet."""
        ranges, i = self.dateranges, self.next_daterange
        while i < len(ranges) and (ranges[i].start or 0.0) < segment.end:
            self.lines.append(f"#EXT-X-DATERANGE:{format_attributes(ranges[i].attributes)}")
            i += 1
        self.next_daterange = i

    def write_segment(self, segment: Segment, first: bool) -> None:
        """The segment's tags that change something since the previous one, then its URI."""
        lines = self.lines
        if self.next_daterange < len(self.dateranges):
            self.write_dateranges_before(segment)
        discontinuity = segment.discontinuity and not first
        if discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if segment.map is not None and segment.map != self.map:
            self.write_map(segment.map)
        if segment.keys != self.keys:
            self.write_keys(segment.keys)
        if self.write_pdt and (first or discontinuity or segment.pdt_text is not None):
            self.write_program_date_time(segment)
        if segment.bitrate != self.bitrate and segment.bitrate is not None:
            lines.append(f"#EXT-X-BITRATE:{segment.bitrate}")
            self.bitrate = segment.bitrate
        if first and segment.cue is not None:
            self.write_break_in_progress(segment)
        if segment.tags:
            lines.extend(segment.tags)
        self.write_media(segment)

    def write_program_date_time(self, segment: Segment) -> None:
        """The source's own PDT text when it had one, else the PDT it was given (never a blank)."""
        if segment.pdt_text is not None:
            self.lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{segment.pdt_text}")
        elif segment.pdt is not None:
            self.lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_date(segment.pdt)}")

    def write_media(self, segment: Segment) -> None:
        """GAP, BYTERANGE, EXTINF and the URI: the lines that say what to fetch and how long it plays."""
        lines = self.lines
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

    def write_break_in_progress(self, segment: Segment) -> None:
        """The VOD starts inside a CUE-OUT break: say so, unless the segment already does."""
        cue = segment.cue
        if cue is None or cue.msn == segment.msn or any(t.startswith("#EXT-X-CUE-OUT") for t in segment.tags):
            return
        segments = self.window.playlist.segments
        opened = self.window.first - (segment.msn - cue.msn)
        elapsed = sum(s.duration for s in segments[max(opened, 0) : self.window.first])
        attributes = f"ElapsedTime={_number(elapsed)}"
        if cue.duration is not None:
            attributes += f",Duration={_number(cue.duration)}"
        self.lines.append(f"#EXT-X-CUE-OUT-CONT:{attributes}")

    def body(self) -> list[str]:
        window = self.window
        first = True
        blocks: list[str] = []
        for segment in window.segments:
            self.write_segment(segment, first)
            first = False
            if len(self.lines) >= BLOCK_LINES:
                # Joined as they come: 600,000 small line strings cost three times their text.
                blocks.append("\n".join(self.lines))
                self.lines = []
        for daterange in self.dateranges[self.next_daterange :]:
            self.lines.append(f"#EXT-X-DATERANGE:{format_attributes(daterange.attributes)}")
        if window.stop == len(window.playlist.segments):
            self.lines.extend(window.playlist.trailing_tags)
        return [*blocks, *self.lines]


def key_attributes(key: Key, uri: str | None) -> str:
    """The key's attribute list as the source wrote it, URI replaced by `uri`."""
    attributes: Attributes = key.attributes or (("METHOD", key.method),)
    return format_attributes(replace_attribute(attributes, "URI", f'"{uri}"' if uri is not None else None))


def render_media(
    window: Window,
    locator: Locator,
    target: int | None = None,
    dateranges: tuple[DateRange, ...] | None = None,
) -> str:
    """A VOD media playlist for `window`; `target` is the shared EXT-X-TARGETDURATION.

    `target` is raised to this window's own minimum if it is lower, so the output never breaks
    §4.3.3.1 even when a caller passes a stale value. `dateranges` is the set to write (the
    planner passes the same one to every rendition); None takes this playlist's own that overlap
    the window.
    """
    if dateranges is None:
        dateranges = overlapping_dateranges(window.playlist.dateranges, window.start, window.end)
    writer = _MediaWriter(window, locator, dateranges)
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
    if playlist.start_tag is not None:
        header.append(f"#EXT-X-START:{playlist.start_tag}")
    return "\n".join([*header, *body, "#EXT-X-ENDLIST", ""])


def _with_uri(attributes: Attributes, uri: str | None) -> str:
    """The attribute list with URI replaced where it stood (or appended; removed when None)."""
    return format_attributes(replace_attribute(attributes, "URI", f'"{uri}"' if uri is not None else None))


def render_master(
    master: MasterPlaylist, uris: Mapping[str, str], key_uri: Callable[[Key], str | None] | None = None
) -> str:
    """The harvested master: every attribute kept, URIs replaced by `uris[source absolute URI]`.

    A rendition URI missing from `uris` (one that was not harvested) is removed rather than left
    pointing at the origin. EXT-X-SESSION-KEY URIs go through `key_uri` (copied keys point at the
    copy). PATHWAY-ID and EXT-X-CONTENT-STEERING are not written: the VOD holds one pathway.
    Variables (EXT-X-DEFINE) are already substituted, so no DEFINE is written either.

    EXT-X-VERSION is the source's (attributes are carried verbatim, so whatever they needed still
    holds), raised when carried features need more: INSTREAM-ID="SERVICEn" 7, KEYFORMAT 5.
    """
    version = master.version or 1
    body: list[str] = list(master.other_tags)
    if master.start_tag is not None:
        body.append(f"#EXT-X-START:{master.start_tag}")
    for data in master.session_data:
        body.append(f"#EXT-X-SESSION-DATA:{format_attributes(data)}")
    for key in master.session_keys:
        uri = key_uri(key) if key_uri is not None else key.uri
        body.append(f"#EXT-X-SESSION-KEY:{key_attributes(key, uri)}")
        if key.keyformat is not None:
            version = max(version, 5)
    for media in master.media:
        uri = uris.get(media.uri) if media.uri is not None else None
        body.append(f"#EXT-X-MEDIA:{_with_uri(media.attributes, uri)}")
        if any(name == "INSTREAM-ID" and value.startswith('"SERVICE') for name, value in media.attributes):
            version = max(version, 7)
    for variant in master.variants:
        attributes = replace_attribute(variant.attributes, "PATHWAY-ID", None)
        body.append(f"#EXT-X-STREAM-INF:{format_attributes(attributes)}")
        body.append(uris[variant.uri])
    for stream in master.iframe_streams:
        attributes = replace_attribute(stream.attributes, "PATHWAY-ID", None)
        body.append(f"#EXT-X-I-FRAME-STREAM-INF:{_with_uri(attributes, uris[stream.uri])}")
    header = ["#EXTM3U", f"#EXT-X-VERSION:{version}"]
    if master.independent_segments:
        header.append("#EXT-X-INDEPENDENT-SEGMENTS")
    return "\n".join([*header, *body, ""])
