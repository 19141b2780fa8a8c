"""The HLS format: read a live master and its media playlists, write the VOD playlists.

The reader fetches the endpoint's master and every rendition playlist through the Origin port,
selects the window in each and tells the TaskBook what to download; after the book has assigned
keys, the writer renders every child playlist and the master with relative URIs.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from harvest.domain.registry import Endpoint
from harvest.domain.urlpolicy import same_origin
from harvest.engine import prefetch
from harvest.engine.context import PlanContext, playlist_url
from harvest.engine.layout import (
    FolderNames,
    Layout,
    media_extension,
    relative_uri,
    sniff_extension,
    stored_name,
)
from harvest.engine.tasks import ObjectLocator, TaskBook
from harvest.errors import HarvestFailure, PlaylistError
from harvest.hls.model import (
    ByteRange,
    DateRange,
    InitSection,
    Key,
    MasterPlaylist,
    MediaPlaylist,
    Segment,
)
from harvest.hls.parse import ParseLimits, is_master, parse_master, parse_media, unquote
from harvest.hls.render import render_master, render_media, target_duration
from harvest.hls.window import Window, align_to, overlapping_dateranges, select_window
from harvest.ports import FetchedPlaylist, Origin

NAME = "HLS"
EXTENSION = ".m3u8"
CONTENT_TYPE = "application/vnd.apple.mpegurl"
SNIFF_BYTES = 189  # a TS packet and the next sync byte: enough to tell TS, fMP4, WebVTT, packed audio


def playlist_key(layout: Layout, rendition: str) -> str:
    """Where a rendition's VOD media playlist goes: `<root>/<rendition>/playlist.m3u8`."""
    return f"{layout.folder(rendition)}playlist{EXTENSION}"


# --- renditions ---------------------------------------------------------------------------------

MAIN, SUBTITLES, IFRAME = "main", "subtitles", "iframe"


@dataclass(frozen=True)
class _Rendition:
    name: str  # folder name
    url: str  # absolute source URL, as the master names it
    kind: str  # MAIN shares one target duration; SUBTITLES and IFRAME keep their own (§6.2.4)


@dataclass(frozen=True)
class Clip:
    rendition: _Rendition
    window: Window


def _renditions(master: MasterPlaylist) -> list[_Rendition]:
    """Every media playlist to harvest, one per source URL, in a fixed order (variants first)."""
    names = FolderNames()
    found: dict[str, _Rendition] = {}
    for i, variant in enumerate(master.variants):
        if variant.uri not in found:
            name = names.variant(i, variant.resolution, variant.bandwidth)
            found[variant.uri] = _Rendition(name=name, url=variant.uri, kind=MAIN)
    for media_type in ("VIDEO", "AUDIO", "SUBTITLES"):
        for media in master.media:
            if media.type == media_type and media.uri is not None and media.uri not in found:
                name = names.media(media.type, media.group_id, media.language, media.name)
                kind = SUBTITLES if media_type == "SUBTITLES" else MAIN
                found[media.uri] = _Rendition(name=name, url=media.uri, kind=kind)
    for i, stream in enumerate(master.iframe_streams):
        if stream.uri not in found:
            found[stream.uri] = _Rendition(
                name=names.iframe(i, stream.resolution), url=stream.uri, kind=IFRAME
            )
    return list(found.values())


# The EXT-X-STREAM-INF attributes that name an EXT-X-MEDIA group, each the group's TYPE.
_GROUP_ATTRIBUTES = frozenset({"AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"})


def one_pathway(master: MasterPlaylist) -> MasterPlaylist:
    """The master reduced to one content-steering pathway, without steering.

    A VOD is harvested once, from one place: the pathway EXT-X-CONTENT-STEERING names as the
    initial one (PATHWAY-ID), else the first variant's. Variants and I-frame streams of other
    pathways are dropped, and so are renditions whose group no kept variant uses. Without
    steering and with one pathway the master is returned unchanged.
    """
    pathways = {v.pathway for v in master.variants} | {i.pathway for i in master.iframe_streams}
    if master.steering is None and len(pathways) <= 1:
        return master
    initial = next((unquote(v) for n, v in master.steering or () if n == "PATHWAY-ID"), None)
    if initial not in pathways:
        initial = master.variants[0].pathway if master.variants else master.iframe_streams[0].pathway
    variants = tuple(v for v in master.variants if v.pathway == initial)
    used = {
        (name, unquote(value))
        for variant in variants
        for name, value in variant.attributes
        if name in _GROUP_ATTRIBUTES
    }
    media = master.media
    if len(pathways) > 1:
        media = tuple(m for m in master.media if (m.type, m.group_id) in used)
    return dataclasses.replace(
        master,
        variants=variants,
        iframe_streams=tuple(i for i in master.iframe_streams if i.pathway == initial),
        media=media,
        steering=None,
    )


class _Locator(ObjectLocator):
    """Output URIs for one playlist stored in `folder` (see hls.render.Locator)."""

    def segment(self, segment: Segment) -> tuple[str, ByteRange | None]:
        if segment.gap:
            return segment.uri, segment.byterange  # never fetched; clients must not load it anyway
        key, byterange = self.book.locate(segment.uri, segment.byterange)
        return self.relative(key), byterange

    def init(self, init: InitSection) -> tuple[str, ByteRange | None]:
        key, byterange = self.book.locate(init.uri, init.byterange)
        return self.relative(key), byterange

    def key(self, key: Key) -> str | None:
        if key.uri is not None and key.uri in self.book.keys:
            return self.relative(self.book.keys[key.uri])
        return key.uri  # absolute: still resolves from wherever the asset is served


def _copyable(key: Key) -> bool:
    # Only plain key files over HTTP can be mirrored; skd://, data: and DRM key formats stay put.
    return (
        key.uri is not None and key.uri.startswith(("http://", "https://")) and key.format_name == "identity"
    )


def _collect_needs(
    book: TaskBook, clip: Clip, folder: str, copy_keys: bool, sniff: Callable[[Segment], str]
) -> None:
    """Record every object the clip needs. Names: see _segment_extension."""
    context = "vtt" if clip.rendition.kind == SUBTITLES else ""
    seen_maps: set[InitSection] = set()
    seen_keys: set[tuple[Key, ...]] = set()
    sniffed: dict[str, str] = {}  # the extension found for segments whose URI does not say, once
    for segment in clip.window.segments:
        init = segment.map
        if init is not None and init not in seen_maps:
            seen_maps.add(init)
            init_ext = media_extension(init.uri) or "mp4"
            book.need(init.uri, init.byterange, folder, stored_name(init.uri, init_ext), False, init_ext)
            if copy_keys:
                _need_keys(book, init.keys, seen_keys)
        if copy_keys and segment.keys:
            _need_keys(book, segment.keys, seen_keys)
        if segment.gap:
            continue  # §4.4.4.7 (bis): a GAP segment has no media and must not be fetched
        ext = media_extension(segment.uri) or _unnamed_extension(segment, context, sniffed, sniff)
        book.need(segment.uri, segment.byterange, folder, f"{segment.msn}.{ext}", True, ext)


def _need_keys(book: TaskBook, keys: tuple[Key, ...], seen: set[tuple[Key, ...]]) -> None:
    """Copy the key files of `keys` that can be copied, once per set of keys."""
    if keys in seen:
        return
    seen.add(keys)
    for key in keys:
        if _copyable(key):
            book.need_key(key.uri or "")


def _unnamed_extension(
    segment: Segment, context: str, sniffed: dict[str, str], sniff: Callable[[Segment], str]
) -> str:
    """The extension of a segment whose URI has none: fMP4 after a MAP, the rendition's kind
    (subtitles), or else what the first such segment's bytes show (sniffed once per clip)."""
    if segment.map is not None:
        return "m4s"
    if context:
        return context
    if "ext" not in sniffed:
        sniffed["ext"] = sniff(segment)
    return sniffed["ext"]


# --- the reader and the writer ------------------------------------------------------------------


# The VOD playlists of a plan may list this many segments per download it may plan: each variant's
# I-frame playlist lists its segments again.
ENTRIES_PER_TASK = 2

# What one parsed segment costs in memory (measured: a 20,000-segment playlist parses to ~9.5 MB).
SEGMENT_BYTES = 500

# Windows are kept parsed, whatever their text would cost, up to this many segments in all (~25 MB):
# parsing a playlist again when writing it doubled the planning time of a 24 h window (0.13 s to
# 0.28 s for 14,400 segments); past it, the bigger plans keep compressed text and stay bounded.
PARSED_SEGMENTS_BUDGET = 50_000


@dataclass
class _Kept:
    """One rendition between reading and writing, in whichever form costs less memory.

    A parsed 20,000-segment playlist is ~10 MB, its text ~100 KB compressed: a plan of 20 such
    renditions held 190 MB of parsed playlists from the first read to the last write. So a rendition
    keeps its text, compressed, and is parsed again when written (the same text, URL and limits
    parse to the same playlist); or, when its window is a small part of a long playlist, only the
    window's segments, parsed (a 24 h playlist harvested for a minute keeps 30 segments, not 24 h).
    """

    rendition: _Rendition
    url: str  # where the text came from, after redirects: relative URIs resolve against it
    has_pdt: bool
    has_segments: bool
    text: bytes | None  # zlib-compressed playlist text; always kept for the reference rendition
    clip: Clip | None = None  # the window, sliced to what writing it reads (see _sliced)


def _sliced(window: Window) -> Window:
    """The same window over a playlist cut down to the segments writing it reads.

    Those are the window's, and the ones back to where an ad break the window starts inside was
    opened (the renderer sums their durations for CUE-OUT-CONT). Trailing tags stay only when the
    window runs to the playlist's end, as the renderer writes them only then.
    """
    playlist, lo = window.playlist, window.first
    first = playlist.segments[window.first]
    if first.cue is not None:
        lo = max(window.first - (first.msn - first.cue.msn), 0)
    trailing = playlist.trailing_tags if window.stop == len(playlist.segments) else ()
    cut = dataclasses.replace(playlist, segments=playlist.segments[lo : window.stop], trailing_tags=trailing)
    return Window(cut, window.first - lo, window.stop - lo, window.start, window.end)


@dataclass
class _Reader:
    """Parses kept renditions and places them in time and in the window, one at a time."""

    ctx: PlanContext
    imports: dict[str, str]
    kept: list[_Kept] = dataclasses.field(default_factory=list)
    reference: int | None = None  # the first rendition with PDT: the others are aligned to it
    parsed_segments: int = 0  # segments of the windows kept parsed (see shrink)
    _reference_playlist: MediaPlaylist | None = None

    def keep(self, rendition: _Rendition, text: str, url: str, playlist: MediaPlaylist) -> _Kept:
        packed = zlib.compress(text.encode(), 1)
        kept = _Kept(rendition, url, playlist.has_pdt, bool(playlist.segments), packed)
        if kept.has_pdt and self.reference is None:
            self.reference = len(self.kept)  # parsed again only if a rendition needs aligning to it
        self.kept.append(kept)
        return kept

    def parse(self, kept: _Kept) -> MediaPlaylist:
        assert kept.text is not None
        text = zlib.decompress(kept.text).decode()
        return parse_media(text, kept.url, imports=self.imports, limits=self.ctx.limits.parse)

    def placeable(self, kept: _Kept) -> bool:
        """Whether the rendition can be placed in time now: it has PDT, or a sibling that has is known."""
        return kept.has_pdt or not kept.has_segments or self.reference is not None

    def window(self, kept: _Kept, playlist: MediaPlaylist, final: bool) -> Window:
        """The rendition's window (hls.window.select_window), after _place_in_time's rule.

        Renditions without PDT are aligned to the first that has them; with none that has, each is
        placed by its live edge (`final`: every rendition has been read, so none will have PDT).
        """
        ctx, rendition = self.ctx, kept.rendition
        if not kept.has_pdt and kept.has_segments and self.reference is not None:
            reference = self._reference()
            aligned = align_to(playlist, reference)
            if aligned is None:
                raise PlaylistError(
                    f"rendition {rendition.name} has no EXT-X-PROGRAM-DATE-TIME and cannot be aligned"
                    f" to rendition {self.kept[self.reference].rendition.name}: no segment shares its"
                    " media sequence number and duration, and no discontinuity is shared"
                )
            playlist = aligned
        assert final or self.placeable(kept)
        live_edge = ctx.now if ctx.pdt_fallback and not playlist.ended else None
        return select_window(playlist, ctx.start, ctx.end, rendition.name, live_edge)

    def _reference(self) -> MediaPlaylist:
        assert self.reference is not None
        if self._reference_playlist is None:
            self._reference_playlist = self.parse(self.kept[self.reference])
        return self._reference_playlist

    def done_reading(self) -> None:
        self._reference_playlist = None

    def shrink(self, kept: _Kept, window: Window) -> None:
        """Keep the rendition's window sliced instead of its text, when that costs less memory or
        the plan's parsed windows so far still fit PARSED_SEGMENTS_BUDGET (no second parse then)."""
        sliced = _sliced(window)
        count = len(sliced.playlist.segments)
        cheaper = kept.text is not None and SEGMENT_BYTES * count < len(kept.text)
        if cheaper or self.parsed_segments + count <= PARSED_SEGMENTS_BUDGET:
            self.parsed_segments += count
            kept.clip = Clip(kept.rendition, sliced)
            if self.reference is None or self.kept[self.reference] is not kept:
                kept.text = None  # the reference keeps its text: others may be aligned to all of it

    def clip(self, kept: _Kept) -> Clip:
        """The rendition's clip as it was read: kept sliced, or parsed, placed and windowed again."""
        if kept.clip is not None:
            return kept.clip
        return Clip(kept.rendition, self.window(kept, self.parse(kept), final=True))


@dataclass
class HlsReading:
    """What the reader found, ready to be written once the book has assigned keys.

    Only summaries are held between reading and writing (the kept texts, the date ranges, the
    longest segment); each rendition's clip is made again when it is written.
    """

    master: MasterPlaylist | None
    reader: _Reader
    dateranges: tuple[DateRange, ...]
    main_target: int
    warnings: list[str]

    @property
    def clips(self) -> list[Clip]:
        """Every rendition's clip at once (the DASH writer for CMAF needs them together)."""
        return [self.reader.clip(kept) for kept in self.reader.kept]

    def write(self, book: TaskBook, layout: Layout, manifest_key: str) -> dict[str, str]:
        return _render(self, layout, book, manifest_key)


def read(ctx: PlanContext, url: str, book: TaskBook) -> HlsReading:
    """Read the playlists at `url`, select [ctx.start, ctx.end) and tell `book` what to download.

    Every playlist request carries the endpoint's headers and time-shift query. A URL that is a
    media playlist is harvested as a single rendition whose VOD media playlist is written at the
    manifest key itself: a master would need a BANDWIDTH that cannot be known before the segments
    are downloaded.

    Times: a rendition without EXT-X-PROGRAM-DATE-TIME is aligned to the first rendition that has
    them (hls.window.align_to). With no such sibling, `ctx.pdt_fallback` places a live playlist (no
    EXT-X-ENDLIST) by its live edge: its last segment ends at `ctx.now`. Derived times choose the
    segments but are never written into the VOD.

    Malformed tags (see hls.parse) fail the job when they concern a segment inside the window and
    are returned as warnings otherwise.

    Memory: renditions are parsed one at a time, each parsed playlist dropped once its needs are in
    the book (a rendition read before any with PDT waits, compressed, for the end), so a plan holds
    one parsed playlist, not every one; the texts of a few more wait fetched (engine.prefetch).
    """
    endpoint = ctx.endpoint
    master, renditions = _read_master(ctx.origin, endpoint, url, ctx.start, ctx.end, ctx.limits.parse)
    reader = _Reader(ctx, dict(master.variables) if master is not None else {})
    sniff = _Sniffer(ctx.origin, endpoint.headers)
    summaries: dict[int, tuple[list[str], tuple[DateRange, ...], int | None]] = {}
    waiting: list[int] = []  # renditions whose needs wait, so the book hears them in rendition order
    entries = [0]  # segments in the windows of the renditions taken so far

    def take(index: int, playlist: MediaPlaylist, final: bool) -> None:
        kept = reader.kept[index]
        window = reader.window(kept, playlist, final)
        warnings: list[str] = []
        _check_problems(window, warnings)
        longest = target_duration([window]) if kept.rendition.kind == MAIN else None
        summaries[index] = (warnings, window.playlist.dateranges, longest)
        entries[0] += window.stop - window.first
        if entries[0] > ENTRIES_PER_TASK * ctx.limits.max_tasks:
            # The VOD playlists are written whole, so their size is bounded too, not only the
            # downloads: 50 I-frame playlists over one variant's segments add no download.
            raise PlaylistError(
                f"the window's playlists list {entries[0]} segments (counted so far), more than the"
                f" {ENTRIES_PER_TASK * ctx.limits.max_tasks} one job may write"
                f" (the limit, {ENTRIES_PER_TASK} x HARVEST_MAX_PLAN_TASKS)"
            )
        folder = book.layout.folder(kept.rendition.name)
        _collect_needs(book, Clip(kept.rendition, window), folder, ctx.copy_keys, sniff)
        reader.shrink(kept, window)

    for rendition, fetched in renditions:
        playlist = parse_media(fetched.text, fetched.url, imports=reader.imports, limits=ctx.limits.parse)
        kept = reader.keep(rendition, fetched.text, fetched.url, playlist)
        del fetched
        if not waiting and reader.placeable(kept):
            take(len(reader.kept) - 1, playlist, final=False)
        else:
            waiting.append(len(reader.kept) - 1)
        del playlist
    for index in waiting:
        take(index, reader.parse(reader.kept[index]), final=True)
    reader.done_reading()

    warnings = [w for index in range(len(reader.kept)) for w in summaries[index][0]]
    dateranges = overlapping_dateranges(
        _every_daterange(summaries[index][1] for index in range(len(reader.kept))), ctx.start, ctx.end
    )
    main_target = max((t for _, _, t in summaries.values() if t is not None), default=1)
    if ctx.copy_keys and master is not None:
        for key in master.session_keys:
            if _copyable(key):
                book.need_key(key.uri or "")
    return HlsReading(master, reader, dateranges, main_target, warnings)


def _read_master(
    origin: Origin, endpoint: Endpoint, url: str, start: float, end: float, limits: ParseLimits
) -> tuple[MasterPlaylist | None, Iterator[tuple[_Rendition, FetchedPlaylist]]]:
    """The master (None when the endpoint is a media playlist), then each rendition's playlist, in
    order, fetched a few ahead of the one being read (engine.prefetch).

    URIs resolve against the URL each playlist finally came from, after any redirect.
    """
    master_url = playlist_url(url, endpoint.timeshift_query, start, end)
    fetched = origin.get_playlist(master_url, endpoint.headers)
    if not is_master(fetched.text):
        return None, iter([(_Rendition(name="v0", url=master_url, kind=MAIN), fetched)])
    master = one_pathway(parse_master(fetched.text, fetched.url, limits=limits))

    renditions = list(_renditions(master))

    def fetch(rendition: _Rendition) -> Callable[[], FetchedPlaylist]:
        # The time-shift query, like the headers, is the endpoint's: never sent to another host.
        query = endpoint.timeshift_query if same_origin(rendition.url, endpoint.url) else ""
        url = playlist_url(rendition.url, query, start, end)
        return lambda: origin.get_playlist(url, endpoint.headers)

    playlists = prefetch.in_order([fetch(r) for r in renditions], lambda playlist: len(playlist.text))
    return master, zip(renditions, playlists, strict=True)


def _check_problems(window: Window, warnings: list[str]) -> None:
    """Fail on a malformed tag that concerns the window; keep the others as warnings."""
    url = window.playlist.url
    for segment in window.segments:
        if segment.problems:
            raise PlaylistError(
                f"playlist {url} {segment.problems[0]} (segment {segment.msn}, inside the window)"
            )
    segments = window.playlist.segments
    for index in (*range(window.first), *range(window.stop, len(segments))):
        for problem in segments[index].problems:
            warnings.append(f"playlist {url} {problem} (outside the window, ignored)")
    for problem in window.playlist.problems:
        warnings.append(f"playlist {url} {problem} (after the last segment, ignored)")


def _every_daterange(per_rendition: Iterable[tuple[DateRange, ...]]) -> list[DateRange]:
    """The date ranges of every rendition, one per ID (the first that knows the range's start wins)."""
    found: dict[str, DateRange] = {}
    for dateranges in per_rendition:
        for daterange in dateranges:
            known = found.get(daterange.id)
            if known is None or (known.start is None and daterange.start is not None):
                found[daterange.id] = daterange
    return list(found.values())


class _Sniffer:
    """What a segment whose URI does not say is: its first bytes, asked of the origin once per rendition."""

    def __init__(self, origin: Origin, headers: Mapping[str, str]) -> None:
        self.origin = origin
        self.headers = headers

    def __call__(self, segment: Segment) -> str:
        offset, length = (segment.byterange.offset, segment.byterange.length) if segment.byterange else (0, 0)
        span = (offset, min(length, SNIFF_BYTES) if length else SNIFF_BYTES)
        try:
            head = self.origin.get_bytes(segment.uri, self.headers, span)
        except HarvestFailure:
            return "bin"  # the download itself will report a segment that cannot be fetched
        return sniff_extension(head)


def _render(reading: HlsReading, layout: Layout, book: TaskBook, master_key: str) -> dict[str, str]:
    """Every output playlist by object key: the children, then the master. One rendition parsed at a time."""
    # §6.2.4: one target duration for every variant and audio/video rendition; subtitles and
    # I-frame playlists may differ (each gets its own minimum).
    master, reader, dateranges = reading.master, reading.reader, reading.dateranges
    master_folder = master_key.rpartition("/")[0] + "/" if "/" in master_key else ""
    if master is None:
        (kept,) = reader.kept
        locator = _Locator(book, master_folder)
        return {master_key: render_media(reader.clip(kept).window, locator, reading.main_target, dateranges)}
    playlists: dict[str, str] = {}
    for kept in reader.kept:
        name = kept.rendition.name
        target = reading.main_target if kept.rendition.kind == MAIN else None
        locator = _Locator(book, layout.folder(name))
        window = reader.clip(kept).window
        playlists[playlist_key(layout, name)] = render_media(window, locator, target, dateranges)
        del window
    reader.done_reading()
    uris = {
        kept.rendition.url: relative_uri(playlist_key(layout, kept.rendition.name), master_folder)
        for kept in reader.kept
    }
    playlists[master_key] = render_master(master, uris, _Locator(book, master_folder).key)
    return playlists
