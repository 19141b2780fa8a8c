"""Parse master and media playlists into the typed model (hls.model).

One streaming scanner per playlist kind, each a registry of tag handlers (`@_media_tag` /
`@_master_tag`, the way streamlink's HLS parser registers its `@parse_tag` methods). The text is
read line by line from a stream, never split into a list first, and both its size and its number
of lines are capped (ParseLimits), so a hostile origin cannot make one playlist cost gigabytes.

Why not the `m3u8` library: a 24-hour live window at 6 s segments is 14,400 segments, which m3u8
takes 0.2-0.4 s to parse on a 2-core machine, where planning (parse, select, write every rendition)
has a 0.5 s budget; it also drops attributes it does not know, and reports no line numbers.

Tolerance: a malformed tag that only describes one segment or one date range (PDT, BYTERANGE,
DATERANGE, KEY, MAP) does not fail the parse. It becomes a "problem" of the segments it applies to
(a KEY or MAP one of every segment until the next valid tag of its kind), and the planner fails the
job only when such a segment is inside the window; outside it the problem is a warning. Structural
errors (no #EXTM3U, no TARGETDURATION, a URI without #EXTINF, an undefined variable) always fail.

Tags this code does not interpret are kept verbatim at the segment they precede (ad markers like
#EXT-X-CUE-OUT, #EXT-OATCLS-SCTE35, #EXT-X-ASSET, vendor tags), except the ones that only make sense
in a live playlist (LL-HLS parts, preload hints, rendition reports, server control).

Every error is a PlaylistError naming the playlist URL and, where there is one, the line.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urljoin, urlsplit

from harvest.domain.timeparse import document_date_time
from harvest.errors import PlaylistError
from harvest.hls.model import (
    Attributes,
    ByteRange,
    CueBreak,
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
MAX_PLAYLIST_LINES = 2_000_000  # 24 h of 1 s segments with a PDT and a tag each is ~350,000
MAX_SEGMENTS = 200_000
MAX_SHARED_DURATIONS = 1024  # distinct EXTINF values shared between segments; the rest are not
MAX_VARIANTS = 100  # per master: EXT-X-STREAM-INF plus EXT-X-I-FRAME-STREAM-INF
MAX_RENDITIONS = 200  # per master: EXT-X-MEDIA
MAX_TAGS_PER_SEGMENT = 100  # kept tags before one segment; real packagers write a handful
MAX_DATERANGES = 20_000  # EXT-X-DATERANGE tags per playlist: a break every minute for a week
MAX_SUBSTITUTED_LINE = 64 * 1024  # characters of one line after EXT-X-DEFINE substitution
MAX_SEGMENT_DURATION = 86_400.0  # a "segment" longer than a day is a broken playlist, not media

KEY_METHODS = frozenset({"NONE", "AES-128", "SAMPLE-AES", "SAMPLE-AES-CTR", "SAMPLE-AES-CENC"})

# One attribute (§4.2): NAME=value where value is a quoted string or runs to the next comma.
_ATTRIBUTE = re.compile(r'\s*([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]*)\s*(,|$)')
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_VARIABLE = re.compile(r"\{\$([A-Za-z0-9_-]+)\}")  # RFC 8216bis §4.3: {$name}
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?")
# Tags that only make sense in a master playlist: finding one in a media playlist means the
# endpoint (or a variant URI) points at a master, which we never follow a second time.
_MASTER_TAGS = frozenset({"#EXT-X-STREAM-INF", "#EXT-X-I-FRAME-STREAM-INF", "#EXT-X-MEDIA"})
# Tags that describe a live playlist and mean nothing (or something wrong) in a VOD: dropped.
# A Partial Segment is a subset of its parent segment, which we harvest.
LIVE_ONLY_TAGS = frozenset(
    {
        "#EXTM3U",
        "#EXT-X-PART",
        "#EXT-X-PART-INF",
        "#EXT-X-PRELOAD-HINT",
        "#EXT-X-RENDITION-REPORT",
        "#EXT-X-SERVER-CONTROL",
        "#EXT-X-ALLOW-CACHE",  # removed from the protocol in version 7
    }
)
# Interstitial attributes holding URIs (RFC 8216bis appendix D): made absolute, or they would
# point into the bucket once the playlist is stored there.
_URI_ATTRIBUTES = frozenset({"X-ASSET-URI", "X-ASSET-LIST"})


@dataclass(frozen=True)
class ParseLimits:
    """How big a playlist may be before it is refused (settings: HARVEST_PLAYLIST_MAX_*)."""

    max_chars: int = MAX_PLAYLIST_CHARS
    max_lines: int = MAX_PLAYLIST_LINES
    max_segments: int = MAX_SEGMENTS
    max_variants: int = MAX_VARIANTS
    max_renditions: int = MAX_RENDITIONS


DEFAULT_LIMITS = ParseLimits()


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


def replace_attribute(attributes: Attributes, name: str, value: str | None) -> Attributes:
    """`attributes` with `name` set to `value` where it stood (appended if absent; None removes it)."""
    out = [(n, v) for n, v in attributes if n != name or value is not None]
    if value is None:
        return tuple(out)
    if any(n == name for n, _ in out):
        return tuple((n, value if n == name else v) for n, v in out)
    return (*out, (name, value))


PDT_TAG = "#EXT-X-PROGRAM-DATE-TIME"  # its problems name it (the window tells an unreadable date apart)


def parse_date(text: str) -> float:
    """ISO 8601 date-time (§4.3.2.6) to epoch seconds; a time without a zone is taken as UTC.
    Raises ValueError."""
    return document_date_time(text)


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


def _stream(text: str, url: str, limits: ParseLimits) -> io.TextIOWrapper:
    """The text as a stream of lines, once its size is checked.

    Lines are decoded one buffer at a time from the UTF-8 bytes (no list of every line is built:
    splitting a 63 MiB playlist of short lines into a list took 1.6 GB; io.StringIO would hold a
    4-byte-per-character copy), and universal-newline mode turns CRLF and lone CR into line ends,
    as §4.1 allows. The scanners count lines as they read them.
    """
    if len(text) > limits.max_chars:
        raise PlaylistError(
            f"playlist {url} is {len(text)} characters, more than the {limits.max_chars} allowed"
        )
    data = io.BytesIO(text.removeprefix("\ufeff").encode("utf-8", "surrogatepass"))
    return io.TextIOWrapper(data, encoding="utf-8", errors="surrogatepass", newline=None)


def _too_many_lines(url: str, limits: ParseLimits) -> PlaylistError:
    return PlaylistError(
        f"playlist {url} has more than {limits.max_lines} lines (the limit, HARVEST_PLAYLIST_MAX_LINES)"
    )


def _check_header(line: str, url: str) -> None:
    if not line.startswith("#EXTM3U"):
        raise PlaylistError(f"playlist {url} line 1: does not start with #EXTM3U")


class Variables:
    """EXT-X-DEFINE variables of one playlist (RFC 8216bis §4.3) and their substitution."""

    def __init__(self, url: str, imports: Mapping[str, str] | None = None) -> None:
        self.url = url
        self.imports = dict(imports or {})
        self.values: dict[str, str] = {}

    def define(self, attrs: Mapping[str, str], allow_import: bool) -> None:
        """Add one EXT-X-DEFINE; raises ValueError naming what is wrong."""
        if "NAME" in attrs:
            if "VALUE" not in attrs:
                raise ValueError("#EXT-X-DEFINE NAME needs a VALUE")
            name, value = attrs["NAME"], attrs["VALUE"]
        elif "IMPORT" in attrs:
            if not allow_import:
                raise ValueError("#EXT-X-DEFINE IMPORT is not allowed in a master playlist")
            name = attrs["IMPORT"]
            if name not in self.imports:
                raise ValueError(f"#EXT-X-DEFINE IMPORT={name!r}: the master defines no such variable")
            value = self.imports[name]
        elif "QUERYPARAM" in attrs:
            name = attrs["QUERYPARAM"]
            query = dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))
            if name not in query:
                raise ValueError(f"#EXT-X-DEFINE QUERYPARAM={name!r}: the playlist URL has no such parameter")
            value = query[name]
        else:
            raise ValueError("#EXT-X-DEFINE needs NAME and VALUE, IMPORT or QUERYPARAM")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ValueError(f"#EXT-X-DEFINE variable name {name!r} may only use A-Z a-z 0-9 _ -")
        if name in self.values:
            raise ValueError(f"#EXT-X-DEFINE defines {name!r} twice")
        self.values[name] = value

    def substitute(self, line: str) -> str:
        """The line with every {$name} replaced; raises ValueError for an undefined name."""

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.values:
                raise ValueError(f"variable {{${name}}} is not defined by an #EXT-X-DEFINE before it")
            return self.values[name]

        result = _VARIABLE.sub(value, line)
        if len(result) > MAX_SUBSTITUTED_LINE:
            # A short value referenced many times could otherwise grow one line without bound.
            raise ValueError(
                f"the line is longer than {MAX_SUBSTITUTED_LINE} characters once variables are replaced"
            )
        return result


def _absolute_uris(
    attributes: list[tuple[str, str]], resolve: UriResolver, names: frozenset[str]
) -> Attributes:
    return tuple(
        (name, f'"{resolve(unquote(value))}"' if name in names else value) for name, value in attributes
    )


_URI = frozenset({"URI"})


# --- media playlists ----------------------------------------------------------------------------

_Handler = TypeVar("_Handler", bound=Callable[[Any, str], None])


class TagRegistry(dict[str, Callable[[Any, str], None]]):
    """Tag name -> the scanner method that handles it, filled by the `@registry.tag(...)` decorator."""

    def tag(self, name: str) -> Callable[[_Handler], _Handler]:
        def register(handler: _Handler) -> _Handler:
            self[name] = handler
            return handler

        return register


_MEDIA_TAGS = TagRegistry()
_media_tag = _MEDIA_TAGS.tag


class _Scanner:
    """The line loop both playlist scanners share: limits, #EXTM3U, variables, tag dispatch."""

    def __init__(self, text: str, url: str, limits: ParseLimits, imports: Mapping[str, str] | None) -> None:
        self.text = text
        self.url = url
        self.limits = limits
        self.resolve = UriResolver(url)
        self.variables = Variables(url, imports)
        self.lineno = 0

    def fail(self, message: str) -> PlaylistError:
        return PlaylistError(f"playlist {self.url} line {self.lineno}: {message}")

    def uri_line(self, uri: str) -> None:
        raise NotImplementedError

    def other_tag(self, tag: str, line: str) -> None:
        """A tag no handler is registered for."""
        raise NotImplementedError

    def scan(self, handlers: Mapping[str, Callable[[Any, str], None]]) -> None:
        variables = self.variables
        max_lines = self.limits.max_lines
        header = ""
        for lineno, raw in enumerate(_stream(self.text, self.url, self.limits), 1):
            if lineno > max_lines:
                raise _too_many_lines(self.url, self.limits)
            line = raw.strip()
            if not line:
                continue
            if not header:
                _check_header(line, self.url)
                header = line
            self.lineno = lineno
            # §4.3 (bis): references are replaced in URI lines and attribute values, not EXTINF titles.
            if variables.values and "{$" in line and not line.startswith("#EXTINF"):
                line = self._substitute(line)
            if line[0] != "#":
                self.uri_line(line)
                continue
            if not line.startswith("#EXT"):
                continue  # a comment
            tag, _, value = line.partition(":")
            handler = handlers.get(tag)
            if handler is not None:
                handler(self, value)
            else:
                self.other_tag(tag, line)
        if not header:
            _check_header("", self.url)

    def _substitute(self, line: str) -> str:
        try:
            return self.variables.substitute(line)
        except ValueError as exc:
            raise self.fail(str(exc)) from None


@dataclass
class _DateRangePart:
    """One EXT-X-DATERANGE tag, before the tags of its ID are merged."""

    id: str
    attributes: list[tuple[str, str]]
    start: float | None
    end: float | None
    duration: float | None
    planned: float | None
    position: int  # index of the segment it precedes (== segment count after the last one)
    lineno: int


class _MediaScanner(_Scanner):
    """One pass over a media playlist's lines; `run` returns the finished MediaPlaylist."""

    def __init__(self, text: str, url: str, limits: ParseLimits, imports: Mapping[str, str] | None) -> None:
        super().__init__(text, url, limits, imports)
        # playlist-level values
        self.target_duration: int | None = None
        self.media_sequence = 0
        self.discontinuity_sequence = 0
        self.version = 1
        self.playlist_type: str | None = None
        self.independent = False
        self.iframes_only = False
        self.ended = False
        self.start_tag: str | None = None
        self.daterange_parts: list[_DateRangePart] = []
        # state that carries from segment to segment
        self.keys: dict[str, Key] = {}
        self.keys_tuple: tuple[Key, ...] = ()
        self.key_problem: str | None = None
        self.map: InitSection | None = None
        self.map_problem: str | None = None
        self.bitrate: str | None = None
        self.cue: CueBreak | None = None
        self.opening_cue: tuple[float | None, str] | None = None  # a CUE-OUT waiting for its segment
        self.closing_cue = False
        self.previous_range_uri: str | None = None
        self.previous_range_end = 0
        self.discontinuities = 0
        # One (text, value) per EXTINF value seen: a playlist repeats a few durations, and a parsed
        # 200,000-segment playlist held a copy of both per segment (15 MB).
        self.durations: dict[str, tuple[str, float]] = {}
        # tags waiting for the next segment URI
        self.duration_text: str | None = None
        self.duration = 0.0
        self.title = ""
        self.byterange: tuple[int, int | None] | None = None
        self.discontinuity = False
        self.pdt: float | None = None
        self.pdt_text: str | None = None
        self.gap = False
        self.pending_tags: list[str] = []
        self.tags_overflowed = False
        self.pending_problems: list[str] = []
        self.segments: list[Segment] = []
        # PDT is summed forward as segments arrive; segments before the first explicit PDT are
        # given theirs at the end (see _backfill_pdt).
        self.first_pdt_index: int | None = None
        self.last_pdt: float | None = None

    def problem(self, message: str) -> None:
        """A malformed tag that concerns only the next segment: fatal only inside the window."""
        self.pending_problems.append(f"line {self.lineno}: {message}")

    def run(self) -> MediaPlaylist:
        self.scan(_MEDIA_TAGS)
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
            dateranges=_merge_dateranges(self.daterange_parts, segments),
            trailing_tags=tuple(self.pending_tags),
            start_tag=self.start_tag,
            ended=self.ended,
            problems=tuple(self.pending_problems),
        )

    # -- per-segment tags

    @_media_tag("#EXTINF")
    def _extinf(self, value: str) -> None:
        text, _, title = value.partition(",")
        text = text.strip()
        known = self.durations.get(text)
        if known is not None:
            self.duration_text, self.duration, self.title = known[0], known[1], title
            return
        try:
            duration = float(text)
        except ValueError:
            raise self.fail(f"#EXTINF duration {text!r} is not a number") from None
        # Zero is allowed: packagers write #EXTINF:0 for an empty or placeholder segment.
        if not math.isfinite(duration) or duration < 0 or duration > MAX_SEGMENT_DURATION:
            raise self.fail(
                f"#EXTINF duration {text!r} must be a positive number of seconds up to a day, or 0"
            )
        if len(self.durations) < MAX_SHARED_DURATIONS:
            self.durations[text] = (text, duration)
        self.duration_text, self.duration, self.title = text, duration, title

    @_media_tag(PDT_TAG)
    def _pdt(self, value: str) -> None:
        try:
            self.pdt = parse_date(value)
        except ValueError:
            self.problem(f"{PDT_TAG} {value!r} is not an ISO 8601 date-time")
            return
        self.pdt_text = value.strip()

    @_media_tag("#EXT-X-BYTERANGE")
    def _byterange(self, value: str) -> None:
        length, at, offset = value.strip().partition("@")
        try:
            byterange = (int(length), int(offset) if at else None)
        except ValueError:
            self.problem(f"#EXT-X-BYTERANGE {value!r} is not <length>[@<offset>]")
            return
        if byterange[0] <= 0 or (byterange[1] is not None and byterange[1] < 0):
            self.problem(f"#EXT-X-BYTERANGE {value!r} must have a positive length")
            return
        self.byterange = byterange

    @_media_tag("#EXT-X-KEY")
    def _key(self, value: str) -> None:
        try:
            key = self._parse_key(value, "#EXT-X-KEY")
        except ValueError as exc:
            self.key_problem = f"line {self.lineno}: {exc}"
            return
        self.key_problem = None
        if key is None:
            self.keys = {}
        else:
            self.keys[key.format_name] = key
        self.keys_tuple = tuple(self.keys.values())

    def _parse_key(self, value: str, tag: str) -> Key | None:
        return parse_key(value, tag, self.resolve)

    @_media_tag("#EXT-X-MAP")
    def _map(self, value: str) -> None:
        try:
            pairs = parse_attributes(value)
        except ValueError as exc:
            self.map_problem = f"line {self.lineno}: #EXT-X-MAP: {exc}"
            return
        attrs = {name: unquote(raw) for name, raw in pairs}
        if "URI" not in attrs:
            self.map_problem = f"line {self.lineno}: #EXT-X-MAP has no URI"
            return
        byterange = None
        if "BYTERANGE" in attrs:
            length, at, offset = attrs["BYTERANGE"].partition("@")
            try:
                # A MAP range without an offset starts at byte 0 (there is no previous segment to follow).
                byterange = ByteRange(int(length), int(offset) if at else 0)
            except ValueError:
                self.map_problem = (
                    f"line {self.lineno}: #EXT-X-MAP BYTERANGE {attrs['BYTERANGE']!r}"
                    " is not <length>[@<offset>]"
                )
                return
        self.map_problem = None
        self.map = InitSection(
            uri=self.resolve(attrs["URI"]),
            byterange=byterange,
            keys=self.keys_tuple,
            attributes=_absolute_uris(pairs, self.resolve, _URI),
        )

    @_media_tag("#EXT-X-DISCONTINUITY")
    def _discontinuity(self, value: str) -> None:
        self.discontinuity = True

    @_media_tag("#EXT-X-GAP")
    def _gap(self, value: str) -> None:
        self.gap = True

    @_media_tag("#EXT-X-BITRATE")
    def _bitrate(self, value: str) -> None:
        # Applies to every later segment until the next one, so it is state, not a kept tag.
        if value.strip().isdigit():
            self.bitrate = value.strip()
        else:
            self.problem(f"#EXT-X-BITRATE {value!r} is not a whole number of kbit/s")

    @_media_tag("#EXT-X-CUE-OUT")
    def _cue_out(self, value: str) -> None:
        # Kept verbatim at its segment; remembered so a VOD starting inside the break can say so.
        line = f"#EXT-X-CUE-OUT:{value}" if value else "#EXT-X-CUE-OUT"
        self.keep(line)
        number = _NUMBER.search(value.partition("DURATION=")[2] or value)
        self.opening_cue = (float(number.group()) if number else None, line)

    @_media_tag("#EXT-X-CUE-IN")
    def _cue_in(self, value: str) -> None:
        self.keep(f"#EXT-X-CUE-IN:{value}" if value else "#EXT-X-CUE-IN")
        self.closing_cue = True

    @_media_tag("#EXT-X-DATERANGE")
    def _daterange(self, value: str) -> None:
        try:
            pairs = parse_attributes(value)
        except ValueError as exc:
            self.problem(f"#EXT-X-DATERANGE: {exc}")
            return
        attrs = {name: unquote(raw) for name, raw in pairs}
        if not attrs.get("ID"):
            self.problem("#EXT-X-DATERANGE has no ID")
            return
        if len(self.daterange_parts) >= MAX_DATERANGES:
            raise self.fail(f"more than {MAX_DATERANGES} #EXT-X-DATERANGE tags")
        times: dict[str, float | None] = {}
        for name, parse in (
            ("START-DATE", parse_date),
            ("END-DATE", parse_date),
            ("DURATION", float),
            ("PLANNED-DURATION", float),
        ):
            try:
                number = parse(attrs[name]) if name in attrs else None
            except ValueError:
                number = math.nan
            if number is not None and not (math.isfinite(number) and (name.endswith("DATE") or number >= 0)):
                self.problem(f"#EXT-X-DATERANGE {name} {attrs[name]!r} is not valid")
                return
            times[name] = number
        self.daterange_parts.append(
            _DateRangePart(
                id=attrs["ID"],
                attributes=list(_absolute_uris(pairs, self.resolve, _URI_ATTRIBUTES)),
                start=times["START-DATE"],
                end=times["END-DATE"],
                duration=times["DURATION"],
                planned=times["PLANNED-DURATION"],
                position=len(self.segments),
                lineno=self.lineno,
            )
        )

    @_media_tag("#EXT-X-DEFINE")
    def _define(self, value: str) -> None:
        try:
            self.variables.define({n: unquote(v) for n, v in parse_attributes(value)}, allow_import=True)
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    def other_tag(self, tag: str, line: str) -> None:
        if tag in _MASTER_TAGS:
            raise self.fail(
                "this is a master playlist where a media playlist was expected"
                " (master playlists nested in a master are not followed)"
            )
        if tag not in LIVE_ONLY_TAGS:
            self.keep(line)

    def keep(self, line: str) -> None:
        """Keep a tag for the next segment (bounded: a hostile playlist cannot pile them up)."""
        if len(self.pending_tags) < MAX_TAGS_PER_SEGMENT:
            self.pending_tags.append(line)
        elif not self.tags_overflowed:
            self.tags_overflowed = True
            self.problem(f"more than {MAX_TAGS_PER_SEGMENT} tags before one segment")

    def uri_line(self, uri: str) -> None:
        """A segment URI: the segment, with every tag since the previous one applied."""
        if self.duration_text is None:
            raise self.fail(f"segment URI {uri!r} has no #EXTINF before it")
        if len(self.segments) >= self.limits.max_segments:
            raise self.fail(f"more than {self.limits.max_segments} segments")
        absolute = self.resolve(uri)
        byterange = self._segment_byterange(absolute)
        if self.discontinuity:
            self.discontinuities += 1
        pdt = self._segment_pdt()
        msn = self.media_sequence + len(self.segments)
        self._advance_cue(msn)
        problems: tuple[str, ...] = ()
        if self.pending_problems or self.key_problem or self.map_problem:
            problems = tuple(self.pending_problems)
            problems += tuple(p for p in (self.key_problem, self.map_problem) if p)
        self.segments.append(
            Segment(
                msn=msn,
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
                tags=tuple(self.pending_tags) if self.pending_tags else (),
                bitrate=self.bitrate,
                cue=self.cue,
                problems=problems,
            )
        )
        self._reset_segment_tags()

    def _segment_byterange(self, absolute: str) -> ByteRange | None:
        """The segment's EXT-X-BYTERANGE with its offset made explicit; None for a whole resource."""
        if self.byterange is None:
            self.previous_range_uri = None
            return None
        length, offset = self.byterange
        if offset is None:
            # §4.3.2.2: without an offset the range follows the previous segment's, which must
            # be a range of the same resource; we resolve it here so output offsets are explicit.
            if self.previous_range_uri != absolute:
                raise self.fail("#EXT-X-BYTERANGE has no offset and does not follow a range of the same URI")
            offset = self.previous_range_end
        self.previous_range_uri, self.previous_range_end = absolute, offset + length
        return ByteRange(length, offset)

    def _segment_pdt(self) -> float | None:
        """The segment's PROGRAM-DATE-TIME: its own, or the previous one's plus its duration."""
        pdt = self.pdt
        if pdt is not None:
            if self.first_pdt_index is None:
                self.first_pdt_index = len(self.segments)
        elif self.last_pdt is not None:
            pdt = self.last_pdt + self.segments[-1].duration
        self.last_pdt = pdt
        return pdt

    def _advance_cue(self, msn: int) -> None:
        """Close the ad break a CUE-IN ended; open the one a CUE-OUT starts at this segment."""
        if self.closing_cue:
            self.cue, self.closing_cue = None, False
        if self.opening_cue is not None:
            duration, line = self.opening_cue
            self.cue, self.opening_cue = CueBreak(msn=msn, duration=duration, line=line), None

    def _reset_segment_tags(self) -> None:
        """Forget the tags that applied to the segment just added (the playlist-wide ones stay)."""
        self.duration_text, self.title, self.byterange = None, "", None
        self.discontinuity = self.gap = False
        self.pdt = self.pdt_text = None
        if self.pending_tags:
            self.pending_tags = []
            self.tags_overflowed = False
        if self.pending_problems:
            self.pending_problems = []

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

    @_media_tag("#EXT-X-TARGETDURATION")
    def _target_duration(self, value: str) -> None:
        try:
            self.target_duration = int(value.strip())
        except ValueError:
            raise self.fail(f"#EXT-X-TARGETDURATION {value!r} is not an integer") from None
        if not 0 < self.target_duration <= MAX_SEGMENT_DURATION:
            raise self.fail(
                f"#EXT-X-TARGETDURATION {value!r} must be a positive number of seconds up to a day"
            )

    @_media_tag("#EXT-X-MEDIA-SEQUENCE")
    def _media_sequence(self, value: str) -> None:
        self.media_sequence = self._header_int(value, "#EXT-X-MEDIA-SEQUENCE")

    @_media_tag("#EXT-X-DISCONTINUITY-SEQUENCE")
    def _discontinuity_sequence(self, value: str) -> None:
        self.discontinuity_sequence = self._header_int(value, "#EXT-X-DISCONTINUITY-SEQUENCE")

    @_media_tag("#EXT-X-VERSION")
    def _version(self, value: str) -> None:
        self.version = self._header_int(value, "#EXT-X-VERSION")

    @_media_tag("#EXT-X-PLAYLIST-TYPE")
    def _playlist_type(self, value: str) -> None:
        self.playlist_type = value.strip().upper()

    @_media_tag("#EXT-X-INDEPENDENT-SEGMENTS")
    def _independent(self, value: str) -> None:
        self.independent = True

    @_media_tag("#EXT-X-I-FRAMES-ONLY")
    def _iframes_only(self, value: str) -> None:
        self.iframes_only = True

    @_media_tag("#EXT-X-START")
    def _start(self, value: str) -> None:
        self.start_tag = value.strip()

    @_media_tag("#EXT-X-ENDLIST")
    def _endlist(self, value: str) -> None:
        self.ended = True

    @_media_tag("#EXT-X-SKIP")
    def _skip(self, value: str) -> None:
        raise self.fail("#EXT-X-SKIP (a delta update) hides segments; request the full playlist")

    # -- program date-time

    def _backfill_pdt(self) -> tuple[Segment, ...]:
        """The segments with every PDT in place.

        Rule: a segment's PDT is its own EXT-X-PROGRAM-DATE-TIME, else the previous segment's PDT
        plus the previous EXTINF (summed in uri_line). The sum continues across an
        EXT-X-DISCONTINUITY that has no PDT of its own: nothing better is known, and origins whose
        clock jumps put a PDT there. Segments before the first explicit PDT count back from it by
        their own EXTINF. With no PDT at all every `pdt` stays None and the planner aligns the
        playlist to a sibling rendition (see hls.window.align_to).
        """
        first = self.first_pdt_index
        segments = self.segments
        if first:
            current = segments[first].pdt or 0.0
            for i in range(first - 1, -1, -1):
                current -= segments[i].duration
                segments[i] = dataclasses.replace(segments[i], pdt=current)
        return tuple(segments)


def parse_key(value: str, tag: str, resolve: UriResolver) -> Key | None:
    """An EXT-X-KEY / EXT-X-SESSION-KEY attribute list; None for METHOD=NONE. Raises ValueError."""
    try:
        pairs = parse_attributes(value)
    except ValueError as exc:
        raise ValueError(f"{tag}: {exc}") from None
    attrs = {name: unquote(raw) for name, raw in pairs}
    method = attrs.get("METHOD", "")
    if method not in KEY_METHODS:
        raise ValueError(f"{tag} METHOD {method!r} is not one of {', '.join(sorted(KEY_METHODS))}")
    if method == "NONE":
        return None
    if "URI" not in attrs:
        raise ValueError(f"{tag} METHOD={method} has no URI")
    return Key(
        method=method,
        uri=resolve(attrs["URI"]),
        iv=attrs.get("IV"),
        keyformat=attrs.get("KEYFORMAT"),
        keyformatversions=attrs.get("KEYFORMATVERSIONS"),
        attributes=_absolute_uris(pairs, resolve, _URI),
    )


def _merge_dateranges(parts: list[_DateRangePart], segments: tuple[Segment, ...]) -> tuple[DateRange, ...]:
    """One DateRange per ID: the tags of one ID merged (RFC 8216bis §4.4.5.1), times resolved.

    A later tag adds attributes and may update one (a closing tag brings END-DATE, DURATION and
    SCTE35-IN). Unknown times are derived where the playlist allows: start = END-DATE - DURATION;
    a closing tag with only DURATION ends where it stands (the PDT of the segment it precedes);
    END-ON-NEXT=YES ends where the next range of the same CLASS starts. When the start is known
    but the tags never said START-DATE, it is added, so every written tag is valid on its own.
    """
    if not parts:
        return ()
    merged: dict[str, _DateRangePart] = {}
    for part in parts:
        known = merged.get(part.id)
        if known is None:
            merged[part.id] = dataclasses.replace(part, attributes=list(part.attributes))
        else:
            _merge_part(known, part)
    ranges: list[DateRange] = []
    for part in merged.values():
        start, end = _resolved_times(part, segments)
        attributes = tuple(part.attributes)
        if start is not None and not any(name == "START-DATE" for name, _ in attributes):
            try:
                written = format_date(start)
            except (ValueError, OverflowError, OSError):  # a derived start outside any calendar
                continue
            attributes = (attributes[0], ("START-DATE", f'"{written}"'), *attributes[1:])
        ranges.append(DateRange(id=part.id, start=start, end=end, attributes=attributes, lineno=part.lineno))
    return _end_on_next(ranges)


def _merge_part(known: _DateRangePart, part: _DateRangePart) -> None:
    """Fold a later tag of the same ID into `known`: attributes added or updated, times filled."""
    names = [name for name, _ in known.attributes]
    for name, value in part.attributes:
        if name in names:
            known.attributes[names.index(name)] = (name, value)
        else:
            known.attributes.append((name, value))
            names.append(name)
    known.start = known.start if known.start is not None else part.start
    known.end = part.end if part.end is not None else known.end
    known.duration = part.duration if part.duration is not None else known.duration
    known.planned = part.planned if part.planned is not None else known.planned
    if known.start is None and part.duration is not None and part.end is None:
        known.position = part.position  # a closing tag: it marks where the range ended


def _resolved_times(part: _DateRangePart, segments: tuple[Segment, ...]) -> tuple[float | None, float | None]:
    """(start, end) of a merged range, each derived from the others where the playlist allows."""
    start, end = part.start, part.end
    if start is None and end is None and part.duration is not None:
        end = _pdt_at(segments, part.position)
    if start is None and end is not None and part.duration is not None:
        start = end - part.duration
    if end is None and start is not None:
        if part.duration is not None:
            end = start + part.duration
        elif part.planned is not None:
            end = start + part.planned
    return start, end


def _pdt_at(segments: tuple[Segment, ...], position: int) -> float | None:
    if position < len(segments):
        return segments[position].pdt
    return segments[-1].end if segments and segments[-1].pdt is not None else None


def _end_on_next(ranges: list[DateRange]) -> tuple[DateRange, ...]:
    def attribute(daterange: DateRange, name: str) -> str | None:
        return next((unquote(v) for n, v in daterange.attributes if n == name), None)

    out = []
    for i, daterange in enumerate(ranges):
        if daterange.end is None and attribute(daterange, "END-ON-NEXT") == "YES":
            cls = attribute(daterange, "CLASS")
            following = [
                other.start
                for other in ranges[i + 1 :]
                if other.start is not None and attribute(other, "CLASS") == cls
            ]
            if following:
                daterange = dataclasses.replace(daterange, end=following[0])
        out.append(daterange)
    return tuple(out)


def parse_media(
    text: str,
    url: str,
    *,
    imports: Mapping[str, str] | None = None,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> MediaPlaylist:
    """Parse a media playlist; URIs come back absolute (resolved against `url`).

    `url` must be the playlist's final URL (after any redirect); `imports` are the master's
    EXT-X-DEFINE variables, for EXT-X-DEFINE:IMPORT.
    """
    return _MediaScanner(text, url, limits, imports).run()


# --- master playlists ---------------------------------------------------------------------------

_MASTER_TAG_HANDLERS = TagRegistry()
_master_tag = _MASTER_TAG_HANDLERS.tag


class _MasterScanner(_Scanner):
    def __init__(self, text: str, url: str, limits: ParseLimits) -> None:
        super().__init__(text, url, limits, None)
        self.version: int | None = None
        self.independent = False
        self.start_tag: str | None = None
        self.steering: Attributes | None = None
        self.variants: list[Variant] = []
        self.iframes: list[IFrameStream] = []
        self.media: list[Rendition] = []
        self.session_data: list[Attributes] = []
        self.session_keys: list[Key] = []
        self.other_tags: list[str] = []
        self.stream_inf: tuple[int, list[tuple[str, str]]] | None = None

    def attributes(self, value: str) -> list[tuple[str, str]]:
        try:
            return parse_attributes(value)
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    def run(self) -> MasterPlaylist:
        self.scan(_MASTER_TAG_HANDLERS)
        if self.stream_inf is not None:
            raise PlaylistError(f"playlist {self.url}: an #EXT-X-STREAM-INF has no URI line after it")
        if not self.variants and not self.iframes:
            raise PlaylistError(f"playlist {self.url} is a master playlist with no variant streams")
        return MasterPlaylist(
            url=self.url,
            version=self.version,
            independent_segments=self.independent,
            variants=tuple(self.variants),
            iframe_streams=tuple(self.iframes),
            media=tuple(self.media),
            session_data=tuple(self.session_data),
            session_keys=tuple(self.session_keys),
            start_tag=self.start_tag,
            other_tags=tuple(self.other_tags),
            variables=tuple(self.variables.values.items()),
            steering=self.steering,
        )

    def _count_variants(self) -> None:
        if len(self.variants) + len(self.iframes) >= self.limits.max_variants:
            raise self.fail(
                f"more than {self.limits.max_variants} variant streams (the limit, HARVEST_MAX_VARIANTS)"
            )

    def other_tag(self, tag: str, line: str) -> None:
        if tag != "#EXTM3U":
            self.other_tags.append(line)

    def uri_line(self, uri: str) -> None:
        if self.stream_inf is None:
            raise self.fail(f"URI {uri!r} has no #EXT-X-STREAM-INF before it")
        lineno, pairs = self.stream_inf
        self.stream_inf = None
        attrs = {name: unquote(raw) for name, raw in pairs}
        if "BANDWIDTH" not in attrs:
            raise PlaylistError(f"playlist {self.url} line {lineno}: #EXT-X-STREAM-INF has no BANDWIDTH")
        self.variants.append(
            Variant(
                uri=self.resolve(uri),
                attributes=tuple(pairs),
                bandwidth=self._int(attrs["BANDWIDTH"], "BANDWIDTH", lineno),
                resolution=attrs.get("RESOLUTION"),
                pathway=attrs.get("PATHWAY-ID", "."),
            )
        )

    def _int(self, text: str, name: str, lineno: int) -> int:
        try:
            return int(text)
        except ValueError:
            raise PlaylistError(
                f"playlist {self.url} line {lineno}: {name} {text!r} is not an integer"
            ) from None

    @_master_tag("#EXT-X-STREAM-INF")
    def _stream_inf(self, value: str) -> None:
        self._count_variants()
        self.stream_inf = (self.lineno, self.attributes(value))

    @_master_tag("#EXT-X-I-FRAME-STREAM-INF")
    def _iframe_stream(self, value: str) -> None:
        self._count_variants()
        pairs = self.attributes(value)
        attrs = {name: unquote(raw) for name, raw in pairs}
        if not attrs.get("URI"):
            raise self.fail("#EXT-X-I-FRAME-STREAM-INF has no URI")
        self.iframes.append(
            IFrameStream(
                uri=self.resolve(attrs["URI"]),
                attributes=tuple(pairs),  # URI stays in place; the renderer replaces its value
                bandwidth=self._int(attrs.get("BANDWIDTH", "0"), "BANDWIDTH", self.lineno),
                resolution=attrs.get("RESOLUTION"),
                pathway=attrs.get("PATHWAY-ID", "."),
            )
        )

    @_master_tag("#EXT-X-MEDIA")
    def _media(self, value: str) -> None:
        if len(self.media) >= self.limits.max_renditions:
            raise self.fail(
                f"more than {self.limits.max_renditions} renditions (the limit, HARVEST_MAX_RENDITIONS)"
            )
        pairs = self.attributes(value)
        attrs = {name: unquote(raw) for name, raw in pairs}
        if not attrs.get("TYPE") or not attrs.get("GROUP-ID") or not attrs.get("NAME"):
            raise self.fail("#EXT-X-MEDIA needs TYPE, GROUP-ID and NAME")
        uri = attrs.get("URI")
        if attrs["TYPE"] == "CLOSED-CAPTIONS":
            # §4.3.4.1: CLOSED-CAPTIONS must not have a URI (the captions are in the video); one
            # written anyway points at nothing we could harvest, so it is dropped.
            uri = None
            pairs = [(name, raw) for name, raw in pairs if name != "URI"]
        self.media.append(
            Rendition(
                type=attrs["TYPE"],
                group_id=attrs["GROUP-ID"],
                name=attrs["NAME"],
                language=attrs.get("LANGUAGE"),
                uri=self.resolve(uri) if uri else None,
                attributes=_absolute_uris(pairs, self.resolve, _URI),
            )
        )

    @_master_tag("#EXT-X-VERSION")
    def _version(self, value: str) -> None:
        self.version = self._int(value.strip(), "#EXT-X-VERSION", self.lineno)

    @_master_tag("#EXT-X-INDEPENDENT-SEGMENTS")
    def _independent(self, value: str) -> None:
        self.independent = True

    @_master_tag("#EXT-X-START")
    def _start(self, value: str) -> None:
        self.start_tag = value.strip()

    @_master_tag("#EXT-X-DEFINE")
    def _define(self, value: str) -> None:
        try:
            attrs = {n: unquote(v) for n, v in parse_attributes(value)}
            self.variables.define(attrs, allow_import=False)
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    @_master_tag("#EXT-X-SESSION-DATA")
    def _session_data(self, value: str) -> None:
        self.session_data.append(_absolute_uris(self.attributes(value), self.resolve, _URI))

    @_master_tag("#EXT-X-SESSION-KEY")
    def _session_key(self, value: str) -> None:
        try:
            key = parse_key(value, "#EXT-X-SESSION-KEY", self.resolve)
        except ValueError as exc:
            raise self.fail(str(exc)) from None
        if key is None:
            raise self.fail("#EXT-X-SESSION-KEY must not have METHOD=NONE")
        self.session_keys.append(key)

    @_master_tag("#EXT-X-CONTENT-STEERING")
    def _steering(self, value: str) -> None:
        self.steering = tuple(self.attributes(value))


def parse_master(text: str, url: str, *, limits: ParseLimits = DEFAULT_LIMITS) -> MasterPlaylist:
    """Parse a master (multivariant) playlist; URIs come back absolute (against the final `url`)."""
    return _MasterScanner(text, url, limits).run()
