"""A broadcast channel harvested through `harvest serve`: the "Done when" of issue 11.

The live test origin runs a real-time channel with SCTE-35 ad breaks marked both ways (EXT-X-DATERANGE
pairs whose closing tag has no START-DATE, and CUE-OUT / CUE-OUT-CONT / CUE-IN with OATCLS), with
EXT-X-DEFINE variables in the master and the media playlists, subtitles without PROGRAM-DATE-TIME,
content steering with two pathways, and an endpoint URL that redirects to the master. A job harvests
a recent window through the real Tencent SDK; the VOD must hold every break inside the window in
every rendition, every URI must resolve, every object must be the origin's bytes, and ffmpeg must
decode it with -xerror. m3u8 (a test-only dependency) reads the output as an independent check.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import m3u8
import pytest
import requests
from tests.support.api_stack import ApiStack, job_params
from tests.support.clock import ManualClock
from tests.support.engine import BUCKET, DESTINATION, Engine, ffmpeg_decode_errors
from tests.support.media import TEST_NOW
from tests.support.serve_process import serve_env, start_serve

from harvest.adapters.sql.db import Database
from harvest.adapters.sql.jobstore import SqlJobStore
from harvest.devtools import ChannelSpec, LiveOrigin, Pool, write_channels_yaml
from harvest.domain.job import JobStatus
from harvest.engine.plan import Plan
from harvest.hls.parse import format_date, parse_master, parse_media

pytest_plugins = ("tests.support.media", "tests.support.engine", "tests.support.api_stack")

pytestmark = pytest.mark.media

SEGMENT = 2  # seconds
EVERY, LENGTH = 10, 3  # a 6 s break every 20 s (segments 5..7 of every 10)


@pytest.fixture
def broadcast(media_pools: dict[str, Pool]) -> Iterator[LiveOrigin]:
    spec = ChannelSpec(
        "ts",
        media_pools["ts"],
        dvr_window=3600,
        ad_breaks=(EVERY, LENGTH),
        variables=True,
        subtitles_pdt=False,
        steering=True,
    )
    origin = LiveOrigin({"news": spec}).start()  # the wall clock: `harvest serve` runs in real time
    yield origin
    origin.stop()


def breaks_overlapping(start: float, end: float) -> dict[str, int]:
    """ID -> first segment of every ad break whose [start, end) overlaps the window."""
    found = {}
    for event in range(int(start) // (EVERY * SEGMENT) - 1, int(end) // (EVERY * SEGMENT) + 1):
        first = event * EVERY + EVERY // 2
        if first * SEGMENT < end and (first + LENGTH) * SEGMENT > start:
            found[f"splice-{event}"] = first
    return found


def before_first_uri(lines: list[str]) -> list[str]:
    return lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))]


def msn_of_stored(uri: str) -> str:
    """The source media sequence number a stored segment is named after (`<msn>.<ext>`)."""
    return Path(uri).stem.split("_")[0]


def msn_of(uri: str) -> int:
    return int(Path(urlsplit(uri).path).stem)


def test_a_broadcast_channel_harvests_to_a_vod_with_every_break_in_every_rendition(
    tmp_path: Path, broadcast: LiveOrigin
) -> None:
    # GIVEN `harvest serve` with the channel's endpoint pointing at the redirecting master URL
    registry = tmp_path / "channels.yaml"
    write_channels_yaml(registry, broadcast.url, broadcast.channels, master="redirect/master.m3u8")
    data_dir = tmp_path / "data"
    process = start_serve(serve_env(data_dir, registry, workers=2), data_dir)
    try:
        # WHEN a 30 s window that ends at least 10 s ago is harvested: it starts 3 s into one break
        # (whose opening tags are no longer in the window's playlist) and holds the next one whole
        period = EVERY * SEGMENT
        latest = int(time.time()) - 40
        start = (latest - (EVERY // 2) * SEGMENT - 3) // period * period + (EVERY // 2) * SEGMENT + 3
        end = start + 30
        process.create(
            {
                "ID": "broadcast",
                "ChannelName": "news",
                "EndpointName": "hls",
                "TimeFormat": "Epoch seconds",
                "StartTime": str(start),
                "EndTime": str(end),
                "Destination": DESTINATION,
                "Manifest": "news/index.m3u8",
            }
        )
        status = process.wait_until_ended("broadcast", timeout=90)
        job = process.describe("broadcast")
    finally:
        process.stop()
    # THEN the job completed
    assert status == "Completed", job.ErrMessage
    bucket = data_dir / "cos" / BUCKET
    master_path = bucket / "out" / "news" / "index.m3u8"
    master_text = master_path.read_text()
    master = parse_master(master_text, master_path.as_uri())
    # AND the master names one pathway, with substituted variables and no steering or DEFINE left
    assert "PATHWAY-ID" not in master_text
    assert "CONTENT-STEERING" not in master_text
    assert "{$" not in master_text
    assert "EXT-X-DEFINE" not in master_text
    assert [v.uri.rsplit("/", 2)[1] for v in master.variants] == ["v0_320x180", "v1_480x270", "v2_640x360"]
    assert m3u8.loads(master_text).playlists[0].stream_info.codecs.endswith(",mp4a.40.2")
    assert broadcast.stats.snapshot()["requests"].get("pathway-b", 0) == 0

    expected = breaks_overlapping(start, end)
    assert len(expected) == 2  # the one the window starts in, and a whole one
    children = [v.uri for v in master.variants] + [m.uri for m in master.media if m.uri]
    children += [i.uri for i in master.iframe_streams]
    video_msns: list[int] = []
    for uri in children:
        path = Path(urlsplit(uri).path)
        text = path.read_text()
        playlist = parse_media(text, uri)
        name = path.parent.name
        # every URI resolves to a stored object
        for segment in playlist.segments:
            assert Path(urlsplit(segment.uri).path).is_file(), f"{name} points at a missing {segment.uri}"
        # every break that overlaps the window is there, as one merged DATERANGE, in every rendition
        dateranges = {d.id: d for d in playlist.dateranges}
        assert sorted(dateranges) == sorted(expected), name
        for event, first in expected.items():
            attributes = dict(dateranges[event].attributes)
            assert attributes["START-DATE"] == f'"{format_date(first * SEGMENT)}"', (name, attributes)
            if first * SEGMENT >= start:  # the opening tag is in the window's playlist
                assert "SCTE35-OUT" in attributes, (name, attributes)
            if (first + LENGTH) * SEGMENT <= end:  # so is the closing one: merged into the same range
                assert "SCTE35-IN" in attributes, (name, attributes)
                assert "END-DATE" in attributes, (name, attributes)
        # and the CUE-OUT of each break that starts inside the VOD sits at that break's first segment
        lines = text.splitlines()
        msns = [msn_of(s.uri) for s in playlist.segments]
        starting = sorted(first for first in expected.values() if msns[0] <= first <= msns[-1])
        cue_outs = [
            msn_of(next(uri for uri in lines[i:] if not uri.startswith("#")))
            for i, line in enumerate(lines)
            if line.startswith("#EXT-X-CUE-OUT:")
        ]
        assert cue_outs == starting, name
        # the VOD starts inside a break, and its first segment says so
        assert any(line.startswith("#EXT-X-CUE-OUT-CONT:") for line in before_first_uri(lines)), name
        if name.startswith("v0_"):
            video_msns = msns
        if name.startswith("subs_"):
            # subtitles had no PDT: aligned to the video by media sequence, and no PDT invented
            assert not any(line.startswith("#EXT-X-PROGRAM-DATE-TIME") for line in lines)
            assert msns == video_msns
        # m3u8 reads every playlist we wrote as a VOD with the same segments
        parsed = m3u8.loads(text)
        assert parsed.is_endlist
        assert len(parsed.segments) == len(playlist.segments)

    # AND every stored object is byte for byte what the origin serves at the address it came from
    db = Database.connect(f"sqlite:///{data_dir / 'harvest.db'}")
    try:
        plan = Plan.from_json(SqlJobStore(db).get_plan("broadcast"))
    finally:
        db.close()
    assert plan.tasks
    for task in plan.tasks:
        assert "/redirect/" not in task.url
        assert "{$" not in task.url
        channel, rendition, leaf = urlsplit(task.url).path.strip("/").split("/")
        assert channel == "news", task.url
        assert re.fullmatch(r"\d+\.(ts|aac|vtt)", leaf), task.url
        source = broadcast.segment_bytes("news", rendition, int(leaf.split(".")[0]))
        assert (bucket / task.key).read_bytes() == source, task.name
        assert requests.get(task.url, timeout=10).content == source
    # AND ffmpeg decodes every rendition without a single error
    assert ffmpeg_decode_errors(master_path) == ""


# --- every kind of channel, in process ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ts", "fmp4", "aes", "byterange"])
def test_every_kind_of_broadcast_channel_harvests_byte_exact_with_the_same_breaks_everywhere(
    kind: str,
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    engine_factory: Callable[..., Engine],
) -> None:
    # GIVEN a channel of this kind with every broadcast feature of the test origin, and segment URIs
    # that name no media type (get.php?seg=<n>) where the kind allows it
    spec = ChannelSpec(
        kind,
        media_pools[kind],
        dvr_window=3600,
        ad_breaks=(EVERY, LENGTH),
        variables=True,
        subtitles_pdt=False,
        steering=True,
        script_uris=kind in ("ts", "fmp4"),
        extras=True,
    )
    clock = ManualClock(TEST_NOW)
    origin = start_origin({kind: spec}, clock=clock)
    engine = engine_factory(origin, clock)
    start, end = TEST_NOW - 41.5, TEST_NOW - 9.2
    # WHEN a job harvests the window
    engine.create(f"job-{kind}", kind, start, end)
    job = engine.wait(f"job-{kind}")
    # THEN it completes and every object is the origin's bytes, named by its media type
    assert (job.status, job.err_message) == (JobStatus.COMPLETED, "")
    plan = Plan.from_json(engine.deps.store.get_plan(job.id))
    for task in plan.tasks:
        rng = task.range
        source = engine.deps.origin.get_bytes(task.url, {}, (rng[0], rng[1]) if rng else None)
        assert (engine.bucket_root / task.key).read_bytes() == source, task.name
        extension = task.key.rsplit(".", 1)[1]
        assert extension in ("ts", "m4s", "mp4", "vtt", "key"), task.key
        assert task.content_type != "application/octet-stream" or extension == "key", task
    assert origin.stats.snapshot()["requests"].get("pathway-b", 0) == 0
    assert any("get.php?seg=" in task.url for task in plan.tasks) == spec.script_uris
    # AND every media playlist holds the same date ranges: the breaks overlapping the window
    master = engine.bucket_root / plan.master_key
    expected = sorted(breaks_overlapping(float(int(start)), float(int(end))))
    assert expected
    for text in (text for key, text in plan.playlists.items() if key != plan.master_key):
        ids = [d.id for d in parse_media(text, master.as_uri()).dateranges]
        assert sorted(i for i in ids if i.startswith("splice-")) == expected
    # AND the packagers' extras survive: attributes and tags kept, URIs fixed
    master_text = master.read_text()
    assert '#EXT-X-SESSION-DATA:DATA-ID="com.example.channel",VALUE="' + kind + '"' in master_text
    (captions,) = [line for line in master_text.splitlines() if "TYPE=CLOSED-CAPTIONS" in line]
    assert "URI=" not in captions  # case 8: it may not have one, and it no longer crashes the plan
    variant = next(text for key, text in plan.playlists.items() if "/v0_" in key).splitlines()
    assert "#EXT-X-START:TIME-OFFSET=-6.0" in variant
    if kind != "byterange":
        assert any(line.startswith("#EXT-X-BITRATE:") for line in variant)
    if kind == "aes":  # case 6: KEYID and the vendor's attribute stay on every key
        keys = [line for line in variant if line.startswith("#EXT-X-KEY:")]
        assert keys
        assert all(",KEYID=0x" in key and 'X-KEY-VENDOR="harvest-devtools"' in key for key in keys)
    interstitials = [line for line in variant if "com.apple.hls.interstitial" in line]
    assert interstitials
    assert all(f'X-ASSET-URI="{origin.url}/{kind}/ads/' in line for line in interstitials)
    uris = [i for i, line in enumerate(variant) if not line.startswith("#")]
    notes = [i for i, line in enumerate(variant) if line.startswith("#EXT-X-VENDOR-SEGMENT-NOTE:")]
    assert len(notes) == len(uris)  # one per segment, before it, naming that segment
    for note, uri in zip(notes, uris, strict=True):
        assert note < uri
        if kind != "byterange":  # there stored names are the packed resources'
            assert variant[note].endswith(f"msn={msn_of_stored(variant[uri])}")
    # AND ffmpeg decodes every rendition without an error
    assert ffmpeg_decode_errors(master) == ""


# --- warnings reach the job's progress -----------------------------------------------------------------


def test_playlist_warnings_reach_the_jobs_progress(api_stack: ApiStack) -> None:
    # GIVEN a job whose plan found a malformed tag outside the window
    api_stack.create(job_params("warned"))
    warning = (
        "playlist http://origin/v0.m3u8 line 8: #EXT-X-DATERANGE has no ID (outside the window, ignored)"
    )
    plan = Plan(bucket=BUCKET, master_key="out/warned/index.m3u8", playlists={}, warnings=[warning])
    assert api_stack.store.save_plan("warned", plan.to_json(), [], 0, [])
    # WHEN its progress is asked for (the CLI's extension action, through the SDK's generic client)
    response = api_stack.common().call_json("DescribeStreamPackageHarvestJobProgress", {"ID": "warned"})
    # THEN the warning is there (`harvest jobs wait` prints it)
    assert response["Response"]["Warnings"] == [warning]
    assert api_stack.store.get("warned").extra["warnings"] == [warning]


def test_a_malformed_tag_outside_the_window_is_a_warning_and_inside_it_fails_the_job(
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    engine_factory: Callable[..., Engine],
) -> None:
    # GIVEN a live channel with a malformed DATERANGE before one segment, 60 s before the live edge
    broken = int(TEST_NOW // SEGMENT) - 30
    spec = ChannelSpec("ts", media_pools["ts"], dvr_window=3600, broken_tag_msn=broken, timeshift=False)
    clock = ManualClock(TEST_NOW)
    engine = engine_factory(start_origin({"ts": spec}, clock=clock), clock)
    # WHEN a window after it is harvested (the origin serves the whole DVR window whatever the query)
    engine.create("after", "ts", TEST_NOW - 30, TEST_NOW - 10)
    job = engine.wait("after")
    # THEN the job completes, and the warning is in the job's progress with the line and the reason
    assert (job.status, job.err_message) == (JobStatus.COMPLETED, "")
    (warning, *_) = job.extra["warnings"]
    assert re.search(
        r"line \d+: #EXT-X-DATERANGE START-DATE 'not a date' is not valid \(outside the window", warning
    )
    # WHEN a window holding that segment is harvested / THEN the job fails naming line and reason
    engine.create("inside", "ts", broken * SEGMENT - 4, broken * SEGMENT + 4)
    job = engine.wait("inside")
    assert job.status is JobStatus.FAILED
    assert re.search(
        r"line \d+: #EXT-X-DATERANGE START-DATE 'not a date' is not valid \(segment \d+, inside",
        job.err_message,
    )


@pytest.mark.parametrize("breaks", [(10, 3), (10, 5), (10, 9), (4, 1)])
def test_the_test_origin_opens_and_closes_every_break_both_ways(
    breaks: tuple[int, int], media_pools: dict[str, Pool], start_origin: Callable[..., LiveOrigin]
) -> None:
    # GIVEN a channel with breaks of `length` segments every `every`
    length = breaks[1]
    origin = start_origin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=120, ad_breaks=breaks)})
    # WHEN its live playlist is read
    text = requests.get(origin.playlist_url("ts", "v0"), timeout=10).text
    playlist = parse_media(text, origin.playlist_url("ts", "v0"))
    # THEN every break that starts and ends in it has one merged DATERANGE of length * 2 s with both
    # SCTE-35 halves, and a CUE-OUT `length` segments before its CUE-IN
    first_msn, last_msn = playlist.segments[0].msn, playlist.segments[-1].msn
    closed_by = playlist.segments[-1].pdt or 0.0  # a break ending later has no closing tag yet
    whole = [
        d
        for d in playlist.dateranges
        if "SCTE35-OUT" in dict(d.attributes) and d.end is not None and d.end <= closed_by
    ]
    assert whole
    for daterange in whole:
        attributes = dict(daterange.attributes)
        assert "SCTE35-IN" in attributes
        assert daterange.end is not None  # (kept by the filter above; said again for the type)
        assert daterange.end - (daterange.start or 0) == length * 2
    lines = text.splitlines()
    uris = [i for i, line in enumerate(lines) if not line.startswith("#")]
    outs = [
        sum(1 for u in uris if u < i) for i, line in enumerate(lines) if line.startswith("#EXT-X-CUE-OUT:")
    ]
    ins = [sum(1 for u in uris if u < i) for i, line in enumerate(lines) if line == "#EXT-X-CUE-IN"]
    assert outs
    assert all(o + length in ins for o in outs if first_msn + o + length <= last_msn)
