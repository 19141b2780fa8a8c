"""A static MPD written from an HLS reading: a CMAF endpoint without a `dash_url` still gets both.

CMAF segments are fMP4 under an EXT-X-MAP, which DASH plays as they are: every rendition whose
window segments all have an init section becomes a Representation (variants in one video
AdaptationSet, each AUDIO rendition in an AdaptationSet with its language, NAME as Label and
DEFAULT as Role), addressed by a SegmentTemplate + SegmentTimeline over the very objects the HLS
playlists name. Times come from EXT-X-PROGRAM-DATE-TIME, in milliseconds from the first segment.
Renditions that are not fMP4 (WebVTT subtitles, MPEG-TS, I-frame playlists) are left out of the MPD.
"""

from __future__ import annotations

import posixpath
from xml.etree import ElementTree as ET

from harvest.engine.tasks import ObjectLocator, TaskBook
from harvest.errors import PlaylistError
from harvest.formats.dash import KeptTrack, segment_info, serialise
from harvest.formats.hls import IFRAME, SUBTITLES, Clip, HlsReading
from harvest.formats.mpd import MediaSegment, Track, format_duration, q
from harvest.hls.model import MasterPlaylist
from harvest.hls.parse import unquote

TIMESCALE = 1000
_VIDEO_CODECS = ("avc1", "avc3", "hvc1", "hev1", "dvh1", "dvhe", "av01", "vp09")


def write(reading: HlsReading, book: TaskBook, manifest_key: str) -> str:
    clips = [clip for clip in reading.clips if _is_cmaf(clip)]
    if not clips:
        raise PlaylistError(
            "the CMAF endpoint's HLS renditions are not fMP4 (no EXT-X-MAP): no MPD can be written"
            " from them; give the endpoint a dash_url"
        )
    origin = min(clip.window.segments[0].pdt or 0.0 for clip in clips)
    end = max(clip.window.ends for clip in clips)
    folder = posixpath.dirname(manifest_key)
    locator = ObjectLocator(book, f"{folder}/" if folder else "")
    target = max(clip.window.playlist.target_duration for clip in clips)
    root = ET.Element(
        q("MPD"),
        {
            "type": "static",
            "profiles": "urn:mpeg:dash:profile:isoff-live:2011",
            "minBufferTime": format_duration(2 * target),
            "mediaPresentationDuration": format_duration(end - origin),
        },
    )
    period = ET.SubElement(root, q("Period"), {"id": "0", "start": format_duration(0)})
    video, audio = _attributes(reading.master)
    video_set: ET.Element | None = None
    for clip in clips:
        url = clip.rendition.url
        if url in audio:
            lang, label, role, codecs = audio[url]
            adaptation = ET.SubElement(
                period, q("AdaptationSet"), {"contentType": "audio", "mimeType": "audio/mp4"}
            )
            if lang:
                adaptation.set("lang", lang)
            if label:
                ET.SubElement(adaptation, q("Label")).text = label
            ET.SubElement(adaptation, q("Role"), {"schemeIdUri": "urn:mpeg:dash:role:2011", "value": role})
            representation = {
                "id": clip.rendition.name,
                "bandwidth": "0",
                **({"codecs": codecs} if codecs else {}),
            }
        else:
            if video_set is None:
                video_set = ET.SubElement(
                    period, q("AdaptationSet"), {"contentType": "video", "mimeType": "video/mp4"}
                )
            adaptation = video_set
            representation = {"id": clip.rendition.name, **video.get(url, {"bandwidth": "0"})}
        rep = ET.SubElement(adaptation, q("Representation"), representation)
        rep.append(segment_info(_kept_track(clip, origin), origin, origin, locator))
    return serialise(root)


def _is_cmaf(clip: Clip) -> bool:
    if clip.rendition.kind in (IFRAME, SUBTITLES):
        return False
    media = [s for s in clip.window.segments if not s.gap]
    return bool(media) and all(s.map is not None for s in media)


def _kept_track(clip: Clip, origin: float) -> KeptTrack:
    segments = [
        MediaSegment(
            url=s.uri,
            byterange=s.byterange,
            start=s.pdt or 0.0,
            end=s.end,
            number=s.msn,
            time=round(((s.pdt or 0.0) - origin) * TIMESCALE),
            d=max(1, round(s.duration * TIMESCALE)),
        )
        for s in clip.window.segments
        if not s.gap
    ]
    first_map = next(s.map for s in clip.window.segments if s.map is not None)
    assert first_map is not None
    empty = ET.Element(q("Representation"))
    init = (first_map.uri, first_map.byterange)
    track = Track(0, empty, empty, clip.rendition.name, init, tuple(segments), TIMESCALE, 0)
    return KeptTrack(track, clip.rendition.name, segments)


def _attributes(
    master: MasterPlaylist | None,
) -> tuple[dict[str, dict[str, str]], dict[str, tuple[str, str, str, str]]]:
    """Representation attributes by variant URL, and (lang, label, role, codecs) by AUDIO rendition URL."""
    video: dict[str, dict[str, str]] = {}
    audio: dict[str, tuple[str, str, str, str]] = {}
    if master is None:
        return video, audio
    audio_codecs: dict[str, str] = {}  # group -> its codecs, from the first variant that uses it
    for variant in master.variants:
        attributes = {name: unquote(value) for name, value in variant.attributes}
        codecs = [c.strip() for c in attributes.get("CODECS", "").split(",") if c.strip()]
        own = [c for c in codecs if c.startswith(_VIDEO_CODECS)]
        if "AUDIO" in attributes:
            audio_codecs.setdefault(attributes["AUDIO"], ",".join(c for c in codecs if c not in own))
        found = {"bandwidth": str(variant.bandwidth)}
        if own or (codecs and "AUDIO" not in attributes):
            found["codecs"] = ",".join(own or codecs)
        if variant.resolution and "x" in variant.resolution:
            found["width"], found["height"] = variant.resolution.split("x", 1)
        if "FRAME-RATE" in attributes:
            found["frameRate"] = _frame_rate(attributes["FRAME-RATE"])
        video.setdefault(variant.uri, found)
    for media in master.media:
        if media.type == "AUDIO" and media.uri is not None:
            attributes = {name: unquote(value) for name, value in media.attributes}
            role = "main" if attributes.get("DEFAULT") == "YES" else "alternate"
            audio[media.uri] = (media.language or "", media.name, role, audio_codecs.get(media.group_id, ""))
    return video, audio


def _frame_rate(value: str) -> str:
    """HLS's decimal FRAME-RATE as DASH's FrameRateType: an integer or a fraction (29.970 -> 29970/1000)."""
    rate = round(float(value) * 1000)
    return str(rate // 1000) if rate % 1000 == 0 else f"{rate}/1000"
