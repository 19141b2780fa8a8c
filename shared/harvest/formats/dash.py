"""The DASH format: read a live (dynamic) MPD, write a static MPD of exactly the stored segments.

The reader places every Representation's segments on the wall clock (formats.mpd) and keeps those
whose [start, end) overlaps [StartTime, EndTime), the rule HLS uses; a window edge that crosses a
Period boundary keeps both Periods. The writer copies the MPD's elements unchanged (Role,
Accessibility, Label, lang, ContentProtection with its PSSH, InbandEventStream, ...) and replaces
only what made it live: the MPD becomes type="static" with a mediaPresentationDuration, BaseURLs,
UTCTiming and Location go, each Representation gets a SegmentTemplate (or, when the stored names
cannot be templated, a SegmentList) with a SegmentTimeline of the stored segments, by relative URL.
EventStream events outside the window are dropped.
"""

from __future__ import annotations

import copy
import itertools
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

from harvest.domain.urlpolicy import same_origin
from harvest.engine.context import PlanContext, playlist_url
from harvest.engine.layout import FolderNames, Layout, media_extension, stored_name
from harvest.engine.tasks import ObjectLocator, TaskBook
from harvest.errors import PlaylistError, WindowNotCovered
from harvest.formats.mpd import (
    NS,
    SEGMENT_INFO,
    MediaSegment,
    PeriodInfo,
    Track,
    TrackSource,
    base_url,
    format_duration,
    parse_mpd,
    periods,
    q,
    track_segments,
    utc_timing,
)
from harvest.hls.window import EDGE_EPSILON

NAME = "DASH"
EXTENSION = ".mpd"
CONTENT_TYPE = "application/dash+xml"
_DROPPED_MPD_ATTRIBUTES = (
    "availabilityStartTime",
    "minimumUpdatePeriod",
    "timeShiftBufferDepth",
    "suggestedPresentationDelay",
    "publishTime",
    "availabilityEndTime",
)
_DROPPED_MPD_CHILDREN = ("BaseURL", "Location", "PatchLocation", "UTCTiming")
_PREFIXES = {
    "": NS,
    "cenc": "urn:mpeg:cenc:2013",
    "mspr": "urn:microsoft:playready",
    "xlink": "http://www.w3.org/1999/xlink",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "scte35": "http://www.scte.org/schemas/35/2016",
}
_TEXT_EXTENSIONS = {"text/vtt": "vtt", "application/ttml+xml": "ttml"}


@dataclass
class KeptTrack:
    track: Track
    folder: str
    segments: list[MediaSegment]


@dataclass
class DashReading:
    url: str
    root: ET.Element
    periods: list[PeriodInfo]
    kept: list[KeptTrack]
    start: float
    end: float
    warnings: list[str] = field(default_factory=list)

    def write(self, book: TaskBook, layout: Layout, manifest_key: str) -> dict[str, str]:
        return {manifest_key: _write(self, book, manifest_key)}


# --- the reader ---------------------------------------------------------------------------------


def read(ctx: PlanContext, url: str, book: TaskBook) -> DashReading:
    """Read the MPD at `url`, keep the segments of [ctx.start, ctx.end), tell `book` what to download."""
    endpoint = ctx.endpoint
    # The time-shift query, like the headers, is the endpoint's: never sent to another host.
    query = endpoint.timeshift_query if same_origin(url, endpoint.url) else ""
    fetched = ctx.origin.get_playlist(playlist_url(url, query, ctx.start, ctx.end), endpoint.headers)
    root = parse_mpd(fetched.text, fetched.url)
    warnings: list[str] = []
    clock, note = utc_timing(root, lambda u: ctx.origin.get_text(u, endpoint.headers))
    if note:
        warnings.append(f"MPD {fetched.url}: {note}")
    now = clock if clock is not None else ctx.now
    every_period = periods(root, fetched.url)
    by_rep, kept = _keep_tracks(ctx, fetched.url, root, every_period, now, warnings)
    if not kept:
        raise WindowNotCovered(f"MPD {fetched.url} has no Period in the window")
    for rep_id, segments in by_rep.items():
        _check_coverage(fetched.url, rep_id, segments, ctx.start, ctx.end, now)
    for item in kept:
        _collect_needs(book, item)
    return DashReading(fetched.url, root, every_period, kept, ctx.start, ctx.end, warnings)


def _keep_tracks(
    ctx: PlanContext,
    mpd_url: str,
    root: ET.Element,
    every_period: list[PeriodInfo],
    now: float,
    warnings: list[str],
) -> tuple[dict[str, list[MediaSegment]], list[KeptTrack]]:
    """Each Representation's segments in the window (by id, over every Period), and the tracks
    (one Representation in one Period) that have any: those are downloaded and written."""
    mpd_base = base_url(mpd_url, [root], warnings)

    def fetch_range(media_url: str, span: tuple[int, int]) -> bytes:
        return ctx.origin.get_bytes(media_url, ctx.endpoint.headers, span)

    folders = _Folders()
    by_rep: dict[str, list[MediaSegment]] = {}
    kept: list[KeptTrack] = []
    for period in every_period:
        if not _overlaps(period.start, period.end, ctx.start, ctx.end):
            continue
        period_base = base_url(mpd_base, [period.element], warnings)
        for adaptation in period.element.findall(q("AdaptationSet")):
            adaptation_base = base_url(period_base, [adaptation], warnings)
            for rep in adaptation.findall(q("Representation")):
                rep_id = rep.get("id", "")
                period_id = period.element.get("id", str(period.index))
                where = f"MPD {mpd_url} Period {period_id} Representation {rep_id!r}"
                base = base_url(adaptation_base, [rep], warnings)
                source = TrackSource(base, period, adaptation, rep, now, (ctx.start, ctx.end), where)
                found = track_segments(source, fetch_range)
                chosen = [s for s in found.segments if _overlaps(s.start, s.end, ctx.start, ctx.end)]
                by_rep.setdefault(rep_id, []).extend(chosen)
                if chosen:  # a Representation with nothing in this Period's part of the window is left out
                    track = Track(
                        period.index, adaptation, rep, rep_id, found.init, tuple(chosen),
                        found.timescale, found.pto, found.sidecar,
                    )  # fmt: skip
                    kept.append(KeptTrack(track, folders.of(adaptation, rep), chosen))
    return by_rep, kept


def _overlaps(begin: float, end: float | None, start: float, stop: float) -> bool:
    """[begin, end) meets the window [start, stop) by more than the edge tolerance (end None: open)."""
    return begin < stop - EDGE_EPSILON and (end is None or end > start + EDGE_EPSILON)


class _Folders:
    """One folder per Representation id, named <contentType>_<id>, for every Period it appears in."""

    def __init__(self) -> None:
        self.names = FolderNames()
        self.folders: dict[str, str] = {}

    def of(self, adaptation: ET.Element, rep: ET.Element) -> str:
        rep_id = rep.get("id", "")
        if rep_id not in self.folders:
            mime = adaptation.get("mimeType") or rep.get("mimeType") or "media"
            kind = adaptation.get("contentType") or mime.split("/")[0]
            self.folders[rep_id] = self.names.unique(f"{kind}_{rep_id}")
        return self.folders[rep_id]


def _check_coverage(
    url: str, rep_id: str, segments: list[MediaSegment], start: float, end: float, now: float
) -> None:
    if not segments:
        raise WindowNotCovered(f"MPD {url}: Representation {rep_id!r} has no segment in the window")
    tolerance = max(s.end - s.start for s in segments)
    if segments[0].start - start > tolerance:
        raise PlaylistError(
            f"MPD {url}: Representation {rep_id!r} does not cover the window:"
            f" {segments[0].start - start:.1f} s missing at the start"
        )
    if end - segments[-1].end > tolerance:
        raise WindowNotCovered(
            f"MPD {url}: Representation {rep_id!r} does not cover the window:"
            f" {end - segments[-1].end:.1f} s missing at the end (the origin's clock is at {now:.3f})"
        )
    for before, after in itertools.pairwise(segments):
        if after.start - before.end > tolerance:
            raise PlaylistError(
                f"MPD {url}: Representation {rep_id!r} does not cover the window:"
                f" {after.start - before.end:.1f} s missing after segment number {before.number}"
                f" (time {before.time})"
            )


def _extension(item: KeptTrack, url: str) -> str:
    mime = item.track.representation.get("mimeType") or item.track.adaptation.get("mimeType") or ""
    if mime in _TEXT_EXTENSIONS:
        return media_extension(url) or _TEXT_EXTENSIONS[mime]
    # A segment is an fMP4 fragment even when it is a byte range of an .mp4 (SegmentBase).
    return "m4s" if media_extension(url) in ("", "mp4") else media_extension(url)


def _collect_needs(book: TaskBook, item: KeptTrack) -> None:
    folder = book.layout.folder(item.folder)
    if item.track.init is not None:
        init_url, init_range = item.track.init
        ext = media_extension(init_url) or "mp4"
        book.need(init_url, init_range, folder, f"init.{ext}", False, ext, separate=True)
    for segment in item.segments:
        ext = _extension(item, segment.url)
        # Segments are named by number (a SegmentTemplate can address them); a sidecar keeps its name.
        name = stored_name(segment.url, ext) if item.track.sidecar else f"{segment.number}.{ext}"
        book.need(segment.url, segment.byterange, folder, name, True, ext, separate=True)


# --- the writer ---------------------------------------------------------------------------------


def _write(reading: DashReading, book: TaskBook, manifest_key: str) -> str:
    folder = posixpath.dirname(manifest_key)
    locator = ObjectLocator(book, f"{folder}/" if folder else "")
    root = copy.deepcopy(reading.root)
    for name in _DROPPED_MPD_ATTRIBUTES:
        root.attrib.pop(name, None)
    _remove_children(root, _DROPPED_MPD_CHILDREN)
    root.set("type", "static")
    root.set("minBufferTime", reading.root.get("minBufferTime", "PT2S"))
    origin = min(s.start for item in _timed(reading.kept) for s in item.segments)
    _remove_children(root, ("Period",))
    out_periods = _kept_periods(reading)
    last_end = origin
    for i, (info, items, begin, finish) in enumerate(out_periods):
        following = out_periods[i + 1][2] if i + 1 < len(out_periods) else finish
        period = _period(info, items, begin, following, origin, reading, locator)
        root.append(period)
        last_end = following
    # The schema wants Periods before Metrics, EssentialProperty, ...: move those after them.
    for child in list(root):
        if child.tag in (
            q("Metrics"),
            q("EssentialProperty"),
            q("SupplementalProperty"),
            q("LeapSecondInformation"),
        ):
            root.remove(child)
            root.append(child)
    root.set("mediaPresentationDuration", format_duration(last_end - origin))
    return serialise(root)


def _kept_periods(reading: DashReading) -> list[tuple[PeriodInfo, list[KeptTrack], float, float]]:
    """(Period, its kept tracks, where its kept part begins and ends) for each Period with any."""
    kept_by_period: dict[int, list[KeptTrack]] = {}
    for item in reading.kept:
        kept_by_period.setdefault(item.track.period, []).append(item)
    out_periods = []
    for info in reading.periods:
        items = kept_by_period.get(info.index)
        if not items:
            continue
        begin = max(info.start, min(item.segments[0].start for item in _timed(items)))
        finish = max(item.segments[-1].end for item in _timed(items))
        out_periods.append((info, items, begin, finish))
    return out_periods


def _remove_children(element: ET.Element, tags: Iterable[str]) -> None:
    """Remove `element`'s direct children with these (DASH-namespace) tags."""
    for tag in tags:
        for child in element.findall(q(tag)):
            element.remove(child)


def serialise(root: ET.Element) -> str:
    """The MPD as UTF-8 XML text, DASH's namespace as the default one."""
    for prefix, uri in _PREFIXES.items():
        ET.register_namespace(prefix, uri)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _period(
    info: PeriodInfo,
    items: list[KeptTrack],
    begin: float,
    end: float,
    origin: float,
    reading: DashReading,
    locator: ObjectLocator,
) -> ET.Element:
    period = copy.deepcopy(info.element)
    _remove_children(period, ("BaseURL", *SEGMENT_INFO))
    period.set("start", format_duration(begin - origin))
    period.set("duration", format_duration(end - begin))
    for stream in period.findall(q("EventStream")):
        _clip_events(stream, info.start, begin, reading.start, reading.end)
    wanted = {(id(item.track.adaptation), item.track.rep_id): item for item in items}
    source_sets = info.element.findall(q("AdaptationSet"))
    for source, adaptation in zip(source_sets, period.findall(q("AdaptationSet")), strict=True):
        _remove_children(adaptation, ("BaseURL", *SEGMENT_INFO))
        for rep in adaptation.findall(q("Representation")):
            item = wanted.get((id(source), rep.get("id", "")))
            if item is None:
                adaptation.remove(rep)
            else:
                _address_segments(rep, item, info.start, begin, locator)
        if adaptation.find(q("Representation")) is None:
            period.remove(adaptation)  # nothing of it in this part of the window
    return period


def _address_segments(
    rep: ET.Element, item: KeptTrack, period_start: float, begin: float, locator: ObjectLocator
) -> None:
    """Replace the Representation's own addressing by the stored objects' (its kept segments)."""
    _remove_children(rep, ("BaseURL", *SEGMENT_INFO))
    if item.track.sidecar:
        # One file for the whole Period (a sidecar subtitle track): a BaseURL, as in the source.
        (segment,) = item.segments
        base = ET.Element(q("BaseURL"))
        base.text = locator.located(segment.url, None)[0]
        subs = rep.findall(q("SubRepresentation"))
        rep.insert(list(rep).index(subs[0]) if subs else len(rep), base)
    else:
        rep.append(segment_info(item, period_start, begin, locator))


def _timed(items: list[KeptTrack]) -> list[KeptTrack]:
    """The items whose segments place the VOD in time (a sidecar file spans its whole Period)."""
    return [item for item in items if not item.track.sidecar] or items


def _clip_events(stream: ET.Element, period_start: float, begin: float, start: float, end: float) -> None:
    timescale = int(stream.get("timescale", "1"))
    pto = int(stream.get("presentationTimeOffset", "0"))
    for event in stream.findall(q("Event")):
        at = period_start + (int(event.get("presentationTime", "0")) - pto) / timescale
        length = int(event.get("duration", "0")) / timescale
        if not (at < end and (at + length > start or (length == 0 and at >= start))):
            stream.remove(event)
    # Keep every event's presentationTime as it was: move the offset by where the Period now begins.
    stream.set("presentationTimeOffset", str(pto + round((begin - period_start) * timescale)))


def segment_info(item: KeptTrack, period_start: float, begin: float, locator: ObjectLocator) -> ET.Element:
    track = item.track
    pto = track.pto + round((begin - period_start) * track.timescale)
    located = [locator.located(s.url, s.byterange) for s in item.segments]
    init = locator.located(*track.init) if track.init is not None else None
    first = item.segments[0].number
    names = [uri for uri, _ in located]
    ext = names[0].rpartition(".")[2]
    stem = names[0].rpartition("/")[0]
    templated = (
        all(rng is None and uri == f"{stem}/{first + i}.{ext}" for i, (uri, rng) in enumerate(located))
        and (init is None or init[1] is None)
        and "$" not in "".join(names)
    )
    attributes = {"timescale": str(track.timescale), "presentationTimeOffset": str(pto)}
    if templated:
        element = ET.Element(q("SegmentTemplate"), attributes)
        element.set("startNumber", str(first))
        element.set("media", f"{stem}/$Number$.{ext}" if stem else f"$Number$.{ext}")
        if init is not None:
            element.set("initialization", init[0])
        element.append(_timeline(item.segments))
        return element
    element = ET.Element(q("SegmentList"), attributes)
    if init is not None:
        initialization = ET.SubElement(element, q("Initialization"), {"sourceURL": init[0]})
        if init[1] is not None:
            initialization.set("range", f"{init[1].offset}-{init[1].end - 1}")
    element.append(_timeline(item.segments))
    for uri, rng in located:
        url = ET.SubElement(element, q("SegmentURL"), {"media": uri})
        if rng is not None:
            url.set("mediaRange", f"{rng.offset}-{rng.end - 1}")
    return element


def _timeline(segments: list[MediaSegment]) -> ET.Element:
    """A SegmentTimeline of exactly these segments: runs of equal d folded into @r, @t where time jumps."""
    timeline = ET.Element(q("SegmentTimeline"))
    expected: int | None = None
    last: ET.Element | None = None
    for segment in segments:
        if last is not None and segment.time == expected and int(last.get("d", "0")) == segment.d:
            last.set("r", str(int(last.get("r", "0")) + 1))
        else:
            last = ET.SubElement(timeline, q("S"), {"t": str(segment.time), "d": str(segment.d)})
        expected = segment.time + segment.d
    return timeline
