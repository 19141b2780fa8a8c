"""The planner: playlists in through the Origin port, download tasks and output playlists out."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
from hls_playlists import (
    BASE,
    MASTER_URL,
    ORIGIN,
    Seg,
    iframe_playlist,
    master_channel,
    media,
    plan_for,
    single_file_fmp4,
    steady,
    with_tags,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from harvest.domain.download import DownloadTask
from harvest.domain.registry import Endpoint
from harvest.engine.plan import Plan, PlanLimits, playlist_url
from harvest.errors import PlaylistError
from harvest.hls.parse import parse_media

ROOT = "vod/show/index/"


def lines_of(plan: Plan, rendition: str) -> list[str]:
    return plan.playlists[f"{ROOT}{rendition}/playlist.m3u8"].splitlines()


def header(lines: list[str], tag: str) -> str:
    return next(line.split(":", 1)[1] for line in lines if line.startswith(tag + ":"))


# --- a full master ------------------------------------------------------------------------------


def test_master_channel_plans_every_rendition_with_relative_uris() -> None:
    # GIVEN a master with two variants, audio, subtitles, closed captions and an I-frame playlist
    # WHEN the window [10, 50) is planned
    plan, origin = plan_for(master_channel(20), 10, 50)
    # THEN every playlist was read once, the master first
    assert [url for url, _ in origin.requests] == [
        MASTER_URL,
        f"{ORIGIN}/v360/index.m3u8",
        f"{ORIGIN}/v720/index.m3u8",
        f"{ORIGIN}/audio/en.m3u8",
        f"{ORIGIN}/subs/en.m3u8",
        f"{ORIGIN}/v360/iframes.m3u8",
    ]
    # AND one output playlist per rendition plus the master at prefix + Manifest
    assert plan.bucket == "media-1250000000"
    assert plan.master_key == "vod/show/index.m3u8"
    assert sorted(plan.playlists) == sorted(
        [
            "vod/show/index.m3u8",
            f"{ROOT}v0_640x360/playlist.m3u8",
            f"{ROOT}v1_1280x720/playlist.m3u8",
            f"{ROOT}audio_aac_en/playlist.m3u8",
            f"{ROOT}subs_subs_en/playlist.m3u8",
            f"{ROOT}iframe_0_640x360/playlist.m3u8",
        ]
    )
    master = plan.playlists[plan.master_key].splitlines()
    assert "index/v0_640x360/playlist.m3u8" in master
    assert "index/v1_1280x720/playlist.m3u8" in master
    assert any('URI="index/audio_aac_en/playlist.m3u8"' in line for line in master)
    assert any('URI="index/iframe_0_640x360/playlist.m3u8"' in line for line in master)
    assert any(line.endswith(",X-CUSTOM=keep") for line in master)
    # AND the tasks: segments 101..108 of v0, v1, audio; subtitles 101..104; nothing for I-frames
    # (their byte ranges live inside v0's whole-file segments)
    by_folder: dict[str, list[str]] = {}
    for task in plan.tasks:
        folder, _, name = task.key[len(ROOT) :].partition("/")
        by_folder.setdefault(folder, []).append(name)
    assert by_folder == {
        "v0_640x360": [f"{n}.ts" for n in range(101, 109)],
        "v1_1280x720": [f"{n}.ts" for n in range(101, 109)],
        "audio_aac_en": [f"{n}.aac" for n in range(101, 109)],
        "subs_subs_en": [f"{n}.vtt" for n in range(101, 105)],
    }
    assert plan.tasks[0] == DownloadTask(
        url=f"{ORIGIN}/v360/seg_101.ts",
        key=f"{ROOT}v0_640x360/101.ts",
        range=None,
        size=None,
        name="v0_640x360/101.ts",
        content_type="video/mp2t",
        counts=True,
    )
    assert plan.segment_count == 28
    # AND child playlists point at their segments relatively; I-frames into v0's objects
    assert "101.ts" in lines_of(plan, "v0_640x360")
    iframe = lines_of(plan, "iframe_0_640x360")
    assert iframe[iframe.index("#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z") + 1 :][:3] == [
        "#EXT-X-BYTERANGE:1000@100",
        "#EXTINF:6.000,",
        "../v0_640x360/101.ts",
    ]


def test_every_task_is_unique_and_planning_is_deterministic() -> None:
    first, _ = plan_for(master_channel(20), 10, 50)
    second, _ = plan_for(master_channel(20), 10, 50)
    assert first.to_json() == second.to_json()
    assert len({(t.url, str(t.range)) for t in first.tasks}) == len(first.tasks)
    assert len({t.key for t in first.tasks}) == len(first.tasks)


def test_renditions_stay_aligned_and_share_one_target_duration() -> None:
    # GIVEN a discontinuity at msn 102 in video and audio, and one 6.5 s segment in v720 only
    channel = master_channel(20)
    for path, name in (("v360/index.m3u8", "seg_{msn}.ts"), ("audio/en.m3u8", "a_{msn}.aac")):
        segs = with_tags(steady(20, first_msn=100, name=name), 2, "#EXT-X-DISCONTINUITY")
        channel[f"{ORIGIN}/{path}"] = media(segs, msn=100)
    segs = with_tags(steady(20, first_msn=100), 2, "#EXT-X-DISCONTINUITY")
    segs[4] = Seg(segs[4].uri, "6.500", segs[4].pdt)
    channel[f"{ORIGIN}/v720/index.m3u8"] = media(segs, msn=100, target=7)
    # WHEN the window starts exactly on the discontinuity (msn 102 at 12 s)
    plan, _ = plan_for(channel, 12, 40)
    main = [lines_of(plan, name) for name in ("v0_640x360", "v1_1280x720", "audio_aac_en")]
    # THEN variants and audio share MSN, DSN, first PDT and the target duration of the longest segment,
    # and none starts with a discontinuity
    for lines in main:
        assert header(lines, "#EXT-X-MEDIA-SEQUENCE") == "102"
        assert header(lines, "#EXT-X-DISCONTINUITY-SEQUENCE") == "1"
        assert header(lines, "#EXT-X-PROGRAM-DATE-TIME") == "2023-11-14T22:13:32.000Z"
        assert header(lines, "#EXT-X-TARGETDURATION") == "7"
        assert "#EXT-X-DISCONTINUITY" not in lines
    # AND subtitles keep their own target duration
    assert header(lines_of(plan, "subs_subs_en"), "#EXT-X-TARGETDURATION") == "10"


# --- byte ranges --------------------------------------------------------------------------------


def test_byte_ranges_become_one_task_per_contiguous_run_with_rebased_offsets() -> None:
    # GIVEN a media-playlist endpoint: one fMP4 file, init section at 0..800, segment i at 1000 + 5000i
    url = f"{ORIGIN}/single/index.m3u8"
    plan, _ = plan_for({url: single_file_fmp4(10)}, 12, 30, url=url)
    # THEN two runs are fetched: the init section and segments 2..4 (bytes 11000..26000)
    assert [(t.key, t.range, t.size, t.counts) for t in plan.tasks] == [
        (f"{ROOT}v0/main_0.mp4", (0, 800), 800, False),
        (f"{ROOT}v0/main_11000.mp4", (11000, 15000), 15000, True),
    ]
    # AND the Manifest is the VOD media playlist itself, offsets relative to each stored object
    lines = plan.playlists[plan.master_key].splitlines()
    assert list(plan.playlists) == [plan.master_key]
    assert '#EXT-X-MAP:URI="index/v0/main_0.mp4",BYTERANGE="800@0"' in lines
    assert [line for line in lines if line.startswith(("#EXT-X-BYTERANGE", "index/"))] == [
        "#EXT-X-BYTERANGE:5000@0",
        "index/v0/main_11000.mp4",
        "#EXT-X-BYTERANGE:5000@5000",
        "index/v0/main_11000.mp4",
        "#EXT-X-BYTERANGE:5000@10000",
        "index/v0/main_11000.mp4",
    ]


def test_touching_byte_ranges_merge_into_one_object_named_after_the_source() -> None:
    # GIVEN an init section that ends exactly where the first segment begins
    url = f"{ORIGIN}/single/index.m3u8"
    text = single_file_fmp4(10).replace('BYTERANGE="800@0"', 'BYTERANGE="1000@0"')
    plan, _ = plan_for({url: text}, 0, 12, url=url)
    assert [(t.key, t.range) for t in plan.tasks] == [(f"{ROOT}v0/main.mp4", (0, 11000))]
    assert '#EXT-X-MAP:URI="index/v0/main.mp4",BYTERANGE="1000@0"' in plan.playlists[plan.master_key]


def test_iframe_ranges_without_a_whole_file_task_are_fetched_as_ranges() -> None:
    # GIVEN an I-frame playlist whose segments point into files no variant downloads whole
    channel = master_channel(20)
    iframe_segs = [
        Seg("keyframes.mp4", pdt=BASE + 6 * i, before=(f"#EXT-X-BYTERANGE:500@{2000 * i}",))
        for i in range(20)
    ]
    channel[f"{ORIGIN}/v360/iframes.m3u8"] = media(iframe_segs, header=["#EXT-X-I-FRAMES-ONLY"], msn=100)
    plan, _ = plan_for(channel, 12, 24)
    # THEN each non-contiguous range is its own task, named by its offset
    iframe_tasks = [t for t in plan.tasks if t.key.startswith(f"{ROOT}iframe_0_640x360/")]
    assert [(t.key[len(ROOT) :], t.range) for t in iframe_tasks] == [
        ("iframe_0_640x360/keyframes_4000.mp4", (4000, 500)),
        ("iframe_0_640x360/keyframes_6000.mp4", (6000, 500)),
    ]
    assert iframe_tasks[0].name == "iframe_0_640x360/keyframes_4000.mp4 (bytes 4000-4499 of keyframes.mp4)"


# --- requests -----------------------------------------------------------------------------------


def test_every_playlist_request_carries_the_timeshift_query_and_the_endpoint_headers() -> None:
    # GIVEN an endpoint with a time-shift query and an auth header
    channel = master_channel(20)
    query = "?start=1700000010&end=1700000050"
    shifted = {url + query: text for url, text in channel.items()}
    endpoint = Endpoint(
        name="main", url=MASTER_URL, timeshift_query="start={start}&end={end}", headers={"X-Token": "t"}
    )
    # WHEN planning [10.5, 49.2): the query is widened to whole seconds
    _, origin = plan_for(shifted, 10.5, 49.2, endpoint=endpoint)
    # THEN every request (master and children) had the query and the headers
    assert len(origin.requests) == 6
    assert all(url.endswith(query) and headers == {"X-Token": "t"} for url, headers in origin.requests)


@pytest.mark.parametrize(
    ("url", "template", "expected"),
    [
        ("http://h/a.m3u8", "", "http://h/a.m3u8"),
        ("http://h/a.m3u8", "start={start}&end={end}", "http://h/a.m3u8?start=10&end=21"),
        ("http://h/a.m3u8?tok=1", "start={start}&end={end}", "http://h/a.m3u8?tok=1&start=10&end=21"),
        ("http://h/a.m3u8?start=5&end=6", "start={start}&end={end}", "http://h/a.m3u8?start=5&end=6"),
        ("http://h/a.m3u8", "t={start}-{end}", "http://h/a.m3u8?t=10-21"),
    ],
)
def test_playlist_url_appends_the_timeshift_query(url: str, template: str, expected: str) -> None:
    assert playlist_url(url, template, 10.7, 20.2) == expected


def test_a_timeshift_query_with_unknown_fields_is_a_playlist_error() -> None:
    with pytest.raises(PlaylistError, match=r"timeshift_query 'from=\{from\}' is not valid"):
        playlist_url("http://h/a.m3u8", "from={from}", 1, 2)


# --- keys, gaps, failures -----------------------------------------------------------------------


def _encrypted(url: str) -> dict[str, str]:
    fairplay = '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://fp",KEYFORMAT="com.apple.streamingkeydelivery"'
    segs = with_tags(steady(10), 0, '#EXT-X-KEY:METHOD=AES-128,URI="keys/k1.key"', fairplay)
    segs = with_tags(segs, 3, '#EXT-X-KEY:METHOD=AES-128,URI="keys/k2.key"')
    return {url: media(segs)}


def test_keys_stay_on_the_key_server_by_default() -> None:
    url = f"{ORIGIN}/enc/index.m3u8"
    plan, _ = plan_for(_encrypted(url), 0, 30, url=url)
    text = plan.playlists[plan.master_key]
    assert f'#EXT-X-KEY:METHOD=AES-128,URI="{ORIGIN}/enc/keys/k1.key"' in text
    assert f'#EXT-X-KEY:METHOD=AES-128,URI="{ORIGIN}/enc/keys/k2.key"' in text
    assert all(task.counts for task in plan.tasks)
    assert len(plan.tasks) == 5


def test_copy_keys_downloads_http_keys_and_points_at_the_copies() -> None:
    url = f"{ORIGIN}/enc/index.m3u8"
    plan, _ = plan_for(_encrypted(url), 0, 30, url=url, copy_keys=True)
    key_tasks = [t for t in plan.tasks if not t.counts]
    # THEN the two AES-128 keys are tasks of 16 bytes each; the FairPlay skd:// key is not
    assert [(t.url, t.key, t.size) for t in key_tasks] == [
        (f"{ORIGIN}/enc/keys/k1.key", f"{ROOT}keys/0.key", 16),
        (f"{ORIGIN}/enc/keys/k2.key", f"{ROOT}keys/1.key", 16),
    ]
    text = plan.playlists[plan.master_key]
    assert '#EXT-X-KEY:METHOD=AES-128,URI="index/keys/0.key"' in text
    assert '#EXT-X-KEY:METHOD=AES-128,URI="index/keys/1.key"' in text
    assert 'URI="skd://fp"' in text
    assert plan.segment_count == 5


def test_gap_segments_are_never_planned_but_stay_in_the_playlist() -> None:
    url = f"{ORIGIN}/gappy/index.m3u8"
    plan, _ = plan_for({url: media(with_tags(steady(5), 2, "#EXT-X-GAP"))}, 0, 30, url=url)
    assert [t.url.rsplit("/", 1)[1] for t in plan.tasks] == [
        "seg_0.ts",
        "seg_1.ts",
        "seg_3.ts",
        "seg_4.ts",
    ]
    lines = plan.playlists[plan.master_key].splitlines()
    gap = lines.index("#EXT-X-GAP")
    assert lines[gap + 2] == f"{ORIGIN}/gappy/seg_2.ts"


def test_a_variant_that_is_itself_a_master_fails_the_plan() -> None:
    channel = master_channel(20)
    channel[f"{ORIGIN}/v720/index.m3u8"] = channel[MASTER_URL]
    with pytest.raises(PlaylistError, match=r"v720/index\.m3u8 line \d+: this is a master playlist"):
        plan_for(channel, 10, 50)


def test_a_missing_rendition_playlist_fails_the_plan() -> None:
    channel = master_channel(20)
    del channel[f"{ORIGIN}/subs/en.m3u8"]
    with pytest.raises(PlaylistError, match=r"subs/en\.m3u8: HTTP 404"):
        plan_for(channel, 10, 50)


def test_no_pdt_fails_for_an_ended_playlist_and_uses_the_live_edge_for_a_live_one() -> None:
    url = f"{ORIGIN}/nopdt/index.m3u8"
    ended = media(steady(10, pdt="none"), ended=True)
    with pytest.raises(PlaylistError, match="has no EXT-X-PROGRAM-DATE-TIME; cannot place a time window"):
        plan_for({url: ended}, 48, 60, url=url, now=BASE + 60)
    # GIVEN the same playlist still live, read at BASE + 60: its last segment ends then
    plan, _ = plan_for({url: media(steady(10, pdt="none"))}, 48, 60, url=url, now=BASE + 60)
    assert [t.url.rsplit("/", 1)[1] for t in plan.tasks] == ["seg_8.ts", "seg_9.ts"]
    # AND the guessed times are not written as if the origin had said them
    assert "#EXT-X-PROGRAM-DATE-TIME" not in plan.playlists[plan.master_key]


def test_a_window_the_playlist_does_not_cover_names_the_rendition() -> None:
    # GIVEN audio that stops at 72 s while video runs to 120 s
    channel = master_channel(20)
    channel[f"{ORIGIN}/audio/en.m3u8"] = media(steady(12, first_msn=100, name="a_{msn}.aac"), msn=100)
    # WHEN the window runs to 100 s / THEN the error names the audio rendition and the shortfall
    with pytest.raises(
        PlaylistError, match=r"rendition audio_aac_en does not cover the window: 28\.0 s missing at"
    ):
        plan_for(channel, 10, 100)


# --- JSON and chunks ----------------------------------------------------------------------------


def test_plan_survives_a_json_round_trip() -> None:
    plan, _ = plan_for(master_channel(20), 10, 50)
    stored = json.loads(json.dumps(plan.to_json()))
    again = Plan.from_json(stored)
    assert again == plan
    assert stored["format"] == 1
    assert again.segment_count == plan.segment_count


def _task(n: int, size: int | None) -> DownloadTask:
    return DownloadTask(f"u{n}", f"k{n}", None, size, f"t{n}", "video/mp2t")


@pytest.mark.parametrize(
    ("sizes", "max_tasks", "max_bytes", "expected"),
    [
        ([None] * 5, 2, 1000, [[0, 1], [2, 3], [4]]),
        ([100, 100, 100, 100], 10, 250, [[0, 1], [2, 3]]),
        ([100, 900, 100], 10, 500, [[0], [1], [2]]),  # an oversized task gets a chunk of its own
        ([None, 300, None, 300], 10, 500, [[0, 1, 2], [3]]),  # unknown sizes count 0 bytes
        ([], 10, 500, []),
        ([1, 1], 0, 500, [[0], [1]]),  # max_tasks below 1 is treated as 1
    ],
)
def test_chunks_split_in_order_within_both_limits(
    sizes: list[int | None], max_tasks: int, max_bytes: int, expected: list[list[int]]
) -> None:
    plan = Plan(bucket="b", master_key="m", playlists={}, tasks=[_task(n, s) for n, s in enumerate(sizes)])
    chunks = plan.chunks(max_tasks, max_bytes)
    assert [[task.url for task in chunk] for chunk in chunks] == [[f"u{n}" for n in c] for c in expected]
    assert plan.chunks(max_tasks, max_bytes) == chunks  # deterministic


# --- scale --------------------------------------------------------------------------------------


def test_a_24_hour_playlist_of_14400_segments_plans() -> None:
    # GIVEN a day of 6 s segments with PDT on every one (no timing asserted: see bench/)
    url = f"{ORIGIN}/day/index.m3u8"
    text = media(steady(14_400, first_msn=1000), msn=1000)
    # WHEN the whole day but the first minute is planned
    plan, _ = plan_for({url: text}, 60, 86_400, url=url)
    # THEN every segment from msn 1010 on is a task, and the playlist round-trips
    assert len(plan.tasks) == 14_390
    assert plan.tasks[0].key == f"{ROOT}v0/1010.ts"
    again = parse_media(plan.playlists[plan.master_key], f"http://127.0.0.1:9/{plan.master_key}")
    assert len(again.segments) == 14_390
    assert again.segments[0].msn == 1010


@st.composite
def ranged_playlists(draw: st.DrawFn) -> tuple[str, float, float]:
    """One file addressed by byte ranges with random lengths and holes (some offsets implicit)."""
    count = draw(st.integers(min_value=1, max_value=25))
    segs: list[Seg] = []
    offset = draw(st.integers(0, 500))
    for i in range(count):
        hole = draw(st.sampled_from([0, 0, 0, 7, 300]))
        length = draw(st.integers(1, 4000))
        offset += hole
        spec = f"{length}" if hole == 0 and i > 0 else f"{length}@{offset}"
        segs.append(
            Seg("main.mp4", pdt=BASE + 6 * i if i == 0 else None, before=(f"#EXT-X-BYTERANGE:{spec}",))
        )
        offset += length
    start = draw(st.floats(min_value=0, max_value=6 * count - 0.01))
    end = draw(st.floats(min_value=start + 0.01, max_value=6 * count))
    return media(segs), start, end


@settings(max_examples=60, deadline=None)
@given(ranged_playlists())
def test_every_output_byte_range_points_at_the_same_source_bytes(case: tuple[str, float, float]) -> None:
    # GIVEN any single-file playlist and window / WHEN planned
    text, start, end = case
    url = f"{ORIGIN}/single/index.m3u8"
    plan, _ = plan_for({url: text}, start, end, url=url)
    source = parse_media(text, url)
    output = parse_media(plan.playlists[plan.master_key], f"http://out/{plan.master_key}")
    tasks = {f"http://out/{task.key}": task for task in plan.tasks}
    # THEN each output range, shifted by its object's start, is the source range, inside the object
    by_msn = {s.msn: s for s in source.segments}
    for segment in output.segments:
        task, src = tasks[segment.uri], by_msn[segment.msn]
        assert segment.byterange is not None
        assert src.byterange is not None
        assert task.range[0] + segment.byterange.offset == src.byterange.offset
        assert segment.byterange.end <= task.range[1] == task.size
    # AND no two tasks overlap or touch (touching ranges are one run)
    spans = sorted((t.range[0], t.range[0] + t.range[1]) for t in plan.tasks)
    assert all(a_end < b_start for (_, a_end), (b_start, _) in pairwise(spans))


# --- renditions kept between reading and writing (see conftest: each test runs both ways) ---------


@pytest.mark.parametrize(("end", "trailing"), [(30, False), (60, True)])
def test_tags_after_the_last_segment_are_written_only_when_the_window_reaches_it(
    end: float, trailing: bool
) -> None:
    # GIVEN a media playlist of ten 6 s segments with a kept tag after the last one
    url = f"{ORIGIN}/solo/index.m3u8"
    playlists = {url: media(steady(10), msn=0, trailer=["#EXT-X-CUE-OUT:30"])}
    # WHEN the window ends mid-playlist, or runs to its end
    plan, _ = plan_for(playlists, 0, end, url=url)
    lines = plan.playlists[plan.master_key].splitlines()
    # THEN the tag is written, before the ENDLIST, only in the second case
    assert ("#EXT-X-CUE-OUT:30" in lines) is trailing
    if trailing:
        assert lines[-2:] == ["#EXT-X-CUE-OUT:30", "#EXT-X-ENDLIST"]


def test_playlists_listing_more_than_twice_the_task_cap_are_refused_naming_the_limit() -> None:
    # GIVEN one variant of 8 segments and three I-frame playlists over the same segments: 8
    # downloads, 32 playlist entries
    segs = steady(8)
    lines = ["#EXTM3U", "#EXT-X-STREAM-INF:BANDWIDTH=800000", "v/index.m3u8"]
    lines += [f'#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={n},URI="v/iframes{n}.m3u8"' for n in (1, 2, 3)]
    playlists = {MASTER_URL: "\n".join(lines) + "\n", f"{ORIGIN}/v/index.m3u8": media(segs, msn=0)}
    playlists |= {f"{ORIGIN}/v/iframes{n}.m3u8": iframe_playlist(segs) for n in (1, 2, 3)}
    # WHEN the task cap allows the 8 downloads but not 32 entries (2 x 10), THEN the job is refused
    with pytest.raises(
        PlaylistError,
        match=r"list 2\d segments .*more than the 20 one job may write \(the limit,"
        r" 2 x HARVEST_MAX_PLAN_TASKS\)",
    ):
        plan_for(playlists, 0, 48, limits=PlanLimits(max_tasks=10))
    # and with a cap of 16 it is planned: 8 downloads, 32 entries
    plan, _ = plan_for(playlists, 0, 48, limits=PlanLimits(max_tasks=16))
    assert len(plan.tasks) == 8
