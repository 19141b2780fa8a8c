"""Broadcast HLS through the planner: ad markers, variables, redirects and packagers' quirks.

One test per case of issue 11 (numbered as there), each on fixtures written here, plus the
playlist limits of issue 12. Playlists go in through the Origin port and come out as the VOD text
the finalizer would store; m3u8 (a test-only dependency) reads some of them back as an independent
check that the output is valid HLS.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import m3u8
import pytest
from hls_playlists import (
    BASE,
    MASTER,
    MASTER_URL,
    ORIGIN,
    FakeOrigin,
    Seg,
    iso,
    master_channel,
    media,
    plan_for,
    steady,
    with_tags,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from harvest.engine.plan import Plan, PlanLimits
from harvest.errors import ConfigError, PlaylistError
from harvest.hls.parse import ParseLimits, parse_media
from harvest.settings import Settings as HarvestSettings

ROOT = "vod/show/index/"
SCTE_OUT = "0xFC302000000000000000FFF00F05000000017FEFFE0052EC"
SCTE_IN = "0xFC302000000000000000FFF00F05000000017F4FFE0052EC"


def plan(playlists: dict[str, str], start: float, end: float, **options: Any) -> Plan:
    return plan_for(playlists, start, end, **options)[0]


def lines_of(result: Plan, rendition: str) -> list[str]:
    return result.playlists[f"{ROOT}{rendition}/playlist.m3u8"].splitlines()


def single(result: Plan) -> list[str]:
    return result.playlists[result.master_key].splitlines()


def tagged(lines: list[str], prefix: str) -> list[str]:
    return [line for line in lines if line.startswith(prefix)]


def before_uri(lines: list[str], uri_suffix: str) -> list[str]:
    """The tag lines written between the previous segment URI and the one ending in `uri_suffix`."""
    index = next(i for i, line in enumerate(lines) if line.endswith(uri_suffix) and not line.startswith("#"))
    start = index
    while start > 0 and lines[start - 1].startswith("#"):
        start -= 1
    return lines[start:index]


MEDIA_URL = f"{ORIGIN}/v360/index.m3u8"


def scte_break(segs: list[Seg], at: int, length: int) -> list[Seg]:
    """An ad break over segments [at, at + length) of 6 s, marked both ways packagers write it."""
    start, end = BASE + 6 * at, BASE + 6 * (at + length)
    opening = (
        f'#EXT-X-DATERANGE:ID="splice-1",CLASS="com.apple.hls.scte35",START-DATE="{iso(start)}",'
        f"PLANNED-DURATION={6 * length}.0,SCTE35-OUT={SCTE_OUT}"
    )
    closing = (
        f'#EXT-X-DATERANGE:ID="splice-1",END-DATE="{iso(end)}",DURATION={6 * length}.0,SCTE35-IN={SCTE_IN}'
    )
    segs = with_tags(
        segs, at, opening, f"#EXT-X-CUE-OUT:{6 * length}", "#EXT-OATCLS-SCTE35:/DAlAAAAAAAAAP/wFAUAAAAB"
    )
    for i in range(at + 1, at + length):
        segs = with_tags(segs, i, f"#EXT-X-CUE-OUT-CONT:ElapsedTime={6 * (i - at)},Duration={6 * length}")
    return with_tags(segs, at + length, closing, "#EXT-X-CUE-IN")


# --- 1, 2: DATERANGE pairs and tolerance outside the window ----------------------------------------


def test_1_a_closing_daterange_without_start_date_is_merged_with_its_opening() -> None:
    # GIVEN an SCTE-35 break as RFC 8216 §8.10 writes it: the closing tag has ID, END-DATE and
    # SCTE35-IN but no START-DATE
    text = media(scte_break(steady(12), 3, 2), msn=0)
    # WHEN a window around the break is harvested
    result = plan({MEDIA_URL: text}, 6, 48, url=MEDIA_URL)
    # THEN the VOD holds one DATERANGE for the break, with both halves of it
    (daterange,) = tagged(single(result), "#EXT-X-DATERANGE")
    assert f'START-DATE="{iso(BASE + 18)}"' in daterange
    assert f'END-DATE="{iso(BASE + 30)}"' in daterange
    assert f"SCTE35-OUT={SCTE_OUT}" in daterange
    assert f"SCTE35-IN={SCTE_IN}" in daterange
    # AND it is written before the break's first segment, which m3u8 reads back as the same range
    vod = m3u8.loads(result.playlists[result.master_key])
    assert [s.uri for s in vod.segments][:3] == ["index/v0/1.ts", "index/v0/2.ts", "index/v0/3.ts"]
    assert vod.segments[2].dateranges[0].id == "splice-1"


def test_1_a_closing_tag_whose_opening_slid_out_keeps_its_place_in_time() -> None:
    # GIVEN only the closing tag (the opening has left the live window): ID, DURATION, SCTE35-IN
    closing = f'#EXT-X-DATERANGE:ID="splice-0",DURATION=12.0,SCTE35-IN={SCTE_IN}'
    text = media(with_tags(steady(8), 2, closing), msn=0)
    # WHEN a window overlapping what is left of the break is harvested
    result = plan({MEDIA_URL: text}, 0, 24, url=MEDIA_URL)
    # THEN its start is derived (12 s before the segment it closes at) and written as START-DATE
    (daterange,) = tagged(single(result), "#EXT-X-DATERANGE")
    assert daterange.startswith(f'#EXT-X-DATERANGE:ID="splice-0",START-DATE="{iso(BASE)}"')


def test_2_a_malformed_tag_outside_the_window_is_a_warning_and_inside_it_a_failure() -> None:
    # GIVEN a 24-hour-style DVR playlist with a broken DATERANGE and a broken KEY long before the window
    segs = with_tags(steady(20), 1, '#EXT-X-DATERANGE:ID="bad",START-DATE="yesterday"')
    segs = with_tags(segs, 2, "#EXT-X-KEY:METHOD=ROT13")
    segs = with_tags(segs, 4, "#EXT-X-KEY:METHOD=NONE")
    text = media(segs, msn=0)
    daterange_line = text.splitlines().index('#EXT-X-DATERANGE:ID="bad",START-DATE="yesterday"') + 1
    key_line = text.splitlines().index("#EXT-X-KEY:METHOD=ROT13") + 1
    # WHEN a window near the live edge is harvested / THEN the job plans, with warnings naming the lines
    result = plan({MEDIA_URL: text}, 90, 102, url=MEDIA_URL)
    assert len(result.tasks) == 2
    assert result.warnings == [
        f"playlist {MEDIA_URL} line {daterange_line}: #EXT-X-DATERANGE START-DATE 'yesterday' is not valid"
        " (outside the window, ignored)",
        *[
            f"playlist {MEDIA_URL} line {key_line}: #EXT-X-KEY METHOD 'ROT13' is not one of AES-128, NONE,"
            " SAMPLE-AES, SAMPLE-AES-CENC, SAMPLE-AES-CTR (outside the window, ignored)"
        ]
        * 2,  # both segments it would have encrypted
    ]
    # AND the warnings survive the plan's JSON round trip (the stored plan carries them)
    assert Plan.from_json(result.to_json()).warnings == result.warnings
    # WHEN the window contains the broken tag's segment / THEN the job fails naming line and reason
    with pytest.raises(
        PlaylistError, match=rf"index\.m3u8 line {daterange_line}: #EXT-X-DATERANGE START-DATE"
    ):
        plan({MEDIA_URL: text}, 0, 12, url=MEDIA_URL)


def test_2_a_key_that_cannot_be_read_fails_every_segment_it_would_encrypt() -> None:
    # GIVEN an unreadable KEY before the window and no valid KEY after it
    segs = with_tags(steady(10), 1, '#EXT-X-KEY:METHOD=AES-128,URI="k.key",IV=0x1,BROKEN')
    text = media(segs, msn=0)
    # WHEN the window lies after it / THEN the job fails: those segments' encryption is unknown
    with pytest.raises(
        PlaylistError, match=r"line 7: #EXT-X-KEY: malformed attribute list .* inside the window"
    ):
        plan({MEDIA_URL: text}, 30, 42, url=MEDIA_URL)


# --- 3: CUE tags and the other ad markers ----------------------------------------------------------


def test_3_cue_and_scte_tags_stay_at_their_segments() -> None:
    # GIVEN a break marked with CUE-OUT / CUE-OUT-CONT / CUE-IN / OATCLS, plus EXT-X-ASSET,
    # EXT-X-SCTE35, a splice point and a vendor tag
    segs = scte_break(steady(12), 3, 2)
    segs = with_tags(segs, 6, "#EXT-X-ASSET:CAID=0x0000000020FB6501", '#EXT-X-SCTE35:CUE="/DAlAAAA",ID="7"')
    segs = with_tags(segs, 7, "#EXT-X-SPLICEPOINT-SCTE35:/DAlAAAA", "#EXT-X-VENDOR-THING:keep=1")
    text = media(segs, msn=0)
    # WHEN a window over all of it is harvested
    lines = single(plan({MEDIA_URL: text}, 12, 54, url=MEDIA_URL))
    # THEN each marker is written right before the segment it preceded in the source
    assert before_uri(lines, "/3.ts")[-3:-1] == [
        "#EXT-X-CUE-OUT:12",
        "#EXT-OATCLS-SCTE35:/DAlAAAAAAAAAP/wFAUAAAAB",
    ]
    assert "#EXT-X-CUE-OUT-CONT:ElapsedTime=6,Duration=12" in before_uri(lines, "/4.ts")
    assert "#EXT-X-CUE-IN" in before_uri(lines, "/5.ts")
    assert '#EXT-X-SCTE35:CUE="/DAlAAAA",ID="7"' in before_uri(lines, "/6.ts")
    assert "#EXT-X-SPLICEPOINT-SCTE35:/DAlAAAA" in before_uri(lines, "/7.ts")
    assert "#EXT-X-VENDOR-THING:keep=1" in before_uri(lines, "/7.ts")


def test_3_a_vod_that_starts_inside_a_break_says_so() -> None:
    # GIVEN a 30 s CUE-OUT break over segments 3..7 whose source writes no CUE-OUT-CONT
    segs = with_tags(steady(12), 3, "#EXT-X-CUE-OUT:DURATION=30")
    segs = with_tags(segs, 8, "#EXT-X-CUE-IN")
    text = media(segs, msn=0)
    # WHEN the window starts at segment 5, 12 s into the break
    lines = single(plan({MEDIA_URL: text}, 30, 60, url=MEDIA_URL))
    # THEN the first segment carries a CUE-OUT-CONT with the elapsed time and the break's duration
    assert "#EXT-X-CUE-OUT-CONT:ElapsedTime=12,Duration=30" in before_uri(lines, "/5.ts")
    assert "#EXT-X-CUE-IN" in before_uri(lines, "/8.ts")


def test_3_live_only_tags_are_dropped_and_bitrate_and_start_are_kept() -> None:
    # GIVEN a playlist with EXT-X-START, a BITRATE before the window, and LL-HLS tags
    segs = with_tags(steady(6), 0, "#EXT-X-BITRATE:1800")
    segs = with_tags(segs, 3, '#EXT-X-PART:DURATION=1.0,URI="p3.0.ts"', "#EXT-X-BITRATE:2100")
    text = media(segs, msn=0, header=["#EXT-X-START:TIME-OFFSET=-12.0,PRECISE=YES"])
    text += '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p6.0.ts"\n'
    # WHEN segments 2..4 are harvested
    lines = single(plan({MEDIA_URL: text}, 12, 30, url=MEDIA_URL))
    # THEN the rate in force is written at the start and where it changes; START is kept; no LL-HLS
    assert tagged(lines, "#EXT-X-BITRATE") == ["#EXT-X-BITRATE:1800", "#EXT-X-BITRATE:2100"]
    assert "#EXT-X-START:TIME-OFFSET=-12.0,PRECISE=YES" in lines
    assert not tagged(lines, "#EXT-X-PART")
    assert not tagged(lines, "#EXT-X-PRELOAD-HINT")


# --- 4: variables ---------------------------------------------------------------------------------

DEFINE_MASTER = "\n".join(
    [
        "#EXTM3U",
        "#EXT-X-VERSION:11",
        '#EXT-X-DEFINE:NAME="vcodec",VALUE="avc1.64001f"',
        '#EXT-X-DEFINE:NAME="base",VALUE="https://cdn.example/live"',
        '#EXT-X-DEFINE:QUERYPARAM="token"',
        '#EXT-X-STREAM-INF:BANDWIDTH=900000,CODECS="{$vcodec},mp4a.40.2",RESOLUTION=640x360',
        "v360/index.m3u8?token={$token}",
        "",
    ]
)


def test_4_define_values_imports_and_query_params_are_substituted_and_no_define_is_written() -> None:
    # GIVEN a master that defines variables (one from its own URL's query) and a media playlist
    # that imports one, defines another and builds its URIs from them
    master_url = f"{ORIGIN}/master.m3u8?token=t0k"
    child = "\n".join(
        [
            "#EXTM3U",
            "#EXT-X-VERSION:11",
            "#EXT-X-TARGETDURATION:6",
            '#EXT-X-DEFINE:IMPORT="base"',
            '#EXT-X-DEFINE:NAME="q",VALUE="sig=1"',
            '#EXT-X-DEFINE:QUERYPARAM="token"',
            *[
                line
                for i in range(4)
                for line in (
                    f"#EXT-X-PROGRAM-DATE-TIME:{iso(BASE + 6 * i)}",
                    "#EXTINF:6.000,",
                    f"{{$base}}/s{i}.ts?{{$q}}",
                )
            ],
            "#EXT-X-KEY:METHOD=NONE",
            "",
        ]
    )
    origin = FakeOrigin({master_url: DEFINE_MASTER, f"{ORIGIN}/v360/index.m3u8?token=t0k": child})
    # WHEN harvested
    result = plan({}, 0, 24, url=master_url, origin=origin)
    # THEN segments are fetched from the substituted URIs
    assert [t.url for t in result.tasks] == [f"https://cdn.example/live/s{i}.ts?sig=1" for i in range(4)]
    # AND the written master carries the substituted CODECS and no DEFINE
    master = single(result)
    assert '#EXT-X-STREAM-INF:BANDWIDTH=900000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=640x360' in master
    assert not any(
        "{$" in line or "DEFINE" in line for text in result.playlists.values() for line in text.splitlines()
    )
    assert (
        m3u8.loads(result.playlists[result.master_key]).playlists[0].stream_info.codecs
        == "avc1.64001f,mp4a.40.2"
    )


def test_4_a_variable_cannot_grow_a_line_without_bound() -> None:
    big = "x" * 1000
    text = (
        f'#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-DEFINE:NAME="a",VALUE="{big}"\n#EXTINF:6,\n' + "{$a}" * 100
    )
    with pytest.raises(
        PlaylistError, match=r"line 5: the line is longer than 65536 characters once variables"
    ):
        parse_media(text, MEDIA_URL)


def test_2_a_closing_tag_whose_start_is_outside_any_calendar_is_left_out() -> None:
    closing = f'#EXT-X-DATERANGE:ID="far",END-DATE="{iso(BASE)}",DURATION=1e15'
    result = plan({MEDIA_URL: media(with_tags(steady(6), 1, closing), msn=0)}, 0, 30, url=MEDIA_URL)
    assert not tagged(single(result), "#EXT-X-DATERANGE")


@pytest.mark.parametrize(
    "bad", ["DURATION=1e400", "DURATION=-5", "PLANNED-DURATION=nan", 'END-DATE="+99999"']
)
def test_2_a_daterange_with_impossible_times_is_a_problem_not_a_crash(bad: str) -> None:
    # GIVEN a closing tag whose times cannot be used, before the window
    segs = with_tags(steady(10), 1, f'#EXT-X-DATERANGE:ID="x",{bad}')
    # WHEN a later window is planned / THEN it is a warning naming the attribute, never a traceback
    result = plan({MEDIA_URL: media(segs, msn=0)}, 30, 42, url=MEDIA_URL)
    assert (
        len(result.warnings) == 1
    )
    assert (
        "#EXT-X-DATERANGE" in result.warnings[0]
    )
    assert (
        "is not valid" in result.warnings[0]
    )


def test_4_an_undefined_variable_fails_naming_it_and_the_line() -> None:
    text = '#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-DEFINE:NAME="a",VALUE="x"\n#EXTINF:6,\n{$b}/s.ts\n'
    with pytest.raises(PlaylistError, match=r"line 5: variable \{\$b\} is not defined"):
        parse_media(text, MEDIA_URL)
    with pytest.raises(PlaylistError, match=r"line 3: #EXT-X-DEFINE IMPORT='a': the master defines no such"):
        parse_media('#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-DEFINE:IMPORT="a"\n', MEDIA_URL)


# --- 5: redirects ---------------------------------------------------------------------------------


def test_5_relative_uris_resolve_against_the_url_after_redirects() -> None:
    # GIVEN a master that redirects to another host and path, with relative child URIs
    moved = "http://edge.example/moved/live/master.m3u8"
    channel = {
        url.replace(f"{ORIGIN}/", "http://edge.example/moved/live/"): text
        for url, text in master_channel(8).items()
    }
    origin = FakeOrigin(channel, redirects={MASTER_URL: moved})
    # WHEN harvested / THEN every child playlist and segment is requested where the final URL points
    result = plan({}, 6, 30, origin=origin)
    assert [url for url, _ in origin.requests][:2] == [
        MASTER_URL,
        "http://edge.example/moved/live/v360/index.m3u8",
    ]
    assert {t.url.rsplit("/", 2)[0] for t in result.tasks} == {"http://edge.example/moved/live"}


# --- 6, 7: attributes passed through, interstitials ---------------------------------------------------


def test_6_key_and_map_keep_every_attribute_and_session_key_points_at_the_copied_key() -> None:
    # GIVEN keys with KEYID and an unknown attribute, a MAP with one, and a SESSION-KEY for the same key
    key = '#EXT-X-KEY:METHOD=AES-128,URI="k/1.key",KEYID=0x00112233445566778899aabbccddeeff,X-VENDOR="v"'
    segs = with_tags(steady(4, first_msn=100), 0, key, '#EXT-X-MAP:URI="init.mp4",X-MAP-NOTE="n"')
    channel = master_channel(4)
    channel[f"{ORIGIN}/v360/index.m3u8"] = media(
        [Seg(s.uri.replace(".ts", ".m4s"), s.duration, s.pdt, s.before) for s in segs], msn=100
    )
    channel[MASTER_URL] = MASTER.replace(
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-SESSION-KEY:METHOD=AES-128,URI="v360/k/1.key",KEYID=0x01',
    )
    # WHEN harvested with keys copied
    result = plan(channel, 0, 24, copy_keys=True)
    lines = lines_of(result, "v0_640x360")
    # THEN KEYID and X-VENDOR survive, with the URI pointing at the copy
    assert (
        '#EXT-X-KEY:METHOD=AES-128,URI="../keys/0.key",KEYID=0x00112233445566778899aabbccddeeff,X-VENDOR="v"'
        in lines
    )
    assert '#EXT-X-MAP:URI="init.mp4",X-MAP-NOTE="n"' in lines
    # AND the master's SESSION-KEY points at the same copy
    assert '#EXT-X-SESSION-KEY:METHOD=AES-128,URI="index/keys/0.key",KEYID=0x01' in single(result)


def test_7_interstitial_asset_uris_are_made_absolute() -> None:
    # GIVEN an interstitial with relative X-ASSET-URI and X-ASSET-LIST
    interstitial = (
        f'#EXT-X-DATERANGE:ID="ad-1",CLASS="com.apple.hls.interstitial",START-DATE="{iso(BASE + 12)}",'
        'DURATION=15.0,X-ASSET-URI="ads/spot.m3u8",X-ASSET-LIST="../lists/1.json",X-RESUME-OFFSET=0'
    )
    text = media(with_tags(steady(6), 2, interstitial), msn=0)
    (daterange,) = tagged(single(plan({MEDIA_URL: text}, 0, 30, url=MEDIA_URL)), "#EXT-X-DATERANGE")
    # THEN both point back at the origin, every other attribute as written
    assert f'X-ASSET-URI="{ORIGIN}/v360/ads/spot.m3u8"' in daterange
    assert f'X-ASSET-LIST="{ORIGIN}/lists/1.json"' in daterange
    assert daterange.endswith("X-RESUME-OFFSET=0")


# --- 8, 9: closed captions with a URI, zero-length segments --------------------------------------------


def test_8_closed_captions_with_a_uri_are_written_without_it() -> None:
    channel = master_channel(6)
    channel[MASTER_URL] = MASTER.replace('INSTREAM-ID="CC1"', 'INSTREAM-ID="CC1",URI="cc/en.m3u8"')
    result = plan(channel, 0, 24)
    (captions,) = [line for line in single(result) if "TYPE=CLOSED-CAPTIONS" in line]
    assert (
        captions
        == '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",LANGUAGE="en",NAME="CC1",INSTREAM-ID="CC1"'
    )


def test_9_a_zero_length_segment_is_accepted_and_written_as_is() -> None:
    segs = steady(6)
    segs[3] = Seg("seg_3.ts", "0", BASE + 18)
    segs[4:] = [Seg(s.uri, s.duration, (s.pdt or 0) - 6) for s in segs[4:]]
    lines = single(plan({MEDIA_URL: media(segs, msn=0)}, 6, 24, url=MEDIA_URL))
    assert "#EXTINF:0," in lines


# --- 10, 11: clocks ------------------------------------------------------------------------------------


def test_10_a_clock_that_goes_back_at_a_discontinuity_never_duplicates_media() -> None:
    # GIVEN msn 0..5 at [0, 36), then a discontinuity where the program clock restarts 24 s back
    segs = steady(6) + [
        Seg(f"seg_{6 + i}.ts", pdt=BASE + 12 + 6 * i, before=("#EXT-X-DISCONTINUITY",) if i == 0 else ())
        for i in range(8)
    ]
    text = media(segs, msn=0)
    # WHEN a 12 s window inside the second timeline only is harvested
    result = plan({MEDIA_URL: text}, 48, 60, url=MEDIA_URL)
    # THEN it holds 12 s of media from that timeline alone
    assert [t.url.rsplit("/", 1)[1] for t in result.tasks] == ["seg_12.ts", "seg_13.ts"]
    # WHEN the window lies whole in the second timeline and only partly in the first
    result = plan({MEDIA_URL: text}, 30, 42, url=MEDIA_URL)
    # THEN only the timeline holding the whole window is used
    assert [t.url.rsplit("/", 1)[1] for t in result.tasks] == ["seg_9.ts", "seg_10.ts"]
    # WHEN the clock goes back right where the window sits: both timelines hold [24, 36) back to back
    again = media(
        steady(6)
        + [
            Seg(f"seg_{6 + i}.ts", pdt=BASE + 24 + 6 * i, before=("#EXT-X-DISCONTINUITY",) if i == 0 else ())
            for i in range(4)
        ],
        msn=0,
    )
    # THEN the job fails naming the discontinuity instead of writing 24 s of media for a 12 s window
    with pytest.raises(
        PlaylistError, match=r"clock goes back 12\.0 s at segment 6 \(a discontinuity\).*ambiguous"
    ):
        plan({MEDIA_URL: again}, 24, 36, url=MEDIA_URL)
    # WHEN the window is covered by both timelines / THEN the job fails naming the discontinuity
    with pytest.raises(
        PlaylistError, match=r"clock goes back 24\.0 s at segment 6 \(a discontinuity\).*ambiguous"
    ):
        plan({MEDIA_URL: text}, 12, 24, url=MEDIA_URL)


def test_11_a_rendition_without_pdt_is_aligned_to_its_sibling_and_gets_no_invented_pdt() -> None:
    # GIVEN subtitles without any PDT (an ended playlist, as some packagers write them), numbered like video
    channel = master_channel(20)
    subs = steady(20, first_msn=100, name="s_{msn}.vtt", pdt="none")
    channel[f"{ORIGIN}/subs/en.m3u8"] = media(subs, msn=100, ended=True)
    # WHEN read with a clock 5 s past the video's live edge (the live-edge guess would be 5 s off)
    result = plan(channel, 24, 48, now=BASE + 125)
    # THEN the subtitles are cut at the same segments as the video, and carry no PDT of ours
    video = [t.key.rsplit("/", 1)[1] for t in result.tasks if "/v0_" in t.key]
    subtitles = [t.key.rsplit("/", 1)[1] for t in result.tasks if "/subs_" in t.key]
    assert video == ["104.ts", "105.ts", "106.ts", "107.ts"]
    assert subtitles == ["104.vtt", "105.vtt", "106.vtt", "107.vtt"]
    assert not tagged(lines_of(result, "subs_subs_en"), "#EXT-X-PROGRAM-DATE-TIME")
    assert tagged(lines_of(result, "v0_640x360"), "#EXT-X-PROGRAM-DATE-TIME")


def test_11_alignment_by_a_shared_discontinuity_when_segment_lengths_differ() -> None:
    # GIVEN 10 s subtitles without PDT whose run starts at the discontinuity video has at msn 102
    channel = master_channel(20)
    video = with_tags(steady(20, first_msn=100), 2, "#EXT-X-DISCONTINUITY")
    channel[f"{ORIGIN}/v360/index.m3u8"] = media(video, msn=100)
    channel[f"{ORIGIN}/v720/index.m3u8"] = media(video, msn=100)
    audio = with_tags(steady(20, first_msn=100, name="a_{msn}.aac"), 2, "#EXT-X-DISCONTINUITY")
    channel[f"{ORIGIN}/audio/en.m3u8"] = media(audio, msn=100)
    subs = [
        Seg(f"s_{i}.vtt", "10.000", before=("#EXT-X-DISCONTINUITY",) if i == 0 else ()) for i in range(10)
    ]
    channel[f"{ORIGIN}/subs/en.m3u8"] = media(subs, msn=500, dsn=0, target=10)
    # WHEN the window [32, 52) is harvested
    result = plan(channel, 32, 52)
    # THEN subtitles 2 and 3 ([32, 52) from the boundary at 12 s) are chosen
    assert [t.url.rsplit("/", 1)[1] for t in result.tasks if "/subs_" in t.key] == [
        "s_2.vtt",
        "s_3.vtt",
    ]


def test_11_a_rendition_that_cannot_be_aligned_fails_naming_it() -> None:
    channel = master_channel(20)
    channel[f"{ORIGIN}/subs/en.m3u8"] = media(steady(6, first_msn=900, pdt="none"), msn=900, target=10)
    with pytest.raises(
        PlaylistError, match="rendition subs_subs_en has no EXT-X-PROGRAM-DATE-TIME and cannot be aligned"
    ):
        plan(channel, 24, 48)


# --- 12: one set of date ranges ----------------------------------------------------------------------


def test_12_every_rendition_carries_the_same_dateranges_chosen_by_the_window() -> None:
    # GIVEN date ranges in every playlist; 10 s subtitles cover [10, 40) for the window [12, 36)
    # while video covers [12, 36): a range at 37 s lies inside the subtitles' span only
    def dr(name: str, at: float) -> str:
        return f'#EXT-X-DATERANGE:ID="{name}",START-DATE="{iso(BASE + at)}",DURATION=1.0'

    channel = master_channel(20)
    for url, text in list(channel.items()):
        if url.endswith("index.m3u8") or url.endswith("en.m3u8") or url.endswith("iframes.m3u8"):
            channel[url] = text.replace(
                "#EXTINF", f"{dr('early', 10.5)}\n{dr('inside', 20)}\n{dr('late', 37)}\n#EXTINF", 1
            )
    # WHEN harvested
    result = plan(channel, 12, 36)
    # THEN each rendition writes exactly the ranges overlapping the window
    sets = {
        name: tagged(text.splitlines(), "#EXT-X-DATERANGE")
        for name, text in result.playlists.items()
        if name != result.master_key
    }
    assert len(sets) == 5
    for found in sets.values():
        assert [line.split('"')[1] for line in found] == ["inside"]


# --- 13: names by media type -------------------------------------------------------------------------


def test_13_segments_are_named_by_their_media_never_as_playlists_or_scripts() -> None:
    # GIVEN segment URIs that say nothing (a bare query, a script) over TS and WebVTT media
    segs = [
        Seg(uri, pdt=BASE + 6 * i) for i, uri in enumerate(["?seg=0", "get.php?seg=1", "segment.m3u8?n=2"])
    ]
    ts_packet = b"\x47" + b"\x00" * 187
    origin = FakeOrigin({MEDIA_URL: media(segs, msn=0)}, segments={f"{MEDIA_URL}?seg=0": ts_packet * 4})
    # WHEN harvested
    result = plan({}, 0, 18, url=MEDIA_URL, origin=origin)
    # THEN every one is stored as .ts with the TS content type, sniffed once from the first
    assert [(t.key.rsplit("/", 1)[1], t.content_type) for t in result.tasks] == [
        ("0.ts", "video/mp2t"),
        ("1.ts", "video/mp2t"),
        ("2.ts", "video/mp2t"),
    ]
    # AND subtitles and fMP4 take their type from the playlist, without a request
    channel = master_channel(6)
    channel[f"{ORIGIN}/subs/en.m3u8"] = media(
        [Seg(f"cue.php?n={i}", "10.000", BASE + 10 * i) for i in range(3)], target=10, msn=100
    )
    fmp4 = with_tags([Seg(f"frag?n={i}", pdt=BASE + 6 * i) for i in range(6)], 0, '#EXT-X-MAP:URI="init?v=1"')
    channel[f"{ORIGIN}/v720/index.m3u8"] = media(fmp4, msn=100)
    names = {t.key[len(ROOT) :] for t in plan(channel, 0, 24).tasks}
    assert {"subs_subs_en/100.vtt", "v1_1280x720/100.m4s", "v1_1280x720/init.mp4"} <= names


# --- 14: content steering ----------------------------------------------------------------------------


def test_14_only_the_initial_pathway_is_harvested_and_no_steering_is_written() -> None:
    # GIVEN a steered master with two pathways (CDN A is the initial one), each with its own audio
    master = "\n".join(
        [
            "#EXTM3U",
            "#EXT-X-VERSION:6",
            '#EXT-X-CONTENT-STEERING:SERVER-URI="/steer.json",PATHWAY-ID="CDN-A"',
            '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud-a",NAME="en",URI="a/audio/en.m3u8"',
            '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud-b",NAME="en",URI="b/audio/en.m3u8"',
            '#EXT-X-STREAM-INF:BANDWIDTH=900000,AUDIO="aud-b",PATHWAY-ID="CDN-B"',
            "b/v360/index.m3u8",
            '#EXT-X-STREAM-INF:BANDWIDTH=900000,AUDIO="aud-a",PATHWAY-ID="CDN-A"',
            "a/v360/index.m3u8",
            "",
        ]
    )
    playlists = {MASTER_URL: master}
    for path in ("a", "b"):
        playlists[f"{ORIGIN}/{path}/v360/index.m3u8"] = media(steady(6), msn=0)
        playlists[f"{ORIGIN}/{path}/audio/en.m3u8"] = media(steady(6, name="a_{msn}.aac"), msn=0)
    origin = FakeOrigin(playlists)
    # WHEN harvested
    result = plan({}, 0, 24, origin=origin)
    # THEN only pathway A was read and downloaded
    assert {url for url, _ in origin.requests} == {
        MASTER_URL,
        f"{ORIGIN}/a/v360/index.m3u8",
        f"{ORIGIN}/a/audio/en.m3u8",
    }
    assert all("/a/" in t.url for t in result.tasks)
    assert len(result.tasks) == 8
    # AND the master names one variant and its audio, with no steering left
    text = result.playlists[result.master_key]
    assert "CONTENT-STEERING" not in text
    assert "PATHWAY-ID" not in text
    assert "aud-b" not in text
    assert len(m3u8.loads(text).playlists) == 1


# --- issue 12 point 5: limits ----------------------------------------------------------------------------


def test_the_parser_reads_line_by_line_without_a_list_of_every_line() -> None:
    # GIVEN a 4 MiB playlist of 1.4 million short lines (a list of them would take about 75 MB)
    text = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n" + "#X\n" * (4 * 1024 * 1024 // 3) + "#EXTINF:6,\ns.ts\n"
    # WHEN parsed, with the allocations traced
    tracemalloc.start()
    try:
        playlist = parse_media(text, MEDIA_URL)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # THEN the parse never held much more than one more copy of the text
    assert len(playlist.segments) == 1
    assert peak < 2 * len(text), f"peak {peak} bytes for {len(text)} characters"


def test_a_playlist_cannot_pile_up_tags_or_dateranges() -> None:
    # GIVEN 500 vendor tags before one segment long before the window
    segs = with_tags(steady(10), 1, *[f"#EXT-X-VENDOR:{i}" for i in range(500)])
    result = plan({MEDIA_URL: media(segs, msn=0)}, 30, 42, url=MEDIA_URL)
    # THEN only the first 100 are kept, and the overflow is one warning
    assert [w for w in result.warnings if "more than 100 tags before one segment" in w]
    assert len(parse_media(media(segs, msn=0), MEDIA_URL).segments[1].tags) == 100
    # AND a playlist with more than 20,000 DATERANGE tags is refused, naming the limit
    flood = "".join(f'#EXT-X-DATERANGE:ID="d{i}",START-DATE="{iso(BASE)}"\n' for i in range(20_001))
    with pytest.raises(PlaylistError, match=r"line 20003: more than 20000 #EXT-X-DATERANGE tags"):
        parse_media("#EXTM3U\n#EXT-X-TARGETDURATION:6\n" + flood, MEDIA_URL)


def test_limits_on_lines_variants_renditions_and_tasks_say_which_limit() -> None:
    with pytest.raises(PlaylistError, match=r"more than 50 lines \(the limit, HARVEST_PLAYLIST_MAX_LINES\)"):
        parse_media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:6\n" + "\n" * 100, MEDIA_URL, limits=ParseLimits(max_lines=50)
        )
    few = PlanLimits(parse=ParseLimits(max_variants=2))
    with pytest.raises(
        PlaylistError, match=r"more than 2 variant streams \(the limit, HARVEST_MAX_VARIANTS\)"
    ):
        plan(master_channel(6), 0, 24, limits=few)
    with pytest.raises(PlaylistError, match=r"more than 1 renditions \(the limit, HARVEST_MAX_RENDITIONS\)"):
        plan(master_channel(6), 0, 24, limits=PlanLimits(parse=ParseLimits(max_renditions=1)))
    with pytest.raises(PlaylistError, match=r"needs 15 downloads, more than the 10 .*HARVEST_MAX_PLAN_TASKS"):
        plan(master_channel(6), 0, 24, limits=PlanLimits(max_tasks=10))


def test_limit_settings_are_read_and_refused_when_not_positive() -> None:
    settings = HarvestSettings.from_env({"HARVEST_PLAYLIST_MAX_LINES": "5000", "HARVEST_MAX_PLAN_TASKS": "7"})
    limits = PlanLimits.from_settings(settings)
    assert (limits.parse.max_lines, limits.max_tasks, limits.parse.max_variants) == (5000, 7, 100)
    with pytest.raises(ConfigError, match="HARVEST_MAX_VARIANTS must be >= 1"):
        HarvestSettings.from_env({"HARVEST_MAX_VARIANTS": "0"})


# --- property: one set of breaks, whatever the segmentation -------------------------------------------

PROPERTY_MASTER = "\n".join(
    [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="en",URI="audio.m3u8"',
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="en",URI="subs.m3u8"',
        '#EXT-X-STREAM-INF:BANDWIDTH=900000,AUDIO="aac",SUBTITLES="subs"',
        "video.m3u8",
        "",
    ]
)


def _with_breaks(duration: int, count: int, breaks: list[tuple[int, int]], name: str) -> str:
    """`count` segments of `duration` s, each break's DATERANGE before the segment its start falls in."""
    segs = steady(count, duration=float(duration), name=name)
    for i, (at, length) in enumerate(breaks):
        tag = f'#EXT-X-DATERANGE:ID="b{i}",START-DATE="{iso(BASE + at)}",DURATION={length}.0,SCTE35-OUT=0xFC'
        segs = with_tags(segs, at // duration, tag)
    return media(segs, msn=0, target=duration)


@settings(max_examples=80, deadline=None)
@given(
    breaks=st.lists(st.tuples(st.integers(0, 179), st.integers(1, 40)), max_size=6),
    window=st.tuples(st.integers(0, 150), st.integers(10, 60)),
    video=st.sampled_from([2, 4, 6]),
    subtitles=st.sampled_from([5, 10, 12]),
)
def test_every_rendition_writes_exactly_the_breaks_overlapping_the_window(
    breaks: list[tuple[int, int]], window: tuple[int, int], video: int, subtitles: int
) -> None:
    # GIVEN video, audio and subtitles over [0, 180) s cut into different segment lengths, with the
    # same ad breaks declared in each, and any window inside
    start, length = window
    end = min(start + length, 180)
    playlists = {
        MASTER_URL: PROPERTY_MASTER,
        f"{ORIGIN}/video.m3u8": _with_breaks(video, 180 // video, breaks, "v_{msn}.ts"),
        f"{ORIGIN}/audio.m3u8": _with_breaks(video, 180 // video, breaks, "a_{msn}.aac"),
        f"{ORIGIN}/subs.m3u8": _with_breaks(subtitles, 180 // subtitles, breaks, "s_{msn}.vtt"),
    }
    # WHEN planned
    result = plan(playlists, start, end)
    # THEN every rendition writes the ranges whose [START, START + DURATION) overlaps the window, in
    # time order, and nothing else
    overlapping = sorted(
        (at, f"b{i}") for i, (at, size) in enumerate(breaks) if at < end and at + size > start
    )
    for key, text in result.playlists.items():
        if key == result.master_key:
            continue
        written = [line.split('"')[1] for line in text.splitlines() if line.startswith("#EXT-X-DATERANGE")]
        assert written == [name for _, name in overlapping], key
        assert len(m3u8.loads(text).segments) >= 1
