"""Live DASH MPDs for the test origin's "fmp4" channels: the same CMAF segments as their HLS playlists.

A channel with `dash=<mode>` serves /<channel>/manifest.mpd, a dynamic MPD over the pool's fMP4
segments (made by ffmpeg), in one of the addressing modes packagers use:

    "number"            SegmentTemplate media="$RepresentationID$/n$Number%06d$.m4s" @duration, no timeline
    "number-timeline"   SegmentTemplate media="$RepresentationID$/$Number$.m4s" + SegmentTimeline (@r
                        repeats): the same URLs as the HLS playlists, so a CMAF harvest shares them
    "time-timeline"     SegmentTemplate media="$RepresentationID$/t$Time$.m4s" + SegmentTimeline whose last
                        S has r="-1" (repeat up to the live edge)
    "list"              SegmentList of SegmentURLs + SegmentTimeline
    "indexed"           SegmentBase: one file per Representation and Period, $RepresentationID$/loop.mp4
                        (the init section, a 'sidx' indexing the pool's segments, the segments), found
                        through a Representation BaseURL, @indexRange and Initialization@range; every
                        Period is one loop of the pool (dash_period is the pool's size)

Segment n covers [epoch0 + n*d, epoch0 + (n+1)*d); the MPD's availabilityStartTime is epoch0 and its
timescale 1000, so segment n has media time n*d*1000. With `dash_period=P` a new Period starts every
P segments (id "p<k>", presentationTimeOffset = its first segment's media time). `dash_protection`
adds CENC, Widevine and PlayReady ContentProtection (with PSSH boxes) to the video set (the media
stays clear: only the copying is tested); `ad_breaks` become an SCTE-35 EventStream per Period.
The MPD offers the origin's clock as UTCTiming (direct).
"""

from __future__ import annotations

import base64
import struct
from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

if TYPE_CHECKING:
    from harvest.devtools.origin import _Channel

DASH_MODES = ("number", "number-timeline", "time-timeline", "list", "indexed")
INDEXED_NAME = "loop.mp4"
TIMESCALE = 1000
DEFAULT_KID = "10000000-1000-1000-1000-100000000001"
WIDEVINE = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"
PLAYREADY = "9a04f079-9840-4286-ab92-e65be0885f95"


def _iso(epoch: float) -> str:
    from harvest.devtools.origin import format_pdt

    return format_pdt(epoch)


def pssh_box(system_id: str, data: bytes) -> str:
    """A version-0 'pssh' box (ISO/IEC 23001-7 §8.1) as base64, the way an MPD carries it."""
    body = (
        b"\x00\x00\x00\x00" + bytes.fromhex(system_id.replace("-", "")) + struct.pack(">I", len(data)) + data
    )
    return base64.b64encode(struct.pack(">I", 8 + len(body)) + b"pssh" + body).decode()


def sidx_box(sizes: list[int], duration: int) -> bytes:
    """A version-0 'sidx' (ISO/IEC 14496-12 §8.16.3) for segments of `sizes` bytes, each `duration` long."""
    body = b"\x00\x00\x00\x00" + struct.pack(">IIIIHH", 1, TIMESCALE, 0, 0, 0, len(sizes))
    for size in sizes:
        body += struct.pack(">III", size, duration, 0x90000000)  # starts with SAP type 1
    return struct.pack(">I", 8 + len(body)) + b"sidx" + body


def indexed_file(init: bytes, segments: tuple[bytes, ...], segment_seconds: int) -> tuple[bytes, int, int]:
    """(the file, init length, sidx length) of one loop of the pool in SegmentBase form."""
    sidx = sidx_box([len(s) for s in segments], segment_seconds * TIMESCALE)
    return init + sidx + b"".join(segments), len(init), len(sidx)


def media_template(mode: str) -> str:
    return {
        "number": "$RepresentationID$/n$Number%06d$.m4s",
        "time-timeline": "$RepresentationID$/t$Time$.m4s",
    }.get(mode, "$RepresentationID$/$Number$.m4s")


def segment_number(leaf: str, segment_seconds: int) -> int | None:
    """The segment number a DASH-only segment name (n000123.m4s, t246000.m4s) addresses, else None."""
    stem, _, ext = leaf.partition(".")
    if ext != "m4s" or len(stem) < 2 or not stem[1:].isdigit():
        return None
    if stem[0] == "n":
        return int(stem[1:])
    d = segment_seconds * TIMESCALE
    if stem[0] == "t" and int(stem[1:]) % d == 0:
        return int(stem[1:]) // d
    return None


def render_mpd(runtime: _Channel, now: float, first: int, last: int) -> bytes:
    spec = runtime.spec
    d = spec.segment_seconds * TIMESCALE
    period_len = spec.dash_period or 0
    mode = spec.dash or "number-timeline"
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:cenc="urn:mpeg:cenc:2013"'
        ' xmlns:mspr="urn:microsoft:playready" xmlns:scte35="http://www.scte.org/schemas/35/2016"'
        ' type="dynamic" profiles="urn:mpeg:dash:profile:isoff-live:2011"'
        f' availabilityStartTime="{_iso(spec.anchor)}" publishTime="{_iso(now)}"'
        f' minimumUpdatePeriod="PT{spec.segment_seconds}S" minBufferTime="PT{2 * spec.segment_seconds}S"'
        f' timeShiftBufferDepth="PT{spec.dvr_window}S" maxSegmentDuration="PT{spec.segment_seconds}S">',
        "  <BaseURL>./</BaseURL>",
    ]
    if period_len:
        groups = [
            (k, max(first, k * period_len), min(last, (k + 1) * period_len - 1))
            for k in range(first // period_len, last // period_len + 1)
        ]
    else:
        groups = [(0, first, last)]
    for k, lo, hi in groups:
        period_first = k * period_len
        lines.append(f'  <Period id="p{k}" start="PT{period_first * spec.segment_seconds}S">')
        lines += _events(runtime, lo, hi, period_first * d)
        lines += _adaptation_sets(runtime, mode, lo, hi, period_first, d)
        lines.append("  </Period>")
    lines.append(f'  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="{_iso(now)}"/>')
    lines.append("</MPD>")
    return ("\n".join(lines) + "\n").encode()


def _events(runtime: _Channel, lo: int, hi: int, pto: int) -> list[str]:
    from harvest.devtools.origin import scte35_hex

    spec = runtime.spec
    if spec.ad_breaks is None:
        return []
    every, length = spec.ad_breaks
    d = spec.segment_seconds * TIMESCALE
    out = [
        '    <EventStream schemeIdUri="urn:scte:scte35:2014:xml+bin"'
        f' timescale="{TIMESCALE}" presentationTimeOffset="{pto}">'
    ]
    for event in range((lo - every // 2) // every, (hi - every // 2) // every + 1):
        begin = event * every + every // 2
        if begin < lo - length or begin > hi:
            continue
        binary = base64.b64encode(bytes.fromhex(scte35_hex(event, True)[2:])).decode()
        out += [
            f'      <Event presentationTime="{begin * d}" duration="{length * d}" id="{event}">',
            f"        <scte35:Signal><scte35:Binary>{binary}</scte35:Binary></scte35:Signal>",
            "      </Event>",
        ]
    out.append("    </EventStream>")
    return out


def _adaptation_sets(runtime: _Channel, mode: str, lo: int, hi: int, period_first: int, d: int) -> list[str]:
    spec = runtime.spec
    loaded = [entry.rendition for entry in runtime.renditions.values()]
    video = [r for r in loaded if r.media_type == "VIDEO"]
    audio = [r for r in loaded if r.media_type == "AUDIO"]
    out = [
        '    <AdaptationSet id="1" contentType="video" mimeType="video/mp4"'
        ' segmentAlignment="true" startWithSAP="1">'
    ]
    if spec.dash_protection:
        kid = DEFAULT_KID.replace("-", "")
        out += [
            '      <ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cenc"'
            f' cenc:default_KID="{DEFAULT_KID}"/>',
            f'      <ContentProtection schemeIdUri="urn:uuid:{WIDEVINE}" value="Widevine">',
            f"        <cenc:pssh>{pssh_box(WIDEVINE, bytes.fromhex('1210' + kid))}</cenc:pssh>",
            "      </ContentProtection>",
            f'      <ContentProtection schemeIdUri="urn:uuid:{PLAYREADY}" value="MSPR 2.0">',
            f"        <cenc:pssh>{pssh_box(PLAYREADY, b'<WRMHEADER/>')}</cenc:pssh>",
            f"        <mspr:pro>{base64.b64encode(b'<WRMHEADER/>').decode()}</mspr:pro>",
            "      </ContentProtection>",
        ]
    out += [
        '      <InbandEventStream schemeIdUri="urn:mpeg:dash:event:2012" value="1"/>',
        "      <Label>Main camera</Label>",
        '      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>',
    ]
    for r in video:
        width, height = r.resolution.split("x")
        out.append(
            f'      <Representation id="{r.name}" bandwidth="{r.bandwidth}" codecs="{r.codecs}"'
            f' width="{width}" height="{height}" frameRate="25">'
        )
        out += _segments(runtime, mode, lo, hi, period_first, r.name)
        out.append("      </Representation>")
    out.append("    </AdaptationSet>")
    for i, r in enumerate(audio):
        out += [
            f'    <AdaptationSet id="{2 + i}" contentType="audio" mimeType="audio/mp4"'
            f' lang={quoteattr(r.language)} segmentAlignment="true">',
            "      <AudioChannelConfiguration"
            ' schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011"'
            f' value="{r.channels}"/>',
            "      <Label>English</Label>",
            '      <Accessibility schemeIdUri="urn:tva:metadata:cs:AudioPurposeCS:2007" value="6"/>',
            '      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>',
            f'      <Representation id="{r.name}" bandwidth="{r.bandwidth}" codecs="{r.codecs}"'
            ' audioSamplingRate="48000">',
            *_segments(runtime, mode, lo, hi, period_first, r.name),
            "      </Representation>",
            "    </AdaptationSet>",
        ]
    return out


def _segments(runtime: _Channel, mode: str, lo: int, hi: int, period_first: int, rep: str) -> list[str]:
    pad = "        "
    d = runtime.spec.segment_seconds * TIMESCALE
    pto = period_first * d
    if mode == "indexed":
        loaded = runtime.renditions[rep]
        _, init_length, sidx_length = indexed_file(
            loaded.init or b"", loaded.segments, runtime.spec.segment_seconds
        )
        return [
            f"{pad}<BaseURL>{rep}/{INDEXED_NAME}</BaseURL>",
            f'{pad}<SegmentBase timescale="{TIMESCALE}"'
            f' indexRange="{init_length}-{init_length + sidx_length - 1}">',
            f'{pad}  <Initialization range="0-{init_length - 1}"/>',
            f"{pad}</SegmentBase>",
        ]
    init = 'initialization="$RepresentationID$/init.mp4"'
    if mode == "number":
        return [
            f'{pad}<SegmentTemplate timescale="{TIMESCALE}" presentationTimeOffset="{pto}" duration="{d}"'
            f' startNumber="{period_first}" media="{media_template(mode)}" {init}/>'
        ]
    if mode == "list":
        out = [
            f'{pad}<SegmentList timescale="{TIMESCALE}" presentationTimeOffset="{pto}" startNumber="{lo}">',
            f'{pad}  <Initialization sourceURL="{rep}/init.mp4"/>',
            f'{pad}  <SegmentTimeline><S t="{lo * d}" d="{d}" r="{hi - lo}"/></SegmentTimeline>',
        ]
        out += [f'{pad}  <SegmentURL media="{rep}/{n}.m4s"/>' for n in range(lo, hi + 1)]
        return [*out, f"{pad}</SegmentList>"]
    if mode == "time-timeline":
        timeline = f'<S t="{lo * d}" d="{d}" r="-1"/>'
    else:
        timeline = f'<S t="{lo * d}" d="{d}" r="{hi - lo}"/>'
    return [
        f'{pad}<SegmentTemplate timescale="{TIMESCALE}" presentationTimeOffset="{pto}"'
        f' startNumber="{lo}" media="{media_template(mode)}" {init}>',
        f"{pad}  <SegmentTimeline>{timeline}</SegmentTimeline>",
        f"{pad}</SegmentTemplate>",
    ]
