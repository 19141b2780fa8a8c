"""DASH and CMAF endpoints through `harvest serve` and the unchanged Tencent SDK: the "Done when" of
issue 14.

A live origin on the wall clock serves one fMP4 (CMAF) channel per DASH addressing mode (SegmentTemplate
$Number$ without a timeline, $Number$ and $Time$ with one, SegmentList, SegmentBase), a multi-Period
channel with ContentProtection and SCTE-35 events, and a channel whose segment is missing. Jobs are
created through the SDK against `harvest serve`; each must complete with every segment the origin's
bytes, an MPD valid against the ISO/IEC 23009-1 schema that ffmpeg decodes with -xerror (and, for the
CMAF endpoint, the HLS master too), a two-Period MPD for the window across a Period boundary, and the
missing segment must fail its job naming it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from tests.support.dash import NS, assert_valid_mpd, stored_segments
from tests.support.engine import BUCKET, DESTINATION, ffmpeg_decode_errors
from tests.support.serve_process import serve_env, start_serve

from harvest.devtools import ChannelSpec, FaultPlan, LiveOrigin, Pool, write_channels_yaml

pytest_plugins = ("tests.support.media",)

pytestmark = pytest.mark.media

SEGMENT = 2
POOL = 6  # segments per loop of the 12 s test pool; media timestamps restart with every loop
MODES = ("number", "number-timeline", "time-timeline", "list", "indexed")


@pytest.fixture
def origin(media_pools: dict[str, Pool]) -> Iterator[LiveOrigin]:
    pool = media_pools["fmp4"]
    channels = {
        f"dash-{mode}": ChannelSpec(
            "fmp4", pool, dvr_window=600, dash=mode, dash_period=POOL if mode == "indexed" else None
        )
        for mode in MODES
    }
    channels["periods"] = ChannelSpec(
        "fmp4", pool, dvr_window=600, dash="number-timeline", dash_period=POOL, dash_protection=True,
        ad_breaks=(POOL, 2),
    )  # fmt: skip
    channels["gone"] = ChannelSpec("fmp4", pool, dvr_window=600, dash="number")
    origin = LiveOrigin(channels).start()  # the wall clock: `harvest serve` runs in real time
    yield origin
    origin.stop()


def test_dash_and_cmaf_jobs_through_harvest_serve_and_the_sdk(tmp_path: Path, origin: LiveOrigin) -> None:
    # GIVEN `harvest serve` with a DASH and a CMAF endpoint per channel
    registry = tmp_path / "channels.yaml"
    write_channels_yaml(registry, origin.url, origin.channels)
    data_dir = tmp_path / "data"
    # A window of one whole loop of the pool that ended at least 12 s ago (4 segments of it), and
    # one that crosses the loop boundary after it (a Period boundary on the "periods" channel).
    loop = (int(time.time()) - 30) // (POOL * SEGMENT) - 1
    first = loop * POOL + 1
    last = first + 3
    boundary = (loop + 1) * POOL
    missing = first + 2
    origin.faults = FaultPlan(missing={("gone", "v0", missing)})
    jobs = {f"dash-{mode}": (f"dash-{mode}", "dash", first, last, "index.mpd") for mode in MODES}
    jobs["periods"] = ("periods", "dash", boundary - 2, boundary + 1, "index.mpd")
    jobs["cmaf"] = ("dash-number-timeline", "cmaf", first, last, "main.m3u8")
    jobs["gone"] = ("gone", "dash", first, last, "index.mpd")
    process = start_serve(serve_env(data_dir, registry, workers=2), data_dir)
    try:
        # WHEN a job per endpoint is created through the SDK
        for job_id, (channel, endpoint, lo, hi, manifest) in jobs.items():
            process.create(
                {
                    "ID": job_id,
                    "ChannelName": channel,
                    "EndpointName": endpoint,
                    "TimeFormat": "Epoch seconds",
                    "StartTime": str(lo * SEGMENT),
                    "EndTime": str((hi + 1) * SEGMENT),
                    "Destination": DESTINATION,
                    "Manifest": f"{job_id}/{manifest}",
                }
            )
        statuses = {job_id: process.wait_until_ended(job_id, timeout=120) for job_id in jobs}
        errors = {job_id: process.describe(job_id).ErrMessage for job_id in jobs}
    finally:
        process.stop()
    # THEN every job but the one with the missing segment completed
    assert {j: s for j, s in statuses.items() if j != "gone"} == dict.fromkeys(
        set(jobs) - {"gone"}, "Completed"
    ), errors
    out = data_dir / "cos" / BUCKET / "out"
    for job_id, (channel, _, lo, hi, manifest) in jobs.items():
        if job_id == "gone":
            continue
        mpd_path = out / job_id / manifest.replace(".m3u8", ".mpd")
        text = mpd_path.read_text()
        # AND its MPD is valid against the schema, and static
        assert_valid_mpd(text)
        mpd = ET.fromstring(text)
        assert mpd.get("type") == "static"
        assert mpd.get("availabilityStartTime") is None
        # AND every segment it lists is byte-identical to the origin's, for the whole window
        for period in mpd.iterfind("d:Period", NS):
            single = ET.Element(mpd.tag)
            single.append(period)
            for rep_id, (init, files) in stored_segments(single, mpd_path.parent).items():
                assert init.read_bytes() == origin.init_bytes(channel, rep_id), (job_id, rep_id)
                for n, path in files.items():
                    msn = n if channel != "dash-indexed" else loop * POOL + n
                    assert path.read_bytes() == origin.segment_bytes(channel, rep_id, msn), (
                        job_id,
                        rep_id,
                        n,
                    )
        assert mpd.get("mediaPresentationDuration") == f"PT{(hi - lo + 1) * SEGMENT}.000S", job_id
        # AND ffmpeg decodes it with -xerror
        assert ffmpeg_decode_errors(mpd_path) == "", job_id
    # AND the window across the Period boundary gave a two-Period MPD with the DRM signalling kept
    periods = ET.fromstring((out / "periods" / "index.mpd").read_text()).findall("d:Period", NS)
    assert [p.get("id") for p in periods] == [f"p{loop}", f"p{loop + 1}"]
    assert all(len(p.findall(".//d:ContentProtection", NS)) == 3 for p in periods)
    # AND the CMAF job wrote an HLS master beside the MPD, which ffmpeg decodes too
    assert (out / "cmaf" / "main.m3u8").read_text().startswith("#EXTM3U")
    assert ffmpeg_decode_errors(out / "cmaf" / "main.m3u8") == ""
    # AND the missing segment failed its job, named by representation and number
    assert statuses["gone"] == "Failed"
    assert f"v0/n{missing:06d}.m4s" in errors["gone"]
