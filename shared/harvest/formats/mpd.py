"""Reading a DASH MPD (ISO/IEC 23009-1): wall-clock segment lists for every Representation.

XML comes in through defusedxml (no entity expansion, no external DTD: an MPD is hostile input)
into the stdlib ElementTree. Segment addressing: SegmentTemplate with $Number$ or $Time$, with a
SegmentTimeline (@r repeats, r="-1" up to the next S, the Period's end or the live edge) or without
one (@duration, @startNumber), and SegmentList. Times: a segment with media time t in a Period that
starts at P (availabilityStartTime + Period@start) starts at P + (t - presentationTimeOffset) / timescale.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urljoin
from xml.etree import ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from harvest.domain.timeparse import document_date_time
from harvest.engine.context import MAX_PLAN_TASKS
from harvest.errors import PlaylistError
from harvest.hls.model import ByteRange

NS = "urn:mpeg:dash:schema:mpd:2011"
SEGMENT_INFO = ("SegmentBase", "SegmentList", "SegmentTemplate")
_DURATION = re.compile(
    r"^(-)?P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_IDENTIFIER = re.compile(r"\$([A-Za-z]*)(%[^$]*)?\$")
_WIDTH = re.compile(r"^%0(\d+)d$")
_UTC_DIRECT = ("urn:mpeg:dash:utc:direct:2014", "urn:mpeg:dash:utc:direct:2012")
_UTC_HTTP = (
    "urn:mpeg:dash:utc:http-iso:2014",
    "urn:mpeg:dash:utc:http-xsdate:2014",
    "urn:mpeg:dash:utc:http-iso:2012",
    "urn:mpeg:dash:utc:http-xsdate:2012",
)


def q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def parse_mpd(text: str, url: str) -> ET.Element:
    try:
        root = fromstring(text)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise PlaylistError(f"MPD {url} is not well-formed XML: {exc}") from exc
    if root.tag != q("MPD"):
        raise PlaylistError(f"MPD {url} has root element {root.tag!r}, not MPD in namespace {NS}")
    return root


def duration(text: str | None, what: str) -> float | None:
    """Seconds of an xs:duration (days, hours, minutes, seconds; years and months are refused)."""
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT"):
        raise PlaylistError(f"{what} {text!r} is not a duration this reader supports (PnDTnHnMnS)")
    sign, days, hours, minutes, seconds = match.groups()
    total = (
        float(days or 0) * 86400 + float(hours or 0) * 3600 + float(minutes or 0) * 60 + float(seconds or 0)
    )
    return -total if sign else total


def date_time(text: str, what: str) -> float:
    """Epoch seconds of an xs:dateTime; a time without a zone is UTC (DASH-IF IOP 4.7)."""
    try:
        return document_date_time(text)
    except ValueError:
        raise PlaylistError(f"{what} {text!r} is not an ISO 8601 date-time") from None


def format_duration(seconds: float) -> str:
    return f"PT{max(seconds, 0.0):.3f}S"


# --- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaSegment:
    url: str
    byterange: ByteRange | None
    start: float  # wall clock, epoch seconds
    end: float
    number: int
    time: int  # media time, in the Representation's timescale
    d: int  # duration, in the same timescale


@dataclass(frozen=True)
class Track:
    """One Representation in one Period, with every segment the MPD makes available."""

    period: int  # index among the MPD's Periods
    adaptation: ET.Element
    representation: ET.Element
    rep_id: str
    init: tuple[str, ByteRange | None] | None
    segments: tuple[MediaSegment, ...]
    timescale: int
    pto: int
    sidecar: bool = False  # no segment information: the Representation is one file at its BaseURL


@dataclass(frozen=True)
class PeriodInfo:
    index: int
    element: ET.Element
    start: float  # wall clock
    end: float | None  # None: open (the live Period)


# --- the clock ----------------------------------------------------------------------------------


def utc_timing(root: ET.Element, fetch: Callable[[str], str]) -> tuple[float | None, str | None]:
    """The origin's clock from UTCTiming (direct or HTTP ISO/xs:dateTime), and the first scheme not used.

    Returns (epoch seconds or None, a warning or None).
    """
    skipped = None
    for element in root.findall(q("UTCTiming")):
        scheme, value = element.get("schemeIdUri", ""), element.get("value", "")
        if scheme in _UTC_DIRECT:
            return date_time(value, "UTCTiming"), None
        if scheme in _UTC_HTTP:
            url = value.split()[0]
            return date_time(fetch(url), f"UTCTiming answer of {url}"), None
        skipped = skipped or f"UTCTiming scheme {scheme} is not supported; the local clock is used"
    return None, skipped


def periods(root: ET.Element, url: str) -> list[PeriodInfo]:
    """Every Period on the wall clock (availabilityStartTime + Period@start, or the previous end)."""
    ast_text = root.get("availabilityStartTime")
    if ast_text is None:
        if root.get("type", "static") == "dynamic":
            raise PlaylistError(
                f"MPD {url} is dynamic but has no availabilityStartTime:"
                " it cannot be placed on the wall clock"
            )
        raise PlaylistError(
            f"MPD {url} has no availabilityStartTime: its Periods cannot be placed on the wall clock"
        )
    ast = date_time(ast_text, f"MPD {url} availabilityStartTime")
    elements = root.findall(q("Period"))
    found: list[PeriodInfo] = []
    previous_end: float | None = ast
    for i, element in enumerate(elements):
        if element.get("{http://www.w3.org/1999/xlink}href"):
            raise PlaylistError(
                f"MPD {url}: Period {i} is remote (xlink:href), which this reader does not resolve"
            )
        start = duration(element.get("start"), f"Period {i} start")
        if start is not None:
            begin = ast + start
        elif previous_end is not None:
            begin = previous_end
        else:
            raise PlaylistError(f"MPD {url}: Period {i} has no start and the Period before it no duration")
        length = duration(element.get("duration"), f"Period {i} duration")
        end = begin + length if length is not None else None
        if found and found[-1].end is None:
            found[-1] = PeriodInfo(found[-1].index, found[-1].element, found[-1].start, begin)
        found.append(PeriodInfo(i, element, begin, end))
        previous_end = end
    if not found:
        raise PlaylistError(f"MPD {url} has no Period")
    mpd_length = duration(root.get("mediaPresentationDuration"), "mediaPresentationDuration")
    if found[-1].end is None and mpd_length is not None:
        found[-1] = PeriodInfo(found[-1].index, found[-1].element, found[-1].start, ast + mpd_length)
    return found


# --- addressing ---------------------------------------------------------------------------------


def base_url(base: str, elements: list[ET.Element], warnings: list[str]) -> str:
    """`base` resolved through the first BaseURL of each element in turn (MPD, Period, AdaptationSet, ...)."""
    for element in elements:
        found = element.findall(q("BaseURL"))
        if len(found) > 1:
            warnings.append(
                f"several BaseURLs under {element.tag.rpartition('}')[2]};"
                f" the first, {(found[0].text or '').strip()!r}, is used"
            )
        if found:
            base = urljoin(base, (found[0].text or "").strip())
    return base


def _merged(
    elements: list[ET.Element], tag: str
) -> tuple[dict[str, str], ET.Element | None, ET.Element | None]:
    """Attributes of `tag` down the hierarchy (inner wins), its SegmentTimeline, its innermost element."""
    attributes: dict[str, str] = {}
    timeline = innermost = None
    for element in elements:
        info = element.find(q(tag))
        if info is not None:
            attributes.update(info.attrib)
            innermost = info
            timeline = (
                info.find(q("SegmentTimeline")) if info.find(q("SegmentTimeline")) is not None else timeline
            )
    return attributes, timeline, innermost


def expand(template: str, rep: ET.Element, rep_id: str, where: str, number: int = 0, time: int = 0) -> str:
    """A SegmentTemplate URL with its identifiers replaced (§5.3.9.4.4); unsupported ones are refused."""
    values: dict[str, str | int] = {
        "RepresentationID": rep_id,
        "Number": number,
        "Time": time,
        "Bandwidth": rep.get("bandwidth", "0"),
    }

    def one(match: re.Match[str]) -> str:
        name, tag = match[1], match[2]
        if name == "" and tag is None:
            return "$"
        if name not in values:
            raise PlaylistError(
                f"{where}: SegmentTemplate identifier ${name}{tag or ''}$ is not supported "
                " (known: $RepresentationID$, $Number$, $Time$, $Bandwidth$)"
            )
        if tag is None:
            return str(values[name])
        width = _WIDTH.match(tag)
        if width is None or name == "RepresentationID":
            raise PlaylistError(
                f"{where}: SegmentTemplate format tag {tag!r} on ${name}$ is not supported"
                " (only %0<width>d on $Number$, $Time$, $Bandwidth$)"
            )
        return str(int(values[name])).zfill(int(width[1]))

    return _IDENTIFIER.sub(one, template)


def _entries(timeline: ET.Element, limit: int | None, where: str) -> Iterator[tuple[int, int, int]]:
    """(t, d, count) of each S element: `count` segments of d from t; r="-1" repeats until the
    next S or `limit`. Repeats are never expanded here: r="2000000000" is one tuple."""
    entries = timeline.findall(q("S"))
    t = 0
    for i, s in enumerate(entries):
        try:
            t = int(s.get("t", t))
            d = int(s.get("d", "0"))
            r = int(s.get("r", "0"))
        except ValueError:
            raise PlaylistError(
                f"{where}: SegmentTimeline S element {i} has a non-integer t, d or r"
            ) from None
        if d <= 0:
            raise PlaylistError(f"{where}: SegmentTimeline S element {i} has d={d}")
        if r < 0:
            following = entries[i + 1].get("t") if i + 1 < len(entries) else None
            until = int(following) if following is not None else limit
            if until is None:
                raise PlaylistError(
                    f'{where}: SegmentTimeline r="-1" in the last S of a Period without an end'
                )
            r = max(0, math.ceil((until - t) / d) - 1)
        yield t, d, r + 1
        t += d * (r + 1)


def _timeline(timeline: ET.Element, limit: int | None, where: str) -> Iterator[tuple[int, int]]:
    """(t, d) of every segment a SegmentTimeline lists, in order (SegmentList: as many as its URLs)."""
    for t, d, count in _entries(timeline, limit, where):
        for k in range(count):
            yield t + k * d, d


def _timeline_near(
    timeline: ET.Element, limit: int, where: str, low: int, high: int, most: int
) -> tuple[list[tuple[int, int]], int]:
    """(t, d) of the segments that meet [low, high) in media time, with one more on each side, and
    the index of the first among all the timeline's ($Number$ counts from it).

    Found by arithmetic on each S element, never by walking its repeats: a hostile r="2000000000"
    costs nothing, and more than `most` segments near the window are refused before any is listed.
    """
    near: list[tuple[int, int]] = []
    first, index = 0, 0
    for t, d, count in _entries(timeline, limit, where):
        # Segment k covers [t + k*d, t + (k+1)*d): those from just before `low` to just after `high`.
        begin = 0 if near else max(0, (low - t) // d - 1)
        stop = min(count, -(-(high - t) // d) + 1)
        if begin < stop:
            if not near:
                first = index + begin
            if len(near) + stop - begin > most:
                raise PlaylistError(_too_many(where, len(near) + stop - begin, most))
            near.extend((t + k * d, d) for k in range(begin, stop))
        index += count
        if stop < count:
            break  # the window ends inside this S: nothing after it is near
    return near, first


def _too_many(where: str, count: int, most: int) -> str:
    return (
        f"{where}: {count} segments in the window, more than the {most} one job may plan"
        " (the limit, HARVEST_MAX_PLAN_TASKS)"
    )


@dataclass(frozen=True)
class TrackSource:
    """Where one Representation of one Period is, and how far the origin's clock has come."""

    base: str  # the resolved BaseURL chain
    period: PeriodInfo
    adaptation: ET.Element
    representation: ET.Element
    now: float
    window: tuple[float, float]
    where: str  # "MPD <url> Period <id> Representation <id>", for errors
    most: int = MAX_PLAN_TASKS  # segments one Representation may list near the window

    @property
    def rep_id(self) -> str:
        return self.representation.get("id", "")

    @property
    def live_end(self) -> float:
        return self.now if self.period.end is None else min(self.now, self.period.end)


@dataclass(frozen=True)
class Addressing:
    init: tuple[str, ByteRange | None] | None
    segments: list[MediaSegment]  # those available at the origin's clock
    timescale: int
    pto: int
    sidecar: bool = False


FetchRange = Callable[[str, tuple[int, int]], bytes]


def track_segments(source: TrackSource, fetch_range: FetchRange) -> Addressing:
    """The segments of one Representation: SegmentTemplate, SegmentList or SegmentBase, inherited
    from the Period and AdaptationSet (attributes of inner levels win)."""
    chain = [source.period.element, source.adaptation, source.representation]
    for tag in ("SegmentTemplate", "SegmentList", "SegmentBase"):
        attributes, timeline, innermost = _merged(chain, tag)
        if innermost is None:
            continue
        timescale = _int(attributes, "timescale", "1", source.where)
        pto = _int(attributes, "presentationTimeOffset", "0", source.where)
        if timescale <= 0:
            raise PlaylistError(f"{source.where}: timescale must be positive, got {timescale}")
        clock = _Clock(source.period.start, pto, timescale)
        if tag == "SegmentTemplate":
            init, segments = _template(source, attributes, timeline, clock)
        elif tag == "SegmentList":
            init, segments = _list(source, attributes, timeline, innermost, clock)
        else:
            init, segments, clock = _indexed(source, innermost, clock, fetch_range)
            timescale, pto = clock.timescale, clock.pto
        available = [s for s in segments if s.end <= source.live_end + 1e-6]
        return Addressing(init, available, timescale, pto)
    # No segment information at all: the Representation is one file (a sidecar subtitle track).
    period = source.period
    end = period.end if period.end is not None else source.now
    whole = MediaSegment(
        source.base, None, period.start, end, 0, 0, max(1, round((end - period.start) * 1000))
    )
    return Addressing(None, [whole], 1000, 0, sidecar=True)


def _int(attributes: dict[str, str], name: str, default: str, where: str) -> int:
    try:
        return int(attributes.get(name, default))
    except ValueError:
        raise PlaylistError(f"{where}: @{name} {attributes[name]!r} is not an integer") from None


def _times(
    source: TrackSource, attributes: dict[str, str], timeline: ET.Element | None, clock: _Clock, tag: str
) -> tuple[list[tuple[int, int]], int]:
    """(t, d) of the segments near the window, and the index of the first among all the Period's."""
    limit = math.floor((source.live_end - clock.period_start) * clock.timescale) + clock.pto
    if timeline is not None:
        low = math.floor((source.window[0] - clock.period_start) * clock.timescale) + clock.pto
        high = math.ceil((source.window[1] - clock.period_start) * clock.timescale) + clock.pto
        return _timeline_near(timeline, limit, source.where, low, high, source.most)
    if "duration" not in attributes:
        raise PlaylistError(f"{source.where}: {tag} has neither a SegmentTimeline nor a duration")
    d = _int(attributes, "duration", "0", source.where)
    if d <= 0:
        raise PlaylistError(f"{source.where}: {tag} duration must be positive, got {d}")
    # Only the numbers near the window: an MPD anchored at 1970 has ~10^9 of them.
    scale = clock.timescale / d
    count = max(0, math.floor((source.live_end - clock.period_start) * scale))
    first = max(0, math.floor((source.window[0] - clock.period_start) * scale) - 1)
    stop = min(count, math.ceil((source.window[1] - clock.period_start) * scale) + 1)
    if stop - first > source.most:
        raise PlaylistError(_too_many(source.where, stop - first, source.most))
    return [(clock.pto + k * d, d) for k in range(first, stop)], first


def _template(
    source: TrackSource, attributes: dict[str, str], timeline: ET.Element | None, clock: _Clock
) -> tuple[tuple[str, ByteRange | None] | None, list[MediaSegment]]:
    rep, rep_id, where = source.representation, source.rep_id, source.where
    init_template = attributes.get("initialization")
    init = (urljoin(source.base, expand(init_template, rep, rep_id, where)), None) if init_template else None
    media = attributes.get("media")
    if media is None:
        raise PlaylistError(f"{where}: SegmentTemplate has no media attribute")
    times, first = _times(source, attributes, timeline, clock, "SegmentTemplate")
    start_number = _int(attributes, "startNumber", "1", where) + first
    segments = [
        MediaSegment(
            url=urljoin(source.base, expand(media, rep, rep_id, where, start_number + k, t)),
            byterange=None,
            start=clock(t),
            end=clock(t + d),
            number=start_number + k,
            time=t,
            d=d,
        )
        for k, (t, d) in enumerate(times)
    ]
    return init, segments


def _list(
    source: TrackSource,
    attributes: dict[str, str],
    timeline: ET.Element | None,
    innermost: ET.Element,
    clock: _Clock,
) -> tuple[tuple[str, ByteRange | None] | None, list[MediaSegment]]:
    where = source.where
    init_element = innermost.find(q("Initialization"))
    init = None
    if init_element is not None:
        init_url = urljoin(source.base, init_element.get("sourceURL", ""))
        init = (init_url, _range(init_element.get("range"), where))
    urls = innermost.findall(q("SegmentURL"))
    if timeline is not None:
        times = list(itertools.islice(_timeline(timeline, None if urls else 0, where), len(urls)))
    else:
        d = _int(attributes, "duration", "0", where)
        if d <= 0:
            raise PlaylistError(f"{where}: SegmentList has neither a SegmentTimeline nor a positive duration")
        times = [(clock.pto + k * d, d) for k in range(len(urls))]
    start_number = _int(attributes, "startNumber", "1", where)
    return init, [
        MediaSegment(
            url=urljoin(source.base, element.get("media", "") or source.base),
            byterange=_range(element.get("mediaRange"), where),
            start=clock(t),
            end=clock(t + d),
            number=start_number + k,
            time=t,
            d=d,
        )
        for k, ((t, d), element) in enumerate(zip(times, urls, strict=False))
    ]


def _indexed(
    source: TrackSource, element: ET.Element, clock: _Clock, fetch_range: FetchRange
) -> tuple[tuple[str, ByteRange | None] | None, list[MediaSegment], _Clock]:
    """SegmentBase: one file per Representation, its segments listed by the 'sidx' at @indexRange.

    Segment times are in the sidx's timescale, which becomes the track's (presentationTimeOffset
    converted to it); the returned clock places them.
    """
    where = source.where
    index = _range(element.get("indexRange"), where)
    if index is None:
        raise PlaylistError(f"{where}: SegmentBase without indexRange: its segments cannot be located")
    init_element = element.find(q("Initialization"))
    init = None
    if init_element is not None and init_element.get("range"):
        init = (
            urljoin(source.base, init_element.get("sourceURL") or source.base),
            _range(init_element.get("range"), where),
        )
    data = fetch_range(source.base, (index.offset, index.length))
    references, timescale, earliest, first_offset = parse_sidx(data, where)
    sidx_clock = _Clock(clock.period_start, round(clock.pto * timescale / clock.timescale), timescale)
    offset = index.end + first_offset  # ISO/IEC 14496-12 §8.16.3: counted from the byte after the sidx
    t = earliest
    segments = []
    for k, (size, d) in enumerate(references):
        segments.append(
            MediaSegment(source.base, ByteRange(size, offset), sidx_clock(t), sidx_clock(t + d), k, t, d)
        )
        offset += size
        t += d
    return init, segments, sidx_clock


def parse_sidx(data: bytes, where: str) -> tuple[list[tuple[int, int]], int, int, int]:
    """(referenced size, duration) per reference, timescale, earliest presentation time, first offset."""
    if len(data) < 12 or data[4:8] != b"sidx":
        raise PlaylistError(f"{where}: the bytes at indexRange are not a 'sidx' box")
    version = data[8]
    pos = 12 + 8  # reference_ID, timescale
    timescale = int.from_bytes(data[16:20], "big")
    size = 8 if version else 4
    try:
        earliest = int.from_bytes(data[pos : pos + size], "big")
        first_offset = int.from_bytes(data[pos + size : pos + 2 * size], "big")
        pos += 2 * size + 2
        count = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        references = []
        for _ in range(count):
            word = int.from_bytes(data[pos : pos + 4], "big")
            if word >> 31:
                raise PlaylistError(
                    f"{where}: the 'sidx' points to another 'sidx' (hierarchical index), not supported"
                )
            references.append((word & 0x7FFFFFFF, int.from_bytes(data[pos + 4 : pos + 8], "big")))
            pos += 12
    except IndexError:
        raise PlaylistError(f"{where}: the 'sidx' box is truncated") from None
    if pos > len(data) or timescale == 0:
        raise PlaylistError(f"{where}: the 'sidx' box is truncated or has timescale 0")
    return references, timescale, earliest, first_offset


@dataclass(frozen=True)
class _Clock:
    """Wall-clock time of a media time in one Representation of one Period."""

    period_start: float
    pto: int
    timescale: int

    def __call__(self, t: int) -> float:
        return self.period_start + (t - self.pto) / self.timescale


def _range(text: str | None, where: str) -> ByteRange | None:
    if text is None:
        return None
    first, _, last = text.partition("-")
    try:
        offset, final = int(first), int(last)
    except ValueError:
        raise PlaylistError(f"{where}: byte range {text!r} is not first-last") from None
    return ByteRange(final - offset + 1, offset)
