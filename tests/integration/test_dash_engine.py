"""DASH and CMAF endpoints harvested by the real engine (handlers, pump, SQLite, local disk) from the
live test origin's fMP4 media in every addressing mode; the MPD written is checked against the
ISO/IEC 23009-1 schema, byte for byte against the origin, and decoded by ffmpeg with -xerror."""

from __future__ import annotations

from collections.abc import Callable
from xml.etree import ElementTree as ET

import pytest
from tests.support.clock import ManualClock
from tests.support.dash import NS, assert_valid_mpd, stored_segments
from tests.support.engine import Engine, ffmpeg_decode_errors
from tests.support.media import TEST_NOW

from harvest.devtools import ChannelSpec, FaultPlan, LiveOrigin, Pool
from harvest.domain.job import JobStatus
from harvest.domain.validation import CreateParams
from harvest.usecases.api_jobs import create_job

pytest_plugins = ("tests.support.media", "tests.support.engine")

pytestmark = pytest.mark.media

SEGMENT = 2
EDGE = int(TEST_NOW) // SEGMENT - 1  # the live edge's segment number at TEST_NOW
POOL = 6  # segments in the 12 s test pool: the origin loops it, so media timestamps restart every POOL
# A window of five segments inside one loop of the pool, well inside the DVR window: a Period whose
# media timestamps jump back would not decode, so single-Period windows never cross a loop.
FIRST = (EDGE - 24) // POOL * POOL
LAST = FIRST + 4


def create(engine: Engine, job_id: str, endpoint: str, start: float, end: float, manifest: str) -> None:
    params = CreateParams(
        id=job_id,
        channel_name="live",
        endpoint_name=endpoint,
        time_format="Epoch seconds",
        start_time=str(int(start)),
        end_time=str(int(end)),
        destination="https://vod-1250000000.cos.ap-singapore.myqcloud.com/out/",
        manifest=manifest,
    )
    create_job(
        engine.deps.store, engine.deps.relay, engine.deps.registry, engine.settings, params, engine.clock()
    )


def harvest(
    engine_factory: Callable[..., Engine],
    start_origin: Callable[..., LiveOrigin],
    spec: ChannelSpec,
    endpoint: str,
    segments: tuple[int, int],
    manifest: str = "show/index.mpd",
    faults: FaultPlan | None = None,
) -> tuple[Engine, JobStatus, str]:
    clock = ManualClock(TEST_NOW)
    origin = start_origin({"live": spec}, clock=clock, faults=faults)
    engine = engine_factory(origin, clock)
    first, last = segments
    create(engine, "job", endpoint, first * SEGMENT, (last + 1) * SEGMENT, manifest)
    job = engine.wait("job")
    return engine, job.status, job.err_message


@pytest.mark.parametrize("mode", ["number", "number-timeline", "time-timeline", "list"])
def test_a_dash_endpoint_in_every_addressing_mode_harvests_to_a_valid_static_mpd(
    engine_factory: Callable[..., Engine],
    start_origin: Callable[..., LiveOrigin],
    media_pools: dict[str, Pool],
    mode: str,
) -> None:
    # GIVEN a live DASH channel in this addressing mode
    spec = ChannelSpec("fmp4", media_pools["fmp4"], dvr_window=600, dash=mode)
    # WHEN a 10 s window well inside the DVR window is harvested
    first, last = FIRST, LAST
    engine, status, error = harvest(engine_factory, start_origin, spec, "dash", (first, last))
    # THEN it completes, and the MPD is static, schema-valid and lists exactly the stored segments
    assert status is JobStatus.COMPLETED, error
    mpd_path = engine.bucket_root / "out" / "show" / "index.mpd"
    text = mpd_path.read_text()
    assert_valid_mpd(text)
    mpd = ET.fromstring(text)
    assert mpd.get("type") == "static"
    for name in ("availabilityStartTime", "minimumUpdatePeriod", "timeShiftBufferDepth"):
        assert mpd.get(name) is None
    assert mpd.get("mediaPresentationDuration") == "PT10.000S"
    lists = stored_segments(mpd, mpd_path.parent)
    assert set(lists) == {"v0", "v1", "v2", "audio"}
    origin = engine.origin
    for rep_id, (init, files) in lists.items():
        assert list(files) == list(range(first, last + 1))
        # AND every segment and the init section are the origin's bytes, stored once
        assert init.read_bytes() == origin.init_bytes("live", rep_id)
        for n, path in files.items():
            assert path.read_bytes() == origin.segment_bytes("live", rep_id, n)
        assert sorted(init.parent.iterdir()) == sorted([init, *files.values()])
    # AND ffmpeg decodes it with -xerror
    assert ffmpeg_decode_errors(mpd_path) == ""


def test_a_window_across_a_period_boundary_gives_a_two_period_mpd_with_protection_and_events(
    engine_factory: Callable[..., Engine],
    start_origin: Callable[..., LiveOrigin],
    media_pools: dict[str, Pool],
) -> None:
    # GIVEN a multi-Period channel (a Period per loop of the pool) with DRM signalling and SCTE-35 events
    spec = ChannelSpec(
        "fmp4", media_pools["fmp4"], dvr_window=600, dash="time-timeline", dash_period=POOL,
        dash_protection=True, ad_breaks=(POOL, 2),
    )  # fmt: skip
    boundary = FIRST + POOL  # the first segment of a Period
    first, last = boundary - 4, boundary + 3
    # WHEN a window from 4 segments before the boundary to 4 after it is harvested
    engine, status, error = harvest(engine_factory, start_origin, spec, "dash", (first, last))
    assert status is JobStatus.COMPLETED, error
    mpd_path = engine.bucket_root / "out" / "show" / "index.mpd"
    text = mpd_path.read_text()
    assert_valid_mpd(text)
    live = ET.fromstring(engine.origin.url and _live_mpd(engine))
    mpd = ET.fromstring(text)
    # THEN the MPD has two Periods, the second starting where the boundary lies in the VOD
    periods = mpd.findall("d:Period", NS)
    assert [p.get("id") for p in periods] == [f"p{boundary // POOL - 1}", f"p{boundary // POOL}"]
    assert [p.get("start") for p in periods] == ["PT0.000S", "PT8.000S"]
    assert mpd.get("mediaPresentationDuration") == "PT16.000S"
    # AND each Period's timeline holds exactly its stored segments ($Time$ -> stored by number)
    for period, numbers in zip(periods, [range(first, boundary), range(boundary, last + 1)], strict=True):
        files = stored_segments(ET.fromstring(ET.tostring(_as_mpd(period))), mpd_path.parent)
        for rep_id, (_, by_number) in files.items():
            assert list(by_number) == list(numbers), rep_id
            for n, path in by_number.items():
                assert path.read_bytes() == engine.origin.segment_bytes("live", rep_id, n)
    # AND ContentProtection (CENC, Widevine and PlayReady with their PSSH) is copied unchanged
    live_protection = [ET.tostring(e) for e in live.iterfind(".//d:ContentProtection", NS)][:3]
    for period in periods:
        copied = [ET.tostring(e) for e in period.iterfind(".//d:ContentProtection", NS)]
        assert [_canonical(c) for c in copied] == [_canonical(c) for c in live_protection]
        assert period.find(".//d:InbandEventStream", NS) is not None
        assert period.find(".//d:Role", NS) is not None
        assert period.find(".//d:Accessibility", NS) is not None
    # AND only the SCTE-35 events inside the window are kept: the breaks at boundary - 3 and
    # boundary + 3 (one per Period), not the one at boundary + 9
    events = [e.get("id") for e in mpd.iterfind(".//d:EventStream/d:Event", NS)]
    assert events == [str(boundary // POOL - 1), str(boundary // POOL)]
    assert ffmpeg_decode_errors(mpd_path) == ""


def _live_mpd(engine: Engine) -> str:
    import requests

    return requests.get(f"{engine.origin.url}/live/manifest.mpd", timeout=5).text


def _as_mpd(period: ET.Element) -> ET.Element:
    root = ET.Element(f"{{{NS['d']}}}MPD")
    root.append(period)
    return root


def _canonical(xml: bytes) -> str:
    return ET.canonicalize(xml.decode(), strip_text=True)


def test_a_cmaf_endpoint_writes_an_hls_master_and_an_mpd_over_the_same_objects(
    engine_factory: Callable[..., Engine],
    start_origin: Callable[..., LiveOrigin],
    media_pools: dict[str, Pool],
) -> None:
    # GIVEN a CMAF endpoint: an HLS master and an MPD over the same fMP4 segments ("cmaf"), or an
    # HLS master alone ("cmaf-hls": the MPD is then written from the HLS playlists)
    spec = ChannelSpec("fmp4", media_pools["fmp4"], dvr_window=600, dash="number-timeline")
    first, last = FIRST, LAST
    # WHEN it is harvested with Manifest main.m3u8
    engine, status, error = harvest(
        engine_factory, start_origin, spec, "cmaf", (first, last), "show/main.m3u8"
    )
    assert status is JobStatus.COMPLETED, error
    folder = engine.bucket_root / "out" / "show"
    # THEN main.m3u8 and main.mpd are both written, and every segment is stored once
    hls_text, mpd_text = (folder / "main.m3u8").read_text(), (folder / "main.mpd").read_text()
    assert_valid_mpd(mpd_text)
    media = sorted(p for p in (folder / "main").rglob("*.m4s"))
    assert len(media) == 4 * (last - first + 1)
    # AND the MPD's objects are the ones the HLS playlists name
    from_mpd = {p for _, (init, files) in stored_segments(ET.fromstring(mpd_text), folder).items()
                for p in (init, *files.values())}  # fmt: skip
    from_hls = set()
    for line in hls_text.splitlines():
        if line.startswith("#EXT-X-MEDIA:") and 'URI="' in line:
            line = line.split('URI="', 1)[1].split('"', 1)[0]
        if line and not line.startswith("#"):
            child = folder / line
            for entry in child.read_text().splitlines():
                if entry.startswith("#EXT-X-MAP:"):
                    entry = entry.split('URI="', 1)[1].split('"', 1)[0]
                if entry and not entry.startswith("#"):
                    from_hls.add((child.parent / entry).resolve())
    assert (
        {p.resolve() for p in from_mpd}
        == from_hls
        == {p.resolve() for p in media} | {p.resolve() for p in (folder / "main").rglob("init.mp4")}
    )
    # AND ffmpeg decodes both with -xerror
    assert ffmpeg_decode_errors(folder / "main.mpd") == ""
    assert ffmpeg_decode_errors(folder / "main.m3u8") == ""


def test_a_missing_dash_segment_fails_the_job_naming_it(
    engine_factory: Callable[..., Engine],
    start_origin: Callable[..., LiveOrigin],
    media_pools: dict[str, Pool],
) -> None:
    # GIVEN a DASH channel whose segment 3 of the window is gone from the origin (404 for ever)
    spec = ChannelSpec("fmp4", media_pools["fmp4"], dvr_window=600, dash="number")
    first, last = FIRST, LAST
    faults = FaultPlan(missing={("live", "v1", first + 2)})
    # WHEN the window is harvested
    _, status, error = harvest(engine_factory, start_origin, spec, "dash", (first, last), faults=faults)
    # THEN the job fails, naming the segment as the origin addresses it: representation and number
    assert status is JobStatus.FAILED
    assert f"segment v1/n{first + 2:06d}.m4s: HTTP 404" in error


def test_a_segment_base_representation_is_harvested_by_byte_ranges_into_one_file_per_segment(
    engine_factory: Callable[..., Engine],
    start_origin: Callable[..., LiveOrigin],
    media_pools: dict[str, Pool],
) -> None:
    # GIVEN a DASH channel where each Representation is one file per Period, indexed by a 'sidx'
    spec = ChannelSpec("fmp4", media_pools["fmp4"], dvr_window=600, dash="indexed", dash_period=POOL)
    first, last = FIRST + 1, LAST
    # WHEN four segments of one Period are harvested
    engine, status, error = harvest(engine_factory, start_origin, spec, "dash", (first, last))
    assert status is JobStatus.COMPLETED, error
    mpd_path = engine.bucket_root / "out" / "show" / "index.mpd"
    text = mpd_path.read_text()
    assert_valid_mpd(text)
    # THEN each byte range the sidx lists was fetched into an object of its own, addressed by a
    # SegmentTemplate (numbers count the sidx's references from 0): the origin's bytes exactly
    lists = stored_segments(ET.fromstring(text), mpd_path.parent)
    assert set(lists) == {"v0", "v1", "v2", "audio"}
    for rep_id, (init, files) in lists.items():
        assert init.read_bytes() == engine.origin.init_bytes("live", rep_id)
        assert list(files) == [n % POOL for n in range(first, last + 1)]
        for n, path in zip(range(first, last + 1), files.values(), strict=True):
            assert path.read_bytes() == engine.origin.segment_bytes("live", rep_id, n)
    assert ffmpeg_decode_errors(mpd_path) == ""
