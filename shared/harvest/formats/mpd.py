"""Reading a DASH MPD (ISO/IEC 23009-1): wall-clock segment lists for every Representation.

XML comes in through defusedxml (no entity expansion, no external DTD: an MPD is hostile input)
into the stdlib ElementTree. Segment addressing: SegmentTemplate with $Number$ or $Time$, with a
SegmentTimeline (@r repeats, r="-1" up to the next S, the Period's end or the live edge) or without
one (@duration, @startNumber), and SegmentList. Times: a segment with media time t in a Period that
starts at P (availabilityStartTime + Period@start) starts at P + (t - presentationTimeOffset) / timescale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urljoin
from xml.etree import ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

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
_UTC_HTTP = ("urn:mpeg:dash:utc:http-iso:2014", "urn:mpeg:dash:utc:http-xsdate:2014")
_UTC_HTTP += ("urn:mpeg:dash:utc:http-iso:2012", "urn:mpeg:dash:utc:http-xsdate:2012")


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
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PlaylistError(f"{what} {text!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


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
                f"MPD {url} is dynamic but has no availabilityStartTime: it cannot be placed on the wall clock"
            )
        raise PlaylistError(
            f"MPD {url} has no availabilityStartTime: its Periods cannot be placed on the wall clock"
        )
    ast = date_time(ast_text, f"MPD {url} availabilityStartTime")
    elements = root.findall(q("Period"))
    found: list[PeriodInfo] = []
    previous_end: float | None = ast
    for i, element in enumerate(elements):
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
                f"several BaseURLs under {element.tag.rpartition('}')[2]}; the first, {(found[0].text or '').strip()!r}, is used"
            )
        if found:
            base = urljoin(base, (found[0].text or "").strip())
    return base


def _merged(
    elements: list[ET.Element], tag: str
) -> tuple[dict[str, str], ET.Element | None, ET.Element | None]:
    """Attributes of `tag` inherited down the hierarchy (inner wins), its SegmentTimeline and innermost element."""
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
    values = {
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
                f"{where}: SegmentTemplate identifier ${name}{tag or ''}$ is not supported (known: $RepresentationID$, $Number$, $Time$, $Bandwidth$)"
            )
        if tag is None:
            return str(values[name])
        width = _WIDTH.match(tag)
        if width is None or name == "RepresentationID":
            raise PlaylistError(
                f"{where}: SegmentTemplate format tag {tag!r} on ${name}$ is not supported (only %0<width>d on $Number$, $Time$, $Bandwidth$)"
            )
        return str(int(values[name])).zfill(int(width[1]))

    return _IDENTIFIER.sub(one, template)


def _timeline(timeline: ET.Element, limit: int | None, where: str) -> Iterator[tuple[int, int]]:
    """(t, d) of every segment a SegmentTimeline lists; r="-1" repeats until the next S or `limit`."""
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
        for _ in range(r + 1):
            yield t, d
            t += d


def track_segments(
    base: str,
    period: PeriodInfo,
    adaptation: ET.Element,
    rep: ET.Element,
    now: float,
    window: tuple[float, float],
    where: str,
) -> tuple[tuple[str, ByteRange | None] | None, list[MediaSegment], int, int]:
    """(init, available segments, timescale, presentationTimeOffset) of one Representation."""
    chain = [period.element, adaptation, rep]
    rep_id = rep.get("id", "")
    live_end = now if period.end is None else min(now, period.end)
    for tag in ("SegmentTemplate", "SegmentList", "SegmentBase"):
        attributes, timeline, innermost = _merged(chain, tag)
        if innermost is None:
            continue
        timescale = int(attributes.get("timescale", "1"))
        pto = int(attributes.get("presentationTimeOffset", "0"))
        start_number = int(attributes.get("startNumber", "1"))

        def wall(t: int) -> float:
            return period.start + (t - pto) / timescale

        limit = math.floor((live_end - period.start) * timescale) + pto
        if tag == "SegmentBase":
            raise PlaylistError(
                f"{where}: SegmentBase addressing (one file with an index) is not supported by this reader"
            )
        if tag == "SegmentTemplate":
            init_template = attributes.get("initialization")
            init = (urljoin(base, expand(init_template, rep, rep_id, where)), None) if init_template else None
            media = attributes.get("media")
            if media is None:
                raise PlaylistError(f"{where}: SegmentTemplate has no media attribute")
            if timeline is not None:
                times = list(_timeline(timeline, limit, where))
            else:
                if "duration" not in attributes:
                    raise PlaylistError(
                        f"{where}: SegmentTemplate has neither a SegmentTimeline nor a duration"
                    )
                d = int(attributes["duration"])
                # Only the numbers near the window: an MPD anchored at 1970 has ~10^9 of them.
                count = max(0, math.floor((live_end - period.start) * timescale / d))
                first = max(0, math.floor((window[0] - period.start) * timescale / d) - 1)
                stop = min(count, math.ceil((window[1] - period.start) * timescale / d) + 1)
                times = [(pto + k * d, d) for k in range(first, stop)]
                start_number += first
            segments = [
                MediaSegment(
                    url=urljoin(base, expand(media, rep, rep_id, where, start_number + k, t)),
                    byterange=None,
                    start=wall(t),
                    end=wall(t + d),
                    number=start_number + k,
                    time=t,
                    d=d,
                )
                for k, (t, d) in enumerate(times)
            ]
        else:
            assert innermost is not None
            init_element = innermost.find(q("Initialization"))
            init = None
            if init_element is not None:
                init = (
                    urljoin(base, init_element.get("sourceURL", "")),
                    _range(init_element.get("range"), where),
                )
            urls = innermost.findall(q("SegmentURL"))
            if timeline is not None:
                times = list(_timeline(timeline, limit, where))[: len(urls)]
            else:
                if "duration" not in attributes:
                    raise PlaylistError(f"{where}: SegmentList has neither a SegmentTimeline nor a duration")
                d = int(attributes["duration"])
                times = [(pto + k * d, d) for k in range(len(urls))]
            segments = [
                MediaSegment(
                    url=urljoin(base, element.get("media", "")),
                    byterange=_range(element.get("mediaRange"), where),
                    start=wall(t),
                    end=wall(t + d),
                    number=start_number + k,
                    time=t,
                    d=d,
                )
                for k, ((t, d), element) in enumerate(zip(times, urls, strict=False))
            ]
        available = [s for s in segments if s.end <= live_end + 1e-6]
        return init, available, timescale, pto
    # No segment information at all: the Representation is one file (a sidecar subtitle track).
    end = period.end if period.end is not None else now
    return (
        None,
        [MediaSegment(base, None, period.start, end, 0, 0, max(1, round((end - period.start) * 1000)))],
        1000,
        0,
    )


def _range(text: str | None, where: str) -> ByteRange | None:
    if text is None:
        return None
    first, _, last = text.partition("-")
    try:
        offset, final = int(first), int(last)
    except ValueError:
        raise PlaylistError(f"{where}: byte range {text!r} is not first-last") from None
    return ByteRange(final - offset + 1, offset)
