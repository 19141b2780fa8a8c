"""Parse master and media playlists into the typed model (hls.model).

Master playlists go through the `m3u8` library: they are small, and it pairs each EXT-X-STREAM-INF
with its URI line and types the common attributes. The raw attribute lists are captured alongside
(m3u8 rewrites or drops attributes it does not know) so the harvested master keeps them all.

Media playlists use the line scanner below instead of m3u8: a 24-hour live window at 6 s segments
is 14,400 segments, which m3u8 takes 0.2-0.4 s to parse on a 2-core machine, and planning (parse,
select, write every rendition) has a 0.5 s budget. The scanner is about 10x faster, and it reports
errors with line numbers, resolves implicit byte-range offsets and tracks key/map state per
KEYFORMAT, which m3u8 does not do.

Every error is a PlaylistError naming the playlist URL and, where there is one, the line.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin

import m3u8

from harvest.errors import PlaylistError
from harvest.hls.model import (
    Attributes,
    ByteRange,
    DateRange,
    IFrameStream,
    InitSection,
    Key,
    MasterPlaylist,
    MediaPlaylist,
    Rendition,
    Segment,
    Variant,
)

MAX_PLAYLIST_CHARS = 64 * 1024 * 1024
MAX_SEGMENTS = 200_000
MAX_SEGMENT_DURATION = 86_400.0  # a "segment" longer than a day is a broken playlist, not media

KEY_METHODS = frozenset({"NONE", "AES-128", "SAMPLE-AES", "SAMPLE-AES-CTR", "SAMPLE-AES-CENC"})

# One attribute (§4.2): NAME=value where value is a quoted string or runs to the next comma.
_ATTRIBUTE = re.compile(r'\s*([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]*)\s*(,|$)')
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# Tags that only make sense in a master playlist: finding one in a media playlist means the
# endpoint (or a variant URI) points at a master, which we never follow a second time.
_MASTER_TAGS = ("#EXT-X-STREAM-INF", "#EXT-X-I-FRAME-STREAM-INF", "#EXT-X-MEDIA:")


# --- small value parsers ------------------------------------------------------------------------


def parse_attributes(text: str) -> list[tuple[str, str]]:
    """Split an attribute list into (NAME, raw value) pairs; raises ValueError when malformed."""
    pairs: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _ATTRIBUTE.match(text, pos)
        if match is None:
            raise ValueError(f"malformed attribute list near {text[pos : pos + 40]!r}")
        pairs.append((match.group(1), match.group(2)))
        pos = match.end()
    return pairs


def unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def format_attributes(attributes: Attributes | list[tuple[str, str]]) -> str:
    return ",".join(f"{name}={value}" for name, value in attributes)


def parse_date(text: str) -> float:
    """ISO 8601 date-time (§4.3.2.6) to epoch seconds; a time without a zone is taken as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)  # raises ValueError
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def format_date(epoch: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds, the form §4.3.2.6 recommends."""
    millis = round(epoch * 1000)
    seconds, ms = divmod(millis, 1000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms:03d}Z"


class UriResolver:
    """Resolves URIs against a playlist URL, with a fast path for the usual plain relative names.

    urljoin costs a few microseconds; with 14,400 segments per rendition that is a noticeable share
    of the planning budget, and nearly every segment URI is a plain name like `seg_123.ts`.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.directory = urljoin(base, ".")  # drops the playlist's file name, query and fragment
        if not self.directory.endswith("/"):
            self.directory = urljoin(base, "x")[:-1]

    def __call__(self, uri: str) -> str:
        if uri.startswith(("http://", "https://")):
            return uri
        if (
            not uri.startswith(("/", ".", "?", "#"))
            and "/." not in uri
            and "\\" not in uri
            and _SCHEME.match(uri) is None
        ):
            return self.directory + uri
        return urljoin(self.base, uri)


def is_master(text: str) -> bool:
    """True when the text is a master (multivariant) playlist rather than a media playlist."""
    return any(tag in text for tag in ("#EXT-X-STREAM-INF", "#EXT-X-I-FRAME-STREAM-INF"))


def _check_size(text: str, url: str) -> None:
    if len(text) > MAX_PLAYLIST_CHARS:
        raise PlaylistError(
            f"playlist {url} is {len(text)} characters, more than the {MAX_PLAYLIST_CHARS} allowed"
        )


def _check_header(lines: list[str], url: str) -> None:
    first = next((line.strip() for line in lines if line.strip()), "")
    if not first.startswith("#EXTM3U"):
        raise PlaylistError(f"playlist {url} line 1: does not start with #EXTM3U")


# --- media playlists ----------------------------------------------------------------------------


class _MediaScanner:
    """One pass over a media playlist's lines; `run` returns the finished MediaPlaylist."""

    def __init__(self, text: str, url: str) -> None:
        self.url = url
        self.resolve = UriResolver(url)
        self.lines = text.splitlines()
        self.lineno = 0
        # playlist-level values
        self.target_duration: int | None = None
        self.media_sequence = 0
        self.discontinuity_sequence = 0
        self.version = 1
        self.playlist_type: str | None = None
        self.independent = False
        self.iframes_only = False
        self.ended = False
        self.dateranges: list[DateRange] = []
        # state that carries from segment to segment
        self.keys: dict[str, Key] = {}
        self.keys_tuple: tuple[Key, ...] = ()
        self.map: InitSection | None = None
        self.previous_range_uri: str | None = None
        self.previous_range_end = 0
        self.discontinuities = 0
        # tags waiting for the next segment URI
        self.duration_text: str | None = None
        self.duration = 0.0
        self.title = ""
        self.byterange: tuple[int, int | None] | None = None
        self.discontinuity = False
        self.pdt: float | None = None
        self.pdt_text: str | None = None
        self.gap = False
        self.pending_dateranges: list[DateRange] = []
        self.segments: list[Segment] = []
        # PDT is summed forward as segments arrive; segments before the first explicit PDT are
        # given theirs at the end (see _backfill_pdt).
        self.first_pdt_index: int | None = None
        self.last_pdt: float | None = None

    def fail(self, message: str) -> PlaylistError:
        return PlaylistError(f"playlist {self.url} line {self.lineno}: {message}")

    def run(self) -> MediaPlaylist:
        _check_header(self.lines, self.url)
        handlers = self._handlers()
        for lineno, raw in enumerate(self.lines, 1):
            line = raw.strip()
            if not line:
                continue
            self.lineno = lineno
            if line[0] != "#":
                self._segment(line)
                continue
            if not line.startswith("#EXT"):
                continue  # a comment
            colon = line.find(":")
            tag, value = (line, "") if colon < 0 else (line[:colon], line[colon + 1 :])
            if tag == "#EXTINF":
                self._extinf(value)
            elif tag == "#EXT-X-PROGRAM-DATE-TIME":
                self._pdt(value)
            else:
                handler = handlers.get(tag)
                if handler is not None:
                    handler(value)
                elif line.startswith(_MASTER_TAGS):
                    raise self.fail(
                        "this is a master playlist where a media playlist was expected"
                        " (master playlists nested in a master are not followed)"
                    )
        if self.duration_text is not None:
            raise self.fail("the playlist ends with an #EXTINF that has no segment URI")
        if self.target_duration is None:
            raise PlaylistError(f"playlist {self.url} has no #EXT-X-TARGETDURATION")
        segments = self._backfill_pdt()
        return MediaPlaylist(
            url=self.url,
            target_duration=self.target_duration,
            media_sequence=self.media_sequence,
            discontinuity_sequence=self.discontinuity_sequence,
            version=self.version,
            playlist_type=self.playlist_type,
            independent_segments=self.independent,
            iframes_only=self.iframes_only,
            segments=segments,
            dateranges=tuple(self.dateranges),
            trailing_dateranges=tuple(self.pending_dateranges),
            ended=self.ended,
        )

    def _handlers(self) -> dict[str, Callable[[str], None]]:
        # LL-HLS tags (EXT-X-PART, -PRELOAD-HINT, -PART-INF, -SERVER-CONTROL, -RENDITION-REPORT) are
        # simply not here: a Partial Segment is a subset of its parent segment, which we harvest.
        return {
            "#EXT-X-BYTERANGE": self._byterange,
            "#EXT-X-KEY": self._key,
            "#EXT-X-MAP": self._map,
            "#EXT-X-DISCONTINUITY": self._discontinuity,
            "#EXT-X-GAP": self._gap,
            "#EXT-X-DATERANGE": self._daterange,
            "#EXT-X-TARGETDURATION": self._target_duration,
            "#EXT-X-MEDIA-SEQUENCE": self._media_sequence,
            "#EXT-X-DISCONTINUITY-SEQUENCE": self._discontinuity_sequence,
            "#EXT-X-VERSION": self._version,
            "#EXT-X-PLAYLIST-TYPE": self._playlist_type,
            "#EXT-X-INDEPENDENT-SEGMENTS": self._independent,
            "#EXT-X-I-FRAMES-ONLY": self._iframes_only,
            "#EXT-X-ENDLIST": self._endlist,
            "#EXT-X-SKIP": self._skip,
        }

    # -- per-segment tags

    def _extinf(self, value: str) -> None:
        text, _, title = value.partition(",")
        text = text.strip()
        try:
            duration = float(text)
        except ValueError:
            raise self.fail(f"#EXTINF duration {text!r} is not a number") from None
        if not math.isfinite(duration) or duration <= 0 or duration > MAX_SEGMENT_DURATION:
            raise self.fail(f"#EXTINF duration {text!r} must be a positive number of seconds up to a day")
        self.duration_text, self.duration, self.title = text, duration, title

    def _pdt(self, value: str) -> None:
        try:
            self.pdt = parse_date(value)
        except ValueError:
            raise self.fail(f"#EXT-X-PROGRAM-DATE-TIME {value!r} is not an ISO 8601 date-time") from None
        self.pdt_text = value.strip()

    def _byterange(self, value: str) -> None:
        length, at, offset = value.strip().partition("@")
        try:
            self.byterange = (int(length), int(offset) if at else None)
        except ValueError:
            raise self.fail(f"#EXT-X-BYTERANGE {value!r} is not <length>[@<offset>]") from None
        if self.byterange[0] <= 0 or (self.byterange[1] is not None and self.byterange[1] < 0):
            raise self.fail(f"#EXT-X-BYTERANGE {value!r} must have a positive length")

    def _key(self, value: str) -> None:
        attrs = self._attributes(value, "#EXT-X-KEY")
        method = attrs.get("METHOD", "")
        if method not in KEY_METHODS:
            raise self.fail(f"#EXT-X-KEY METHOD {method!r} is not one of {', '.join(sorted(KEY_METHODS))}")
        if method == "NONE":
            self.keys = {}
        else:
            if "URI" not in attrs:
                raise self.fail(f"#EXT-X-KEY METHOD={method} has no URI")
            key = Key(
                method=method,
                uri=self.resolve(attrs["URI"]),
                iv=attrs.get("IV"),
                keyformat=attrs.get("KEYFORMAT"),
                keyformatversions=attrs.get("KEYFORMATVERSIONS"),
            )
            self.keys[key.format_name] = key
        self.keys_tuple = tuple(self.keys.values())

    def _map(self, value: str) -> None:
        attrs = self._attributes(value, "#EXT-X-MAP")
        if "URI" not in attrs:
            raise self.fail("#EXT-X-MAP has no URI")
        byterange = None
        if "BYTERANGE" in attrs:
            length, at, offset = attrs["BYTERANGE"].partition("@")
            try:
                # A MAP range without an offset starts at byte 0 (there is no previous segment to follow).
                byterange = ByteRange(int(length), int(offset) if at else 0)
            except ValueError:
                raise self.fail(
                    f"#EXT-X-MAP BYTERANGE {attrs['BYTERANGE']!r} is not <length>[@<offset>]"
                ) from None
        self.map = InitSection(uri=self.resolve(attrs["URI"]), byterange=byterange, keys=self.keys_tuple)

    def _discontinuity(self, value: str) -> None:
        self.discontinuity = True

    def _gap(self, value: str) -> None:
        self.gap = True

    def _daterange(self, value: str) -> None:
        attrs = self._attributes(value, "#EXT-X-DATERANGE")
        if "ID" not in attrs or "START-DATE" not in attrs:
            raise self.fail("#EXT-X-DATERANGE needs ID and START-DATE")
        try:
            start = parse_date(attrs["START-DATE"])
        except ValueError:
            raise self.fail(
                f"#EXT-X-DATERANGE START-DATE {attrs['START-DATE']!r} is not a date-time"
            ) from None
        daterange = DateRange(id=attrs["ID"], start=start, attributes=value.strip())
        self.dateranges.append(daterange)
        self.pending_dateranges.append(daterange)

    def _segment(self, uri: str) -> None:
        if self.duration_text is None:
            raise self.fail(f"segment URI {uri!r} has no #EXTINF before it")
        if len(self.segments) >= MAX_SEGMENTS:
            raise self.fail(f"more than {MAX_SEGMENTS} segments")
        absolute = self.resolve(uri)
        byterange = None
        if self.byterange is not None:
            length, offset = self.byterange
            if offset is None:
                # §4.3.2.2: without an offset the range follows the previous segment's, which must
                # be a range of the same resource; we resolve it here so output offsets are explicit.
                if self.previous_range_uri != absolute:
                    raise self.fail(
                        "#EXT-X-BYTERANGE has no offset and does not follow a range of the same URI"
                    )
                offset = self.previous_range_end
            byterange = ByteRange(length, offset)
            self.previous_range_uri, self.previous_range_end = absolute, offset + length
        else:
            self.previous_range_uri = None
        if self.discontinuity:
            self.discontinuities += 1
        pdt = self.pdt
        if pdt is not None:
            if self.first_pdt_index is None:
                self.first_pdt_index = len(self.segments)
        elif self.last_pdt is not None:
            pdt = self.last_pdt + self.segments[-1].duration
        self.last_pdt = pdt
        self.segments.append(
            Segment(
                msn=self.media_sequence + len(self.segments),
                uri=absolute,
                duration=self.duration,
                duration_text=self.duration_text,
                title=self.title,
                byterange=byterange,
                discontinuity=self.discontinuity,
                discontinuity_seq=self.discontinuity_sequence + self.discontinuities,
                pdt=pdt,
                pdt_text=self.pdt_text,
                keys=self.keys_tuple,
                map=self.map,
                gap=self.gap,
                dateranges=tuple(self.pending_dateranges) if self.pending_dateranges else (),
            )
        )
        self.duration_text, self.title, self.byterange = None, "", None
        self.discontinuity = self.gap = False
        self.pdt = self.pdt_text = None
        if self.pending_dateranges:
            self.pending_dateranges = []

    # -- playlist-level tags

    def _header_int(self, value: str, tag: str) -> int:
        if self.segments:
            raise self.fail(f"{tag} must come before the first segment")
        try:
            number = int(value.strip())
        except ValueError:
            raise self.fail(f"{tag} {value!r} is not an integer") from None
        if number < 0:
            raise self.fail(f"{tag} must not be negative")
        return number

    def _target_duration(self, value: str) -> None:
        try:
            self.target_duration = int(value.strip())
        except ValueError:
            raise self.fail(f"#EXT-X-TARGETDURATION {value!r} is not an integer") from None
        if not 0 < self.target_duration <= MAX_SEGMENT_DURATION:
            raise self.fail(
                f"#EXT-X-TARGETDURATION {value!r} must be a positive number of seconds up to a day"
            )

    def _media_sequence(self, value: str) -> None:
        self.media_sequence = self._header_int(value, "#EXT-X-MEDIA-SEQUENCE")

    def _discontinuity_sequence(self, value: str) -> None:
        self.discontinuity_sequence = self._header_int(value, "#EXT-X-DISCONTINUITY-SEQUENCE")

    def _version(self, value: str) -> None:
        self.version = self._header_int(value, "#EXT-X-VERSION")

    def _playlist_type(self, value: str) -> None:
        self.playlist_type = value.strip().upper()

    def _independent(self, value: str) -> None:
        self.independent = True

    def _iframes_only(self, value: str) -> None:
        self.iframes_only = True

    def _endlist(self, value: str) -> None:
        self.ended = True

    def _skip(self, value: str) -> None:
        raise self.fail("#EXT-X-SKIP (a delta update) hides segments; request the full playlist")

    def _attributes(self, value: str, tag: str) -> dict[str, str]:
        try:
            return {name: unquote(raw) for name, raw in parse_attributes(value)}
        except ValueError as exc:
            raise self.fail(f"{tag}: {exc}") from None

    # -- program date-time

    def _backfill_pdt(self) -> tuple[Segment, ...]:
        """The segments with every PDT in place.

        Rule: a segment's PDT is its own EXT-X-PROGRAM-DATE-TIME, else the previous segment's PDT
        plus the previous EXTINF (summed in _segment). The sum continues across an
        EXT-X-DISCONTINUITY that has no PDT of its own: nothing better is known, and origins whose
        clock jumps put a PDT there. Segments before the first explicit PDT count back from it by
        their own EXTINF. With no PDT at all every `pdt` stays None and window selection decides
        (see hls.window.place_by_live_edge).
        """
        first = self.first_pdt_index
        segments = self.segments
        if first:
            current = segments[first].pdt or 0.0
            for i in range(first - 1, -1, -1):
                current -= segments[i].duration
                segments[i] = dataclasses.replace(segments[i], pdt=current)
        return tuple(segments)


def parse_media(text: str, url: str) -> MediaPlaylist:
    """Parse a media playlist; URIs come back absolute (resolved against `url`)."""
    _check_size(text, url)
    return _MediaScanner(text.removeprefix("\ufeff"), url).run()


# --- master playlists ---------------------------------------------------------------------------

_CAPTURED = ("#EXT-X-STREAM-INF:", "#EXT-X-I-FRAME-STREAM-INF:", "#EXT-X-MEDIA:")
_SESSION = ("#EXT-X-SESSION-DATA:", "#EXT-X-SESSION-KEY:")


def _absolute_uri_attribute(attributes: list[tuple[str, str]], resolve: UriResolver) -> Attributes:
    return tuple(
        (name, f'"{resolve(unquote(value))}"' if name == "URI" else value) for name, value in attributes
    )


def parse_master(text: str, url: str) -> MasterPlaylist:
    """Parse a master (multivariant) playlist; URIs come back absolute."""
    _check_size(text, url)
    text = text.removeprefix("\ufeff")
    _check_header(text.splitlines(), url)
    resolve = UriResolver(url)
    captured: dict[str, list[tuple[int, list[tuple[str, str]]]]] = {tag: [] for tag in _CAPTURED}
    session: list[str] = []
    where = [0]

    def capture(line: str, lineno: int, data: Any, state: Any) -> bool:
        # m3u8 calls this for every tag line before parsing it; returning False lets it carry on.
        where[0] = lineno
        for tag in _CAPTURED:
            if line.startswith(tag):
                try:
                    captured[tag].append((lineno, parse_attributes(line[len(tag) :])))
                except ValueError as exc:
                    raise PlaylistError(f"playlist {url} line {lineno}: {exc}") from None
        if line.startswith(_SESSION):
            tag, _, rest = line.partition(":")
            try:
                attributes = _absolute_uri_attribute(parse_attributes(rest), resolve)
                session.append(f"{tag}:{format_attributes(attributes)}")
            except ValueError as exc:
                raise PlaylistError(f"playlist {url} line {lineno}: {exc}") from None
        return False

    try:
        data = m3u8.parse(text, custom_tags_parser=capture)
    except PlaylistError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PlaylistError(f"playlist {url} near line {where[0]}: cannot parse ({exc})") from None

    stream_infs = captured["#EXT-X-STREAM-INF:"]
    if len(stream_infs) != len(data["playlists"]):
        raise PlaylistError(f"playlist {url}: an #EXT-X-STREAM-INF has no URI line after it")
    iframe_count = len(captured["#EXT-X-I-FRAME-STREAM-INF:"])
    if iframe_count != len(data["iframe_playlists"]) or len(captured["#EXT-X-MEDIA:"]) != len(data["media"]):
        raise PlaylistError(f"playlist {url}: cannot read its #EXT-X-MEDIA or #EXT-X-I-FRAME-STREAM-INF tags")
    variants = []
    for (lineno, attrs), entry in zip(stream_infs, data["playlists"], strict=True):
        info = entry["stream_info"]
        if "bandwidth" not in info:
            raise PlaylistError(f"playlist {url} line {lineno}: #EXT-X-STREAM-INF has no BANDWIDTH")
        variants.append(
            Variant(
                uri=resolve(entry["uri"]),
                attributes=tuple(attrs),
                bandwidth=int(info["bandwidth"]),
                resolution=info.get("resolution"),
            )
        )
    iframes = []
    for (lineno, attrs), entry in zip(
        captured["#EXT-X-I-FRAME-STREAM-INF:"], data["iframe_playlists"], strict=True
    ):
        if not entry.get("uri"):
            raise PlaylistError(f"playlist {url} line {lineno}: #EXT-X-I-FRAME-STREAM-INF has no URI")
        info = entry["iframe_stream_info"]
        iframes.append(
            IFrameStream(
                uri=resolve(entry["uri"]),
                attributes=tuple(attrs),  # URI stays in place; the renderer replaces its value
                bandwidth=int(info.get("bandwidth") or 0),
                resolution=info.get("resolution"),
            )
        )
    media = []
    for (lineno, attrs), entry in zip(captured["#EXT-X-MEDIA:"], data["media"], strict=True):
        if not entry.get("type") or not entry.get("group_id") or not entry.get("name"):
            raise PlaylistError(f"playlist {url} line {lineno}: #EXT-X-MEDIA needs TYPE, GROUP-ID and NAME")
        media.append(
            Rendition(
                type=str(entry["type"]),
                group_id=str(entry["group_id"]),
                name=str(entry["name"]),
                language=entry.get("language"),
                uri=resolve(entry["uri"]) if entry.get("uri") else None,
                attributes=_absolute_uri_attribute(attrs, resolve),
            )
        )
    if not variants and not iframes:
        raise PlaylistError(f"playlist {url} is a master playlist with no variant streams")
    version = data.get("version")
    return MasterPlaylist(
        url=url,
        version=int(version) if version is not None else None,
        independent_segments=bool(data.get("is_independent_segments")),
        variants=tuple(variants),
        iframe_streams=tuple(iframes),
        media=tuple(media),
        session_tags=tuple(session),
    )
