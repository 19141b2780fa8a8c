"""The plan of a harvest job: what to download where, and the playlists to write at the end.

`build_plan` reads the endpoint's master and every rendition playlist through the Origin port,
selects the window in each, and returns a Plan: download tasks (deduplicated, byte ranges merged
into runs) plus the rendered text of every output playlist. The Plan is plain JSON so the job
store keeps it; workers run its tasks in chunks and the finalizer writes its playlists.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from harvest.domain.registry import Endpoint
from harvest.domain.urlpolicy import same_origin
from harvest.engine.layout import (
    FolderNames,
    KeyAllocator,
    Layout,
    content_type,
    layout_for,
    media_extension,
    relative_uri,
    sniff_extension,
    stored_name,
    url_basename,
)
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
from harvest.hls.parse import DEFAULT_LIMITS, ParseLimits, is_master, parse_master, parse_media, unquote
from harvest.hls.render import render_master, render_media, target_duration
from harvest.hls.window import Window, align_to, overlapping_dateranges, select_window
from harvest.ports import Origin
from harvest.settings import Settings

PLAN_FORMAT = 1
AES_KEY_BYTES = 16  # §5.2: an AES-128 key file is exactly 16 octets
MAX_PLAN_TASKS = 1_000_000  # 24 h of 2 s segments in 20 renditions is 864,000
MAX_WARNINGS = 20  # warnings kept in a plan; the rest are counted
SNIFF_BYTES = 189  # a TS packet and the next sync byte: enough to tell TS, fMP4, WebVTT, packed audio


@dataclass(frozen=True)
class PlanLimits:
    """Caps on what one job may plan (settings HARVEST_PLAYLIST_MAX_*, HARVEST_MAX_*)."""

    parse: ParseLimits = DEFAULT_LIMITS
    max_tasks: int = MAX_PLAN_TASKS

    @classmethod
    def from_settings(cls, settings: Settings) -> PlanLimits:
        parse = ParseLimits(
            max_chars=settings.playlist_max_chars,
            max_lines=settings.playlist_max_lines,
            max_variants=settings.max_variants,
            max_renditions=settings.max_renditions,
        )
        return cls(parse=parse, max_tasks=settings.max_plan_tasks)


class DestinationLike(Protocol):
    """Where the asset goes: a bucket and a key prefix (harvest.domain.destination satisfies it)."""

    @property
    def bucket(self) -> str: ...

    @property
    def prefix(self) -> str: ...


@dataclass(frozen=True)
class Plan:
    """Download tasks and output playlists of one job.

    A task is a dict: url, key (object key in `bucket`), range ([offset, length] or None), size
    (expected bytes or None when the origin alone knows), name (for error messages), content_type,
    counts (True when it holds media segments, False for init sections and keys).
    """

    bucket: str
    master_key: str
    playlists: dict[str, str]  # object key -> text; the master is at `master_key`
    tasks: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # malformed tags outside the window, etc.

    @property
    def segment_count(self) -> int:
        return sum(1 for task in self.tasks if task.get("counts", True))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "bucket": self.bucket,
            "master_key": self.master_key,
            "playlists": dict(self.playlists),
            "tasks": [dict(task) for task in self.tasks],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            bucket=str(data["bucket"]),
            master_key=str(data["master_key"]),
            playlists={str(k): str(v) for k, v in data["playlists"].items()},
            tasks=[dict(task) for task in data["tasks"]],
            warnings=[str(w) for w in data.get("warnings", ())],
        )

    def chunks(self, max_tasks: int, max_bytes: int) -> list[list[dict[str, Any]]]:
        """Split the tasks, in order, into chunks of at most `max_tasks` tasks and `max_bytes` known bytes.

        Deterministic (the same plan always splits the same way); a single task larger than
        `max_bytes` gets a chunk of its own. Tasks of unknown size count 0 bytes.
        """
        max_tasks = max(1, max_tasks)
        chunks: list[list[dict[str, Any]]] = []
        current: list[dict[str, Any]] = []
        current_bytes = 0
        for task in self.tasks:
            size = task.get("size") or 0
            if current and (len(current) >= max_tasks or current_bytes + size > max_bytes):
                chunks.append(current)
                current, current_bytes = [], 0
            current.append(task)
            current_bytes += size
        if current:
            chunks.append(current)
        return chunks


# --- playlist URLs ------------------------------------------------------------------------------


def playlist_url(url: str, timeshift_query: str, start: float, end: float) -> str:
    """`url` with the endpoint's time-shift query (`{start}`/`{end}` as epoch ints) appended.

    The window is widened to whole seconds (floor/ceil) so the origin never cuts it short. A URL
    that already carries every parameter of the query (a child URI copied from a time-shifted
    master, say) is left alone.
    """
    if not timeshift_query:
        return url
    try:
        query = timeshift_query.format(start=math.floor(start), end=math.ceil(end))
    except (KeyError, IndexError, ValueError) as exc:
        raise PlaylistError(
            f"endpoint timeshift_query {timeshift_query!r} is not valid:"
            " it may only use {start} and {end}"
        ) from exc
    parts = urlsplit(url)
    have = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    want = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
    if want and want <= have:
        return url
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


# --- renditions ---------------------------------------------------------------------------------

MAIN, SUBTITLES, IFRAME = "main", "subtitles", "iframe"


@dataclass(frozen=True)
class _Rendition:
    name: str  # folder name
    url: str  # absolute source URL, as the master names it
    kind: str  # MAIN shares one target duration; SUBTITLES and IFRAME keep their own (§6.2.4)


@dataclass(frozen=True)
class _Clip:
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


# --- tasks --------------------------------------------------------------------------------------


@dataclass
class _Run:
    offset: int
    end: int
    key: str = ""
    counts: bool = False


@dataclass
class _Resource:
    """Everything the renditions need from one source URL."""

    url: str
    folder: str  # the first rendition that needs it stores it
    ext: str  # the media's extension, for the stored name of byte-range runs
    whole_name: str | None = None  # set once any rendition needs the whole file
    whole_counts: bool = False
    ranges: list[tuple[int, int, bool]] = field(default_factory=list)  # (offset, end, is media)
    whole_key: str | None = None
    runs: list[_Run] = field(default_factory=list)
    run_starts: list[int] = field(default_factory=list)


class _TaskBook:
    """Collects needs across renditions, then assigns keys and emits one task per object."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.resources: dict[str, _Resource] = {}
        self.keys: dict[str, str] = {}  # key file URL -> object key (copy_keys only)
        self.allocator = KeyAllocator()
        self.tasks: list[dict[str, Any]] = []

    def need(
        self, url: str, byterange: ByteRange | None, folder: str, filename: str, media: bool, ext: str
    ) -> None:
        resource = self.resources.get(url)
        if resource is None:
            resource = self.resources[url] = _Resource(url=url, folder=folder, ext=ext)
        if byterange is None:
            if resource.whole_name is None:
                resource.whole_name, resource.folder = filename, folder
            resource.whole_counts = resource.whole_counts or media
        else:
            resource.ranges.append((byterange.offset, byterange.end, media))

    def need_key(self, url: str) -> None:
        if url not in self.keys:
            self.keys[url] = f"{self.layout.keys_folder}{len(self.keys)}.key"

    def assign(self) -> None:
        for resource in self.resources.values():
            if resource.whole_name is not None:
                self._whole(resource, resource.whole_name)
            else:
                self._ranged(resource)
        for url, key in self.keys.items():
            self.allocator.claim("", key)
            self._task(url, key, None, AES_KEY_BYTES, counts=False)

    def _whole(self, resource: _Resource, filename: str) -> None:
        # Any byte ranges into a file that is also stored whole point into that one object.
        key = self.allocator.claim(resource.folder, filename)
        resource.whole_key = key
        media = resource.whole_counts or any(is_media for _, _, is_media in resource.ranges)
        self._task(resource.url, key, None, None, counts=media)

    def _ranged(self, resource: _Resource) -> None:
        runs: list[_Run] = []
        for offset, end, media in sorted(resource.ranges):
            if runs and offset <= runs[-1].end:  # touching or overlapping: one contiguous run
                runs[-1].end = max(runs[-1].end, end)
                runs[-1].counts = runs[-1].counts or media
            else:
                runs.append(_Run(offset=offset, end=end, counts=media))
        basename = stored_name(resource.url, resource.ext)
        stem, dot, ext = basename.rpartition(".")
        for run in runs:
            # One run keeps the source's name; several are told apart by where they start.
            if len(runs) == 1:
                filename = basename
            else:
                filename = f"{stem}_{run.offset}.{ext}" if dot else f"{basename}_{run.offset}"
            run.key = self.allocator.claim(resource.folder, filename)
            length = run.end - run.offset
            self._task(resource.url, run.key, (run.offset, length), length, run.counts)
        resource.runs = runs
        resource.run_starts = [run.offset for run in runs]

    def _task(self, url: str, key: str, rng: tuple[int, int] | None, size: int | None, counts: bool) -> None:
        name = key[len(self.layout.root) :] if key.startswith(self.layout.root) else key
        if rng is not None:
            name += f" (bytes {rng[0]}-{rng[0] + rng[1] - 1} of {url_basename(url)})"
        self.tasks.append(
            {
                "url": url,
                "key": key,
                "range": [rng[0], rng[1]] if rng is not None else None,
                "size": size,
                "name": name,
                "content_type": content_type(key),
                "counts": counts,
            }
        )

    def locate(self, url: str, byterange: ByteRange | None) -> tuple[str, ByteRange | None]:
        """The stored object holding (url, byterange), and the range re-based to that object."""
        resource = self.resources[url]
        if resource.whole_key is not None:
            return resource.whole_key, byterange
        assert byterange is not None  # a resource without a whole-file need has only ranges
        run = resource.runs[bisect.bisect_right(resource.run_starts, byterange.offset) - 1]
        return run.key, ByteRange(byterange.length, byterange.offset - run.offset)


class _Locator:
    """Output URIs for one playlist stored in `folder` (see hls.render.Locator)."""

    def __init__(self, book: _TaskBook, folder: str) -> None:
        self.book = book
        self.folder = folder
        self.prefixes: dict[str, str] = {}  # object folder -> its relative path from `folder`

    def relative(self, key: str) -> str:
        # posixpath.relpath costs ~15 us; an I-frame playlist pointing into another rendition's
        # folder would pay it per segment, so the answer is kept per object folder.
        folder, _, name = key.rpartition("/")
        prefix = self.prefixes.get(folder)
        if prefix is None:
            probe = f"{folder}/x" if folder else "x"
            prefix = self.prefixes[folder] = relative_uri(probe, self.folder)[:-1]
        return prefix + name

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
    book: _TaskBook, clip: _Clip, folder: str, copy_keys: bool, sniff: Callable[[Segment], str]
) -> None:
    """Record every object the clip needs. Names: see _segment_extension."""
    window = clip.window
    context = "vtt" if clip.rendition.kind == SUBTITLES else ""
    seen_maps: set[InitSection] = set()
    seen_keys: set[tuple[Key, ...]] = set()
    unnamed: str | None = None  # the extension found for segments whose URI does not say
    for segment in window.segments:
        init = segment.map
        if init is not None and init not in seen_maps:
            seen_maps.add(init)
            init_ext = media_extension(init.uri) or "mp4"
            book.need(init.uri, init.byterange, folder, stored_name(init.uri, init_ext), False, init_ext)
            if copy_keys and init.keys not in seen_keys:
                seen_keys.add(init.keys)
                for key in init.keys:
                    if _copyable(key):
                        book.need_key(key.uri or "")
        if copy_keys and segment.keys and segment.keys not in seen_keys:
            seen_keys.add(segment.keys)
            for key in segment.keys:
                if _copyable(key):
                    book.need_key(key.uri or "")
        if segment.gap:
            continue  # §4.4.4.7 (bis): a GAP segment has no media and must not be fetched
        ext = media_extension(segment.uri)
        if not ext:
            if segment.map is not None:
                ext = "m4s"
            elif context:
                ext = context
            else:
                if unnamed is None:
                    unnamed = sniff(segment)
                ext = unnamed
        book.need(segment.uri, segment.byterange, folder, f"{segment.msn}.{ext}", True, ext)


# --- the planner --------------------------------------------------------------------------------


def build_plan(
    origin: Origin,
    endpoint: Endpoint,
    start: float,
    end: float,
    destination: DestinationLike,
    manifest: str,
    now: float,
    copy_keys: bool = False,
    pdt_fallback: bool = True,
    limits: PlanLimits = PlanLimits(),
) -> Plan:
    """Read the endpoint's playlists and plan the VOD for [start, end) at destination/manifest.

    Every playlist request carries `endpoint.headers` and the endpoint's time-shift query. An
    endpoint URL that is a media playlist is harvested as a single rendition whose VOD media
    playlist is written at the Manifest key itself: a master would need a BANDWIDTH that cannot
    be known before the segments are downloaded.

    Times: a rendition without EXT-X-PROGRAM-DATE-TIME is aligned to the first rendition that has
    them (hls.window.align_to). With no such sibling, `pdt_fallback` places a live playlist (no
    EXT-X-ENDLIST) by its live edge: its last segment ends at `now`. Derived times choose the
    segments but are never written into the VOD.

    Malformed tags (see hls.parse) fail the job when they concern a segment inside the window and
    are returned as `Plan.warnings` otherwise.

    Raises PlaylistError (a HarvestFailure) naming the playlist or rendition when the job cannot
    produce a complete asset.
    """
    layout = layout_for(destination.prefix, manifest)
    master, playlists = _read_playlists(origin, endpoint, start, end, limits.parse)
    playlists = _place_in_time(playlists, now if pdt_fallback else None)
    warnings: list[str] = []
    clips = []
    for rendition, playlist in playlists:
        live_edge = now if pdt_fallback and not playlist.ended else None
        window = select_window(playlist, start, end, rendition.name, live_edge)
        _check_problems(window, warnings)
        clips.append(_Clip(rendition, window))
    dateranges = overlapping_dateranges(_every_daterange(clips), start, end)

    book = _TaskBook(layout)
    sniff = _Sniffer(origin, endpoint.headers)
    for clip in clips:
        _collect_needs(book, clip, layout.folder(clip.rendition.name), copy_keys, sniff)
    if copy_keys and master is not None:
        for key in master.session_keys:
            if _copyable(key):
                book.need_key(key.uri or "")
    if len(book.resources) + len(book.keys) > limits.max_tasks:
        raise PlaylistError(
            f"the window needs {len(book.resources) + len(book.keys)} downloads, more than the"
            f" {limits.max_tasks} one job may plan (the limit, HARVEST_MAX_PLAN_TASKS)"
        )
    book.assign()

    if len(warnings) > MAX_WARNINGS:
        warnings[MAX_WARNINGS:] = [f"... and {len(warnings) - MAX_WARNINGS} more"]
    return Plan(
        bucket=destination.bucket,
        master_key=layout.master_key,
        playlists=_render(master, clips, layout, book, dateranges),
        tasks=book.tasks,
        warnings=warnings,
    )


def _read_playlists(
    origin: Origin, endpoint: Endpoint, start: float, end: float, limits: ParseLimits
) -> tuple[MasterPlaylist | None, list[tuple[_Rendition, MediaPlaylist]]]:
    """The master (None when the endpoint is a media playlist) and every rendition's playlist.

    URIs resolve against the URL each playlist finally came from, after any redirect.
    """
    master_url = playlist_url(endpoint.url, endpoint.timeshift_query, start, end)
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


def _every_daterange(clips: list[_Clip]) -> list[DateRange]:
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
    clips: list[_Clip],
    layout: Layout,
    book: _TaskBook,
    dateranges: tuple[DateRange, ...],
) -> dict[str, str]:
    """Every output playlist by object key: the children, then the master."""
    # §6.2.4: one target duration for every variant and audio/video rendition; subtitles and
    # I-frame playlists may differ (each gets its own minimum).
    main_target = target_duration(clip.window for clip in clips if clip.rendition.kind == MAIN)
    if master is None:
        (clip,) = clips
        locator = _Locator(book, layout.master_folder)
        return {layout.master_key: render_media(clip.window, locator, main_target, dateranges)}
    playlists: dict[str, str] = {}
    for clip in clips:
        name = clip.rendition.name
        target = main_target if clip.rendition.kind == MAIN else None
        locator = _Locator(book, layout.folder(name))
        playlists[layout.playlist_key(name)] = render_media(clip.window, locator, target, dateranges)
    uris = {
        clip.rendition.url: relative_uri(layout.playlist_key(clip.rendition.name), layout.master_folder)
        for clip in clips
    }
    playlists[layout.master_key] = render_master(master, uris, _Locator(book, layout.master_folder).key)
    return playlists
