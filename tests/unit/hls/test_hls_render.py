"""Rendering VOD media playlists and the master (anchors §5 rules)."""

from __future__ import annotations

import pytest
from hls_playlists import (
    BASE,
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
from hypothesis import given, settings
from hypothesis import strategies as st

from harvest.hls.model import Segment
from harvest.hls.parse import parse_master, parse_media
from harvest.hls.render import SourceLocator, render_master, render_media, round_duration, target_duration
from harvest.hls.window import Window, select_window

URL = f"{ORIGIN}/v360/index.m3u8"


def clip(text: str, start: float, end: float) -> Window:
    return select_window(parse_media(text, URL), BASE + start, BASE + end, "v0")


def render(text: str, start: float, end: float, target: int | None = None) -> list[str]:
    return render_media(clip(text, start, end), SourceLocator(), target).splitlines()


def header_value(lines: list[str], tag: str) -> str:
    return next(line.split(":", 1)[1] for line in lines if line.startswith(tag + ":"))


@pytest.mark.parametrize(
    ("duration", "rounded"), [(6.5, 7), (5.49, 5), (5.5, 6), (6.0, 6), (0.2, 0), (2.4999, 2)]
)
def test_durations_round_half_up(duration: float, rounded: int) -> None:
    assert round_duration(duration) == rounded


@pytest.mark.parametrize(
    ("durations", "expected"),
    [(["6.0", "6.5", "5.9"], 7), (["5.49", "5.2"], 5), (["0.2", "0.3"], 1), (["4", "10.4999"], 10)],
)
def test_target_duration_is_the_largest_rounded_extinf_of_the_window(
    durations: list[str], expected: int
) -> None:
    # GIVEN a source whose live TARGETDURATION (12) is larger than needed
    segs = [Seg(f"s{i}.ts", d, BASE if i == 0 else None) for i, d in enumerate(durations)]
    playlist = parse_media(media(segs, target=12), URL)
    window = select_window(playlist, BASE, BASE + sum(float(d) for d in durations), "v0")
    # WHEN rendered / THEN TD is recomputed over the clipped window, not copied
    assert target_duration([window]) == expected
    assert header_value(render_media(window, SourceLocator()).splitlines(), "#EXT-X-TARGETDURATION") == str(
        expected
    )


def test_a_shared_target_duration_is_written_when_larger() -> None:
    lines = render(media(steady(3)), 0, 18, target=7)
    assert header_value(lines, "#EXT-X-TARGETDURATION") == "7"
    # a stale, too small shared value never breaks §4.3.3.1
    assert header_value(render(media(steady(3)), 0, 18, target=2), "#EXT-X-TARGETDURATION") == "6"


VERSION_CASES = [
    ("integer EXTINF only", media([Seg("a.ts", "6", BASE), Seg("b.ts", "6")]), 1),
    (
        "IV attribute",
        media(with_tags([Seg("a.ts", "6", BASE)], 0, '#EXT-X-KEY:METHOD=AES-128,URI="k",IV=0x1')),
        2,
    ),
    ("float EXTINF", media(steady(2)), 3),
    ("byte ranges", single_file_fmp4(2).replace("#EXT-X-MAP", "#X-DROPPED"), 4),
    (
        "KEYFORMAT",
        media(with_tags(steady(1), 0, '#EXT-X-KEY:METHOD=AES-128,URI="k",KEYFORMAT="identity"')),
        5,
    ),
    ("SAMPLE-AES", media(with_tags(steady(1), 0, '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="k"')), 5),
    ("EXT-X-MAP", media(with_tags(steady(1), 0, '#EXT-X-MAP:URI="init.mp4"')), 6),
    (
        "EXT-X-MAP in an I-frame playlist",
        media(
            with_tags(steady(1), 0, '#EXT-X-MAP:URI="init.mp4"', "#EXT-X-BYTERANGE:10@0"),
            header=["#EXT-X-I-FRAMES-ONLY"],
        ),
        5,
    ),
    ("EXT-X-GAP", media(with_tags(steady(2), 0, "#EXT-X-GAP")), 8),
]


@pytest.mark.parametrize(
    ("feature", "text", "version"), VERSION_CASES, ids=[case[0] for case in VERSION_CASES]
)
def test_version_is_the_minimum_the_written_features_need(feature: str, text: str, version: int) -> None:
    # GIVEN a source declaring a high version / WHEN rendered / THEN only what is written counts
    lines = render(text.replace("#EXTM3U", "#EXTM3U\n#EXT-X-VERSION:9", 1), 0, 6)
    assert header_value(lines, "#EXT-X-VERSION") == str(version)


def test_vod_playlist_keeps_source_msn_and_drops_a_discontinuity_on_the_first_segment() -> None:
    # GIVEN DSN 3, discontinuities before msn 12 and on msn 14, msn starting at 10
    segs = steady(8, first_msn=10)
    segs = with_tags(segs, 2, "#EXT-X-DISCONTINUITY")
    segs = with_tags(segs, 4, "#EXT-X-DISCONTINUITY")
    segs = with_tags(segs, 6, "#EXT-X-DISCONTINUITY")
    text = media(segs, msn=10, dsn=3, header=["#EXT-X-INDEPENDENT-SEGMENTS"])
    # WHEN the window starts exactly at msn 14 (a discontinuity) and ends inside msn 16
    lines = render(text, 24, 38)
    # THEN: MSN is the source's, DSN counts the skipped and the dropped discontinuities,
    # the discontinuity inside the window stays, and PDT follows it
    assert lines == [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-TARGETDURATION:6",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-MEDIA-SEQUENCE:14",
        "#EXT-X-DISCONTINUITY-SEQUENCE:5",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f"#EXT-X-PROGRAM-DATE-TIME:{iso(BASE + 24)}",
        "#EXTINF:6.000,",
        f"{ORIGIN}/v360/seg_14.ts",
        f"#EXT-X-PROGRAM-DATE-TIME:{iso(BASE + 30)}",
        "#EXTINF:6.000,",
        f"{ORIGIN}/v360/seg_15.ts",
        "#EXT-X-DISCONTINUITY",
        f"#EXT-X-PROGRAM-DATE-TIME:{iso(BASE + 36)}",
        "#EXTINF:6.000,",
        f"{ORIGIN}/v360/seg_16.ts",
        "#EXT-X-ENDLIST",
    ]


def test_pdt_is_written_on_the_first_segment_after_discontinuities_and_where_the_source_had_it() -> None:
    # GIVEN PDT only on the first source segment and on msn 4 (as +08:00 text), a discontinuity at msn 3
    segs = steady(6, pdt="first")
    segs = with_tags(segs, 3, "#EXT-X-DISCONTINUITY")
    text = media(segs).replace(
        "#EXTINF:6.000,\nseg_4.ts",
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-15T06:13:44+08:00\n#EXTINF:6.000,\nseg_4.ts",
    )
    lines = render(text, 7, 36)
    pdts = [line for line in lines if line.startswith("#EXT-X-PROGRAM-DATE-TIME")]
    # THEN: computed on msn 1, computed after the discontinuity on msn 3, msn 4's text kept
    assert pdts == [
        f"#EXT-X-PROGRAM-DATE-TIME:{iso(BASE + 6)}",
        f"#EXT-X-PROGRAM-DATE-TIME:{iso(BASE + 18)}",
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-15T06:13:44+08:00",
    ]


def test_map_and_keys_in_force_are_reemitted_and_rotation_inside_the_window_kept() -> None:
    # GIVEN key k1, an init section encrypted under k1, a rotation to k2 at msn 2 and k3 at msn 4,
    # plus a FairPlay key that never changes
    fairplay = '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://fp",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"'
    segs = with_tags(
        steady(6), 0, '#EXT-X-KEY:METHOD=AES-128,URI="k1.key",IV=0x1', fairplay, '#EXT-X-MAP:URI="init.mp4"'
    )
    segs = with_tags(segs, 2, '#EXT-X-KEY:METHOD=AES-128,URI="k2.key",IV=0x2')
    segs = with_tags(segs, 4, '#EXT-X-KEY:METHOD=AES-128,URI="k3.key",IV=0x3')
    # WHEN the window starts at msn 3 (after the first rotation)
    lines = render(media(segs), 18, 30)
    body = [line for line in lines if line.startswith(("#EXT-X-KEY", "#EXT-X-MAP", "#EXTINF"))]
    # THEN the init section is declared under its own keys, then the segment's keys, then k3
    assert body == [
        f'#EXT-X-KEY:METHOD=AES-128,URI="{ORIGIN}/v360/k1.key",IV=0x1',
        fairplay,
        f'#EXT-X-MAP:URI="{ORIGIN}/v360/init.mp4"',
        f'#EXT-X-KEY:METHOD=AES-128,URI="{ORIGIN}/v360/k2.key",IV=0x2',
        "#EXTINF:6.000,",
        f'#EXT-X-KEY:METHOD=AES-128,URI="{ORIGIN}/v360/k3.key",IV=0x3',
        "#EXTINF:6.000,",
    ]
    assert header_value(lines, "#EXT-X-VERSION") == "6"


def test_an_unencrypted_init_section_stays_ahead_of_the_keys() -> None:
    # GIVEN MAP declared before any key (clear init section, SAMPLE-AES samples)
    segs = with_tags(steady(3), 0, '#EXT-X-MAP:URI="init.mp4"', '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="k.key"')
    lines = render(media(segs), 6, 12)
    body = [line for line in lines if line.startswith(("#EXT-X-KEY", "#EXT-X-MAP"))]
    assert body == [
        f'#EXT-X-MAP:URI="{ORIGIN}/v360/init.mp4"',
        f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="{ORIGIN}/v360/k.key"',
    ]


def test_encryption_ending_inside_the_window_writes_method_none() -> None:
    segs = with_tags(steady(3), 0, '#EXT-X-KEY:METHOD=AES-128,URI="k.key"')
    segs = with_tags(segs, 2, "#EXT-X-KEY:METHOD=NONE")
    lines = render(media(segs), 6, 18)
    assert [line for line in lines if line.startswith("#EXT-X-KEY")] == [
        f'#EXT-X-KEY:METHOD=AES-128,URI="{ORIGIN}/v360/k.key"',
        "#EXT-X-KEY:METHOD=NONE",
    ]


def test_dateranges_are_kept_when_they_overlap_the_window_and_written_in_time_order() -> None:
    # GIVEN 10 s date ranges declared before, inside and after the window [12, 30)
    def dr(name: str, at: float) -> str:
        return f'#EXT-X-DATERANGE:ID="{name}",START-DATE="{iso(BASE + at)}",PLANNED-DURATION=10'

    segs = with_tags(steady(8), 0, dr("ended-before", 1), dr("open-before", 3), dr("declared-early", 14))
    segs = with_tags(segs, 3, dr("inside", 20))
    segs = with_tags(segs, 6, dr("declared-late", 29.5), dr("after", 30))
    text = media(segs, trailer=[dr("trailing-inside", 12)])
    lines = render(text, 12, 30)
    kept = [line.split('"')[1] for line in lines if line.startswith("#EXT-X-DATERANGE")]
    # THEN every range whose [START, START + PLANNED-DURATION) overlaps the window survives,
    # the one still open when the window starts included, in order of START-DATE
    assert kept == ["open-before", "trailing-inside", "declared-early", "inside", "declared-late"]
    # AND each is written before the first segment that ends after it starts
    assert lines.index(next(x for x in lines if '"inside"' in x)) < lines.index(f"{ORIGIN}/v360/seg_3.ts")
    assert lines.index(next(x for x in lines if '"inside"' in x)) > lines.index(f"{ORIGIN}/v360/seg_2.ts")


def test_gap_segments_are_carried_through_with_their_uri() -> None:
    segs = with_tags(steady(3), 1, "#EXT-X-GAP")
    lines = render(media(segs), 0, 18)
    i = lines.index("#EXT-X-GAP")
    assert lines[i + 1 : i + 3] == ["#EXTINF:6.000,", f"{ORIGIN}/v360/seg_1.ts"]


def test_byte_ranges_always_carry_an_explicit_offset() -> None:
    # GIVEN a source where half the ranges have implicit offsets
    lines = render(single_file_fmp4(6), 6, 24)
    # THEN every range in the output is length@offset, the first one included
    assert [line for line in lines if line.startswith("#EXT-X-BYTERANGE")] == [
        "#EXT-X-BYTERANGE:5000@6000",
        "#EXT-X-BYTERANGE:5000@11000",
        "#EXT-X-BYTERANGE:5000@16000",
    ]
    assert f'#EXT-X-MAP:URI="{ORIGIN}/v360/main.mp4",BYTERANGE="800@0"' in lines


def _essentials(segment: Segment) -> tuple[object, ...]:
    return (
        segment.msn,
        segment.uri,
        segment.duration_text,
        segment.title,
        segment.byterange,
        segment.discontinuity_seq,
        None if segment.pdt is None else round(segment.pdt, 3),  # PDTs are written to the millisecond
        segment.keys,
        segment.map,
        segment.gap,
    )


@pytest.mark.parametrize(
    "text",
    [
        media(
            with_tags(with_tags(steady(10, pdt="first"), 4, "#EXT-X-DISCONTINUITY"), 6, "#EXT-X-GAP"),
            msn=7,
            dsn=2,
        ),
        single_file_fmp4(10),
        media(
            with_tags(
                with_tags(
                    steady(10), 0, '#EXT-X-KEY:METHOD=AES-128,URI="k1",IV=0x1', '#EXT-X-MAP:URI="i.mp4"'
                ),
                5,
                '#EXT-X-KEY:METHOD=AES-128,URI="k2"',
            )
        ),
    ],
    ids=["discontinuity-gap", "byterange", "keys-map"],
)
def test_render_then_parse_gives_back_the_selected_segments(text: str) -> None:
    # GIVEN a window in the middle of a playlist
    window = clip(text, 9, 50)
    # WHEN rendered and parsed again
    again = parse_media(render_media(window, SourceLocator()), URL)
    # THEN the segment list is the same (the first segment's discontinuity flag aside: it is dropped)
    assert [_essentials(s) for s in again.segments] == [_essentials(s) for s in window.segments]
    assert again.ended
    assert again.playlist_type == "VOD"


def test_master_rewrites_uris_and_keeps_every_other_attribute() -> None:
    # GIVEN the source master and where each child playlist went
    master = parse_master(MASTER, MASTER_URL)
    uris = {
        f"{ORIGIN}/v360/index.m3u8": "index/v0/playlist.m3u8",
        f"{ORIGIN}/v720/index.m3u8": "index/v1/playlist.m3u8",
        f"{ORIGIN}/audio/en.m3u8": "index/audio/playlist.m3u8",
        f"{ORIGIN}/subs/en.m3u8": "index/subs/playlist.m3u8",
        f"{ORIGIN}/v360/iframes.m3u8": "index/iframe/playlist.m3u8",
    }
    # WHEN rendered
    lines = render_master(master, uris).splitlines()
    # THEN attributes are byte-identical to the source except URI values
    assert lines == [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-SESSION-DATA:DATA-ID="com.example.title",URI="{ORIGIN}/title.json"',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",LANGUAGE="en",NAME="English",DEFAULT=YES,AUTOSELECT=YES,'
        'CHANNELS="2",URI="index/audio/playlist.m3u8"',
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English CC",DEFAULT=NO,FORCED=NO,'
        'URI="index/subs/playlist.m3u8"',
        '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",LANGUAGE="en",NAME="CC1",INSTREAM-ID="CC1"',
        '#EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,CODECS="avc1.4d401e,mp4a.40.2",'
        'RESOLUTION=640x360,FRAME-RATE=25.000,AUDIO="aac",SUBTITLES="subs",CLOSED-CAPTIONS="cc",X-CUSTOM=keep',
        "index/v0/playlist.m3u8",
        '#EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="aac",'
        'SUBTITLES="subs",CLOSED-CAPTIONS="cc"',
        "index/v1/playlist.m3u8",
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,CODECS="avc1.4d401e",RESOLUTION=640x360,'
        'URI="index/iframe/playlist.m3u8"',
    ]


@st.composite
def playlists_and_windows(draw: st.DrawFn) -> tuple[str, float, float]:
    """A random playlist (durations, discontinuities, gaps, key rotations, PDT density) and a window in it."""
    count = draw(st.integers(min_value=1, max_value=30))
    durations = draw(
        st.lists(st.sampled_from(["2", "4.004", "6.000", "5.5", "6.5"]), min_size=count, max_size=count)
    )
    pdt_each = draw(st.booleans())
    segs: list[Seg] = []
    at = BASE
    for i, duration in enumerate(durations):
        tags: list[str] = []
        if i and draw(st.integers(0, 4)) == 0:
            tags.append("#EXT-X-DISCONTINUITY")
        if draw(st.integers(0, 6)) == 0:
            tags.append(f'#EXT-X-KEY:METHOD=AES-128,URI="k{i}.key"')
        if draw(st.integers(0, 6)) == 0:
            tags.append("#EXT-X-GAP")
        segs.append(Seg(f"s{i}.ts", duration, at if (pdt_each or i == 0) else None, tuple(tags)))
        at += float(duration)
    total = at - BASE
    start = draw(st.floats(min_value=0, max_value=total - 0.01))
    end = draw(st.floats(min_value=start + 0.01, max_value=total))
    return media(segs, target=7, msn=draw(st.integers(0, 10**6))), start, end


@settings(max_examples=80, deadline=None)
@given(playlists_and_windows())
def test_any_clip_round_trips_and_covers_its_window(case: tuple[str, float, float]) -> None:
    # GIVEN any playlist and window / WHEN clipped, rendered and parsed again
    text, start, end = case
    window = clip(text, start, end)
    again = parse_media(render_media(window, SourceLocator()), URL)
    # THEN the segments survive unchanged, and they cover [start, end) with none wholly outside it
    assert [_essentials(s) for s in again.segments] == [_essentials(s) for s in window.segments]
    assert window.begins <= BASE + start + 0.001
    assert window.ends >= BASE + end - 0.001
    assert all(s.pdt is not None and s.pdt < BASE + end and s.end > BASE + start for s in window.segments)
    assert int(
        header_value(render_media(window, SourceLocator()).splitlines(), "#EXT-X-TARGETDURATION")
    ) >= max(round_duration(s.duration) for s in window.segments)
