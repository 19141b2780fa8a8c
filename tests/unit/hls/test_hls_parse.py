"""Parsing media and master playlists into the typed model."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest
from hls_playlists import (
    BASE,
    LOW_LATENCY,
    MASTER,
    MASTER_URL,
    ORIGIN,
    Seg,
    iso,
    media,
    single_file_fmp4,
    steady,
    with_tags,
)

from harvest.errors import PlaylistError
from harvest.hls.model import ByteRange, InitSection, Key
from harvest.hls.parse import (
    ParseLimits,
    UriResolver,
    format_attributes,
    is_master,
    parse_master,
    parse_media,
)

URL = f"{ORIGIN}/v360/index.m3u8?token=abc"


def bare(value: Key | InitSection | None) -> Key | InitSection | None:
    """The value without its raw attribute list (compared field by field elsewhere)."""
    if isinstance(value, InitSection):
        return dataclasses.replace(
            value, attributes=(), keys=tuple(dataclasses.replace(k, attributes=()) for k in value.keys)
        )
    return dataclasses.replace(value, attributes=()) if value is not None else None


def test_segments_get_absolute_uris_exact_extinf_text_and_sequence_numbers() -> None:
    # GIVEN segments addressed in every way a playlist may address them
    text = media(
        [
            Seg("seg_7.ts", duration="5.005", pdt=BASE, title="first"),
            Seg("../other/seg_8.ts", duration="6"),
            Seg("/root/seg_9.ts", duration="4.50000"),
            Seg("https://cdn.example/seg_10.ts?sig=1", duration="6.0"),
        ],
        msn=7,
    )
    # WHEN it is parsed
    playlist = parse_media(text, URL)
    # THEN every URI is absolute, EXTINF text is kept verbatim and MSNs count from the header
    assert [s.uri for s in playlist.segments] == [
        f"{ORIGIN}/v360/seg_7.ts",
        f"{ORIGIN}/other/seg_8.ts",
        "http://127.0.0.1:9/root/seg_9.ts",
        "https://cdn.example/seg_10.ts?sig=1",
    ]
    assert [s.duration_text for s in playlist.segments] == ["5.005", "6", "4.50000", "6.0"]
    assert [s.duration for s in playlist.segments] == [5.005, 6.0, 4.5, 6.0]
    assert [s.msn for s in playlist.segments] == [7, 8, 9, 10]
    assert playlist.segments[0].title == "first"
    assert playlist.target_duration == 6
    assert playlist.media_sequence == 7
    assert not playlist.ended


@pytest.mark.parametrize(
    ("base", "uri", "expected"),
    [
        ("http://h/a/b.m3u8", "c.ts", "http://h/a/c.ts"),
        ("http://h/a/b.m3u8?x=1", "c.ts", "http://h/a/c.ts"),
        ("http://h/a/b.m3u8", "d/c.ts", "http://h/a/d/c.ts"),
        ("http://h/a/b.m3u8", "./c.ts", "http://h/a/c.ts"),
        ("http://h/a/b.m3u8", "../c.ts", "http://h/c.ts"),
        ("http://h/a/b.m3u8", "?part=2", "http://h/a/b.m3u8?part=2"),
        ("http://h", "c.ts", "http://h/c.ts"),
        ("http://h/a/", "skd://key-id", "skd://key-id"),
        ("http://h/a/", "data:text/plain;base64,AAAA", "data:text/plain;base64,AAAA"),
    ],
)
def test_uri_resolution_matches_urljoin(base: str, uri: str, expected: str) -> None:
    # GIVEN a playlist URL and a URI in it / WHEN resolved / THEN the result is the RFC 3986 one
    assert UriResolver(base)(uri) == expected


def test_implicit_byterange_offsets_are_resolved_from_the_previous_range() -> None:
    # GIVEN a single-file fMP4 playlist where every other BYTERANGE has no offset
    playlist = parse_media(single_file_fmp4(4), URL)
    # WHEN parsed / THEN every range has its explicit offset, and the MAP range is kept
    assert [s.byterange for s in playlist.segments] == [
        ByteRange(5000, 1000),
        ByteRange(5000, 6000),
        ByteRange(5000, 11000),
        ByteRange(5000, 16000),
    ]
    assert bare(playlist.segments[0].map) == InitSection(f"{ORIGIN}/v360/main.mp4", ByteRange(800, 0), ())


def test_implicit_byterange_without_a_previous_range_of_the_same_uri_is_an_error() -> None:
    # GIVEN an offset-less range whose predecessor is another resource
    text = media(
        [
            Seg("a.mp4", pdt=BASE, before=("#EXT-X-BYTERANGE:10@0",)),
            Seg("b.mp4", before=("#EXT-X-BYTERANGE:10",)),
        ]
    )
    # WHEN parsed / THEN the error names the URL and the line of the segment URI (line 9)
    with pytest.raises(PlaylistError, match=r"index\.m3u8\?token=abc line 9: #EXT-X-BYTERANGE has no offset"):
        parse_media(text, URL)


def test_keys_are_tracked_per_keyformat_and_method_none_clears_them() -> None:
    # GIVEN two key formats in force, a rotation of one, then METHOD=NONE
    fairplay = (
        'METHOD=SAMPLE-AES,URI="skd://k1",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"'
    )
    segs = steady(4, pdt="first")
    segs = with_tags(segs, 0, '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="k1.key"', f"#EXT-X-KEY:{fairplay}")
    segs = with_tags(
        segs, 2, '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="k2.key",IV=0x0000000000000000000000000000002A'
    )
    segs = with_tags(segs, 3, "#EXT-X-KEY:METHOD=NONE")
    playlist = parse_media(media(segs), URL)
    # THEN each segment holds the key in force for each format, in order of first appearance
    k1 = Key("SAMPLE-AES", f"{ORIGIN}/v360/k1.key")
    fp = Key("SAMPLE-AES", "skd://k1", None, "com.apple.streamingkeydelivery", "1")
    k2 = Key("SAMPLE-AES", f"{ORIGIN}/v360/k2.key", "0x0000000000000000000000000000002A")
    assert [tuple(bare(k) for k in s.keys) for s in playlist.segments] == [(k1, fp), (k1, fp), (k2, fp), ()]
    assert bare(playlist.segments[2].key) == k2


def test_an_init_section_remembers_the_keys_in_force_where_it_was_declared() -> None:
    # GIVEN a key, then a MAP (an encrypted init section), then a key rotation
    segs = with_tags(steady(3), 0, '#EXT-X-KEY:METHOD=AES-128,URI="k1",IV=0x01', '#EXT-X-MAP:URI="init.mp4"')
    segs = with_tags(segs, 2, '#EXT-X-KEY:METHOD=AES-128,URI="k2",IV=0x02')
    playlist = parse_media(media(segs), URL)
    # THEN the init section of the last segment still carries k1, while the segment has k2
    last = playlist.segments[2]
    assert last.map is not None
    assert [bare(k) for k in last.map.keys] == [Key("AES-128", f"{ORIGIN}/v360/k1", "0x01")]
    assert [bare(k) for k in last.keys] == [Key("AES-128", f"{ORIGIN}/v360/k2", "0x02")]


def test_discontinuities_gap_and_dateranges_are_attached_to_their_segments() -> None:
    # GIVEN a DSN header, two discontinuities, a GAP and date ranges (one after the last segment)
    daterange = f'ID="ad1",START-DATE="{iso(BASE + 6)}",DURATION=30.0'
    segs = with_tags(steady(5), 1, "#EXT-X-DISCONTINUITY", f"#EXT-X-DATERANGE:{daterange}")
    segs = with_tags(segs, 3, "#EXT-X-DISCONTINUITY", "#EXT-X-GAP")
    text = media(
        segs, dsn=4, trailer=[f'#EXT-X-DATERANGE:ID="late",START-DATE="{iso(BASE + 40)}"'], ended=True
    )
    # WHEN parsed
    playlist = parse_media(text, URL)
    # THEN the DSN counts every discontinuity, GAP marks one segment, date ranges keep their times
    assert [s.discontinuity_seq for s in playlist.segments] == [4, 5, 5, 6, 6]
    assert [s.discontinuity for s in playlist.segments] == [False, True, False, True, False]
    assert [s.gap for s in playlist.segments] == [False, False, False, True, False]
    assert [(d.id, d.start, d.end) for d in playlist.dateranges] == [
        ("ad1", BASE + 6, BASE + 36),
        ("late", BASE + 40, None),
    ]
    assert format_attributes(playlist.dateranges[0].attributes) == daterange
    assert playlist.ended


def test_low_latency_parts_are_ignored_and_parent_segments_kept() -> None:
    # GIVEN an LL-HLS playlist with parts, a preload hint and a trailing partial segment
    playlist = parse_media(LOW_LATENCY, URL)
    # THEN only the two complete parent segments come back
    assert [(s.msn, s.uri.rsplit("/", 1)[1]) for s in playlist.segments] == [(50, "s50.m4s"), (51, "s51.m4s")]


# --- PDT ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segs", "expected"),
    [
        # explicit on every segment: taken as written (even when it disagrees with EXTINF)
        ([Seg("a", "6", BASE), Seg("b", "6", BASE + 7), Seg("c", "6", BASE + 13)], [0, 7, 13]),
        # only on the first: summed forward
        ([Seg("a", "6", BASE), Seg("b", "4.5"), Seg("c", "6")], [0, 6, 10.5]),
        # only in the middle: counted back for the earlier segments
        ([Seg("a", "6"), Seg("b", "4.5"), Seg("c", "6", BASE), Seg("d", "2")], [-10.5, -4.5, 0, 6]),
        # a discontinuity without its own PDT keeps summing
        ([Seg("a", "6", BASE), Seg("b", "6", before=("#EXT-X-DISCONTINUITY",)), Seg("c", "6")], [0, 6, 12]),
        # an explicit PDT after a discontinuity restarts the clock there
        (
            [Seg("a", "6", BASE), Seg("b", "6", BASE + 100, before=("#EXT-X-DISCONTINUITY",)), Seg("c", "6")],
            [0, 100, 106],
        ),
    ],
)
def test_program_date_time_of_every_segment(segs: list[Seg], expected: list[float]) -> None:
    # GIVEN segments with PDT on some of them / WHEN parsed
    playlist = parse_media(media(segs), URL)
    # THEN every segment has a PDT relative to BASE as the documented rule says
    assert [s.pdt - BASE for s in playlist.segments if s.pdt is not None] == pytest.approx(expected)


def test_pdt_text_is_kept_for_explicit_tags_only() -> None:
    text = media([Seg("a", "6"), Seg("b", "6")], header=[]).replace(
        "#EXTINF:6,\nb", "#EXT-X-PROGRAM-DATE-TIME:2023-11-15T06:13:26.000+08:00\n#EXTINF:6,\nb"
    )
    playlist = parse_media(text, URL)
    assert [s.pdt_text for s in playlist.segments] == [None, "2023-11-15T06:13:26.000+08:00"]
    assert [s.pdt for s in playlist.segments] == [BASE, BASE + 6]


def test_a_playlist_without_pdt_parses_with_no_times() -> None:
    playlist = parse_media(media(steady(3, pdt="none")), URL)
    assert not playlist.has_pdt
    assert all(s.pdt is None for s in playlist.segments)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("#EXTINF:6,\na.ts\n", r"line 1: does not start with #EXTM3U"),
        ("#EXTM3U\n#EXTINF:6,\na.ts\n", r"has no #EXT-X-TARGETDURATION"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:-6,\na.ts\n", r"line 3: #EXTINF duration '-6'"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:nan,\na.ts\n", r"line 3: #EXTINF duration 'nan'"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:inf,\na.ts\n", r"line 3: #EXTINF duration 'inf'"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:86401,\na.ts\n", r"line 3: #EXTINF duration '86401'"),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:six,\na.ts\n",
            r"line 3: #EXTINF duration 'six' is not a number",
        ),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:6\na.ts\n", r"line 3: segment URI 'a.ts' has no #EXTINF"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\n", r"line 3: the playlist ends with an #EXTINF"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-SKIP:SKIPPED-SEGMENTS=10\n", r"line 3: #EXT-X-SKIP"),
        (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n",
            r"line 2: this is a master playlist where a media playlist was expected",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na.ts\n#EXT-X-MEDIA-SEQUENCE:5\n",
            r"line 5: #EXT-X-MEDIA-SEQUENCE must come before the first segment",
        ),
    ],
)
def test_malformed_media_playlists_are_rejected_with_url_and_line(text: str, message: str) -> None:
    # GIVEN a broken playlist / WHEN parsed / THEN a PlaylistError names the URL and what is wrong
    with pytest.raises(PlaylistError, match=message) as caught:
        parse_media(text, URL)
    assert URL in caught.value.message


def test_too_many_segments_are_rejected() -> None:
    # GIVEN a segment limit of 3 (the real one is 200,000) and a 4-segment playlist
    with pytest.raises(PlaylistError, match="more than 3 segments"):
        parse_media(media(steady(4)), URL, limits=ParseLimits(max_segments=3))


def test_oversized_playlist_text_is_rejected_before_parsing() -> None:
    limits = ParseLimits(max_chars=100)
    text = media(steady(4))
    with pytest.raises(PlaylistError, match=rf"is {len(text)} characters, more than the 100 allowed"):
        parse_media(text, URL, limits=limits)
    with pytest.raises(PlaylistError, match="more than the 100 allowed"):
        parse_master(MASTER, MASTER_URL, limits=limits)


# --- master -------------------------------------------------------------------------------------


def test_master_keeps_every_attribute_as_written_and_resolves_uris() -> None:
    # GIVEN a master with variants, audio, subtitles, closed captions, I-frames and session data
    master = parse_master(MASTER, MASTER_URL)
    # THEN variants keep their raw attributes (unknown X-CUSTOM included) and absolute URIs
    assert [v.uri for v in master.variants] == [f"{ORIGIN}/v360/index.m3u8", f"{ORIGIN}/v720/index.m3u8"]
    assert master.variants[0].bandwidth == 800000
    assert master.variants[0].resolution == "640x360"
    assert ("X-CUSTOM", "keep") in master.variants[0].attributes
    assert ("CLOSED-CAPTIONS", '"cc"') in master.variants[0].attributes
    assert [i.uri for i in master.iframe_streams] == [f"{ORIGIN}/v360/iframes.m3u8"]
    # AND the renditions, closed captions without a URI
    assert [(m.type, m.group_id, m.language, m.uri) for m in master.media] == [
        ("AUDIO", "aac", "en", f"{ORIGIN}/audio/en.m3u8"),
        ("SUBTITLES", "subs", "en", f"{ORIGIN}/subs/en.m3u8"),
        ("CLOSED-CAPTIONS", "cc", "en", None),
    ]
    assert master.independent_segments
    assert master.version == 6
    assert [format_attributes(data) for data in master.session_data] == [
        f'DATA-ID="com.example.title",URI="{ORIGIN}/title.json"'
    ]


def test_is_master_tells_master_from_media() -> None:
    assert is_master(MASTER)
    assert not is_master(media(steady(2)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1x1\n", r"has no URI line after it"),
        (
            "#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\nv.m3u8\n",
            r"line 2: #EXT-X-STREAM-INF has no BANDWIDTH",
        ),
        (
            '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="avc1\nv.m3u8\n',
            r"line 2: malformed attribute list",
        ),
        (
            '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,NAME="a"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n',
            r"line 2: .*GROUP-ID",
        ),
        ("#EXTM3U\n#EXT-X-VERSION:6\n", r"master playlist with no variant streams"),
    ],
)
def test_malformed_master_playlists_are_rejected(text: str, message: str) -> None:
    with pytest.raises(PlaylistError, match=message):
        parse_master(text, MASTER_URL)


def test_a_byte_order_mark_and_crlf_line_endings_are_accepted() -> None:
    # GIVEN a playlist saved by a Windows tool: BOM first, CRLF line ends
    text = "\ufeff" + media(steady(3)).replace("\n", "\r\n")
    # WHEN parsed / THEN it reads like the plain one
    assert parse_media(text, URL).segments == parse_media(media(steady(3)), URL).segments
    windows_master = "\ufeff" + MASTER.replace("\n", "\r\n")
    assert parse_master(windows_master, MASTER_URL) == parse_master(MASTER, MASTER_URL)


def test_ffmpegs_program_date_time_is_read_on_every_python() -> None:
    # GIVEN a live playlist as ffmpeg's hls muxer writes it (-hls_flags program_date_time): the
    # offset without a colon, which Python 3.10's fromisoformat (SCF's runtime) refuses
    text = (
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        "#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-30T16:23:44.068+0000\nseg_000.ts\n"
        "#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-30T16:23:46.068+0000\nseg_001.ts\n"
    )
    # WHEN it is parsed
    playlist = parse_media(text, "http://origin/live/index.m3u8")
    # THEN every segment has its time, and nothing was flagged
    first = datetime(2026, 11, 30, 16, 23, 44, 68000, timezone.utc).timestamp()
    assert [segment.pdt for segment in playlist.segments] == pytest.approx([first, first + 2.0])
    assert [segment.pdt_text for segment in playlist.segments] == [
        "2026-11-30T16:23:44.068+0000",
        "2026-11-30T16:23:46.068+0000",
    ]
    assert [segment.problems for segment in playlist.segments] == [(), ()]
