"""The typed HLS model: what the harvester reads from live playlists and writes back as VOD.

Values are frozen so a parsed playlist can be shared by the window selection, the planner and
the renderer without anyone changing it underneath the others. Times are epoch seconds (floats).
Section numbers are RFC 8216 (https://datatracker.ietf.org/doc/html/rfc8216).
"""

from __future__ import annotations

from dataclasses import dataclass

# (NAME, value exactly as written, quotes included): master attributes are written back unchanged
# except for URI, so attributes this code does not know about survive the harvest.
Attributes = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A sub-range of a resource (§4.3.2.2); the offset is always resolved, never implicit."""

    length: int
    offset: int

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True, slots=True)
class Key:
    """An EXT-X-KEY (§4.3.2.4). `uri` is absolute; `keyformat` None means the implicit "identity".

    `attributes` is the whole attribute list as written (URI made absolute): the renderer writes it
    back with only URI replaced, so KEYID and any attribute this code does not know survive.
    """

    method: str
    uri: str | None
    iv: str | None = None  # needs EXT-X-VERSION >= 2
    keyformat: str | None = None  # KEYFORMAT(VERSIONS) need EXT-X-VERSION >= 5
    keyformatversions: str | None = None
    attributes: Attributes = ()

    @property
    def format_name(self) -> str:
        return self.keyformat or "identity"


@dataclass(frozen=True, slots=True)
class InitSection:
    """An EXT-X-MAP (§4.3.2.5) with the keys that were in force where it appeared.

    Keeping `keys` lets the renderer reproduce whether the init section itself was encrypted,
    even when the window starts after a later key rotation.
    """

    uri: str
    byterange: ByteRange | None = None
    keys: tuple[Key, ...] = ()
    attributes: Attributes = ()  # as written (URI absolute); URI and BYTERANGE are rewritten


@dataclass(frozen=True, slots=True)
class DateRange:
    """An EXT-X-DATERANGE (§4.3.2.7), every tag of one ID merged into one (RFC 8216bis §4.4.5.1).

    `start`/`end` are epoch seconds; either may be unknown (None): a closing tag whose opening slid
    out of the live window has no START-DATE, an open break has no end yet. `attributes` is the
    merged attribute list as written (interstitial X-ASSET-URI / X-ASSET-LIST made absolute).
    """

    id: str
    start: float | None
    end: float | None
    attributes: Attributes
    lineno: int = 0  # where the first tag of this ID was


@dataclass(frozen=True, slots=True)
class CueBreak:
    """An ad break opened by #EXT-X-CUE-OUT and not yet closed by #EXT-X-CUE-IN."""

    msn: int  # the segment the CUE-OUT preceded: the break's first segment
    duration: float | None  # the CUE-OUT's duration, when it gave one
    line: str


# Not frozen, though nothing changes a Segment once made (dataclasses.replace makes new ones): a
# frozen dataclass sets each of these 17 fields through object.__setattr__, 2.1 us a segment against
# 0.5, and a 24 h playlist makes 14,400 of them (a sixth of planning it; bench/README.md, round 4).
# unsafe_hash keeps it hashable and equal by value, as frozen made it.
@dataclass(slots=True, unsafe_hash=True)
class Segment:
    """One media segment with every tag that applies to it resolved (§4.3.2).

    `pdt` is the epoch time of its first sample: the explicit EXT-X-PROGRAM-DATE-TIME or one computed
    from its neighbours (see hls.parse); `pdt_text` holds the explicit tag's text when there was one.
    `keys` holds the EXT-X-KEY in force for each KEYFORMAT (empty: not encrypted).
    """

    msn: int
    uri: str
    duration: float
    duration_text: str  # the EXTINF value as written, so the output repeats it byte for byte
    title: str = ""
    byterange: ByteRange | None = None
    discontinuity: bool = False
    discontinuity_seq: int = 0
    pdt: float | None = None
    pdt_text: str | None = None
    keys: tuple[Key, ...] = ()
    map: InitSection | None = None
    gap: bool = False
    tags: tuple[str, ...] = ()  # tags kept verbatim at this segment (ad markers, unknown tags)
    bitrate: str | None = None  # the EXT-X-BITRATE in force
    cue: CueBreak | None = None  # the ad break this segment is inside, if any
    problems: tuple[str, ...] = ()  # malformed tags that apply to this segment ("line N: why")

    @property
    def end(self) -> float:
        """End of the segment on the PDT timeline; only meaningful when `pdt` is set."""
        return (self.pdt or 0.0) + self.duration

    @property
    def key(self) -> Key | None:
        """The identity-format key, or the first key in force: what AES-128 players use."""
        for key in self.keys:
            if key.keyformat is None or key.keyformat == "identity":
                return key
        return self.keys[0] if self.keys else None


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    """A media playlist (§4.3.3), parent segments only (LL-HLS parts are ignored)."""

    url: str
    target_duration: int
    media_sequence: int = 0
    discontinuity_sequence: int = 0
    version: int = 1
    playlist_type: str | None = None
    independent_segments: bool = False
    iframes_only: bool = False
    segments: tuple[Segment, ...] = ()
    dateranges: tuple[DateRange, ...] = ()  # one per ID, merged, in order of first appearance
    trailing_tags: tuple[str, ...] = ()  # kept tags after the last segment
    start_tag: str | None = None  # EXT-X-START's attribute list, as written
    ended: bool = False
    placed: bool = False  # PDTs were derived by us (aligned to a sibling), never written out
    problems: tuple[str, ...] = ()  # malformed tags after the last segment

    @property
    def has_pdt(self) -> bool:
        # Computed PDTs fill every segment once one segment has an explicit one.
        return bool(self.segments) and self.segments[0].pdt is not None


@dataclass(frozen=True, slots=True)
class Variant:
    """An EXT-X-STREAM-INF entry (§4.3.4.2)."""

    uri: str
    attributes: Attributes
    bandwidth: int
    resolution: str | None = None
    pathway: str = "."  # PATHWAY-ID (content steering); "." is the default pathway


@dataclass(frozen=True, slots=True)
class IFrameStream:
    """An EXT-X-I-FRAME-STREAM-INF entry (§4.3.4.3); `uri` is absolute, `attributes` as written."""

    uri: str
    attributes: Attributes
    bandwidth: int
    resolution: str | None = None
    pathway: str = "."


@dataclass(frozen=True, slots=True)
class Rendition:
    """An EXT-X-MEDIA entry (§4.3.4.1); CLOSED-CAPTIONS and muxed renditions have no URI."""

    type: str
    group_id: str
    name: str
    language: str | None
    uri: str | None
    attributes: Attributes


@dataclass(frozen=True, slots=True)
class MasterPlaylist:
    url: str
    version: int | None = None
    independent_segments: bool = False
    variants: tuple[Variant, ...] = ()
    iframe_streams: tuple[IFrameStream, ...] = ()
    media: tuple[Rendition, ...] = ()
    session_data: tuple[Attributes, ...] = ()  # EXT-X-SESSION-DATA, URIs made absolute
    session_keys: tuple[Key, ...] = ()  # EXT-X-SESSION-KEY
    start_tag: str | None = None  # EXT-X-START's attribute list, as written
    other_tags: tuple[str, ...] = ()  # tags this code does not know, kept verbatim
    variables: tuple[tuple[str, str], ...] = ()  # EXT-X-DEFINE values, for IMPORT by media playlists
    steering: Attributes | None = None  # EXT-X-CONTENT-STEERING (dropped from the output)
