"""The HLS format: read a live master and its media playlists, write the VOD playlists.

The reader fetches the endpoint's master and every rendition playlist through the Origin port,
selects the window in each and tells the TaskBook what to download; after the book has assigned
keys, the writer renders every child playlist and the master with relative URIs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from harvest.domain.registry import Endpoint
from harvest.domain.urlpolicy import same_origin
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
from harvest.ports import Origin

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


@dataclass
class HlsReading:
    """The windows chosen in every rendition, ready to be written once the book has assigned keys."""

    master: MasterPlaylist | None
    clips: list[Clip]
    dateranges: tuple[DateRange, ...]
    warnings: list[str]

    def write(self, book: TaskBook, layout: Layout, manifest_key: str) -> dict[str, str]:
        return _render(self.master, self.clips, layout, book, self.dateranges, manifest_key)


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
    """
    endpoint, start, end, now = ctx.endpoint, ctx.start, ctx.end, ctx.now
    master, playlists = _read_playlists(ctx.origin, endpoint, url, start, end, ctx.limits.parse)
    playlists = _place_in_time(playlists, now if ctx.pdt_fallback else None)
    warnings: list[str] = []
    clips = []
    for rendition, playlist in playlists:
        live_edge = now if ctx.pdt_fallback and not playlist.ended else None
        window = select_window(playlist, start, end, rendition.name, live_edge)
        _check_problems(window, warnings)
        clips.append(Clip(rendition, window))
    dateranges = overlapping_dateranges(_every_daterange(clips), start, end)
    sniff = _Sniffer(ctx.origin, endpoint.headers)
    for clip in clips:
        _collect_needs(book, clip, book.layout.folder(clip.rendition.name), ctx.copy_keys, sniff)
    if ctx.copy_keys and master is not None:
        for key in master.session_keys:
            if _copyable(key):
                book.need_key(key.uri or "")
    return HlsReading(master=master, clips=clips, dateranges=dateranges, warnings=warnings)


def _read_playlists(
    origin: Origin, endpoint: Endpoint, url: str, start: float, end: float, limits: ParseLimits
) -> tuple[MasterPlaylist | None, list[tuple[_Rendition, MediaPlaylist]]]:
    """The master (None when the endpoint is a media playlist) and every rendition's playlist.

    URIs resolve against the URL each playlist finally came from, after any redirect.
    """
    master_url = playlist_url(url, endpoint.timeshift_query, start, end)
    fetched = origin.get_playlist(master_url, endpoint.headers)
    if not is_master(fetched.text):
        playlist = parse_media(fetched.text, fetched.url, limits=limits)
        return None, [(_Rendition(name="v0", url=master_url, kind=MAIN), playlist)]
    master = one_pathway(parse_master(fetched.text, fetched.url, limits=limits))
    imports = dict(master.variables)
    playlists = []
    for rendition in _renditions(master):
        # The time-shift query, like the headers, is the endpoint's: never sent to another host.
        query = endpoint.timeshift_query if same_origin(rendition.url, endpoint.url) else ""
        url = playlist_url(rendition.url, query, start, end)
        child = origin.get_playlist(url, endpoint.headers)
        playlists.append((rendition, parse_media(child.text, child.url, imports=imports, limits=limits)))
    return master, playlists


def _place_in_time(
    playlists: list[tuple[_Rendition, MediaPlaylist]], live_edge: float | None
) -> list[tuple[_Rendition, MediaPlaylist]]:
    """Renditions without PDT aligned to the first sibling that has PDT (main renditions first)."""
    with_pdt = [(r, p) for r, p in playlists if p.has_pdt]
    if not with_pdt or len(with_pdt) == len(playlists):
        return playlists  # all have PDT, or none does: select_window's live-edge rule decides
    reference_name, reference = next(((r, p) for r, p in with_pdt if r.kind == MAIN), with_pdt[0])
    placed = []
    for rendition, playlist in playlists:
        if not playlist.has_pdt and playlist.segments:
            aligned = align_to(playlist, reference)
            if aligned is None:
                raise PlaylistError(
                    f"rendition {rendition.name} has no EXT-X-PROGRAM-DATE-TIME and cannot be aligned"
                    f" to rendition {reference_name.name}: no segment shares its media sequence number"
                    " and duration, and no discontinuity is shared"
                )
            playlist = aligned
        placed.append((rendition, playlist))
    return placed


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


def _every_daterange(clips: list[Clip]) -> list[DateRange]:
    """The date ranges of every rendition, one per ID (the first that knows the range's start wins)."""
    found: dict[str, DateRange] = {}
    for clip in clips:
        for daterange in clip.window.playlist.dateranges:
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


def _render(
    master: MasterPlaylist | None,
    clips: list[Clip],
    layout: Layout,
    book: TaskBook,
    dateranges: tuple[DateRange, ...],
    master_key: str,
) -> dict[str, str]:
    """Every output playlist by object key: the children, then the master."""
    # §6.2.4: one target duration for every variant and audio/video rendition; subtitles and
    # I-frame playlists may differ (each gets its own minimum).
    master_folder = master_key.rpartition("/")[0] + "/" if "/" in master_key else ""
    main_target = target_duration(clip.window for clip in clips if clip.rendition.kind == MAIN)
    if master is None:
        (clip,) = clips
        locator = _Locator(book, master_folder)
        return {master_key: render_media(clip.window, locator, main_target, dateranges)}
    playlists: dict[str, str] = {}
    for clip in clips:
        name = clip.rendition.name
        target = main_target if clip.rendition.kind == MAIN else None
        locator = _Locator(book, layout.folder(name))
        playlists[playlist_key(layout, name)] = render_media(clip.window, locator, target, dateranges)
    uris = {
        clip.rendition.url: relative_uri(playlist_key(layout, clip.rendition.name), master_folder)
        for clip in clips
    }
    playlists[master_key] = render_master(master, uris, _Locator(book, master_folder).key)
    return playlists
