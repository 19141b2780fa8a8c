"""DASH and CMAF endpoints harvested by the real engine (handlers, pump, SQLite, local disk) from the
live test origin's fMP4 media in every addressing mode; the MPD written is checked against the
ISO/IEC 23009-1 schema, byte for byte against the origin, and decoded by ffmpeg with -xerror."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from tests.support.engine import Engine, ffmpeg_decode_errors
from tests.support.media import TEST_NOW
from tests.support.mpd_schema import assert_valid_mpd

from harvest.devtools import ChannelSpec, FaultPlan, LiveOrigin, ManualClock, Pool
from harvest.domain.job import JobStatus
from harvest.domain.validation import CreateParams
from harvest.usecases.api_jobs import create_job

pytest_plugins = ("tests.support.media", "tests.support.engine")

pytestmark = pytest.mark.media

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
SEGMENT = 2
EDGE = int(TEST_NOW) // SEGMENT - 1  # the live edge's segment number at TEST_NOW


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
    create_job(engine.deps.store, engine.deps.relay, engine.deps.registry, engine.settings, params, engine.clock())


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


def stored_segments(mpd: ET.Element, folder: Path) -> dict[str, tuple[Path, dict[int, Path]]]:
    """Representation id -> (its init file, segment number -> file), from its SegmentTemplate."""
    found: dict[str, tuple[Path, dict[int, Path]]] = {}
    for rep in mpd.iterfind(".//d:Representation", NS):
        template = rep.find("d:SegmentTemplate", NS)
        assert template is not None
        number = int(template.get("startNumber", "1"))
        init, files = folder / template.get("initialization", ""), found.get(rep.get("id", ""), (None, {}))[1]
        for s in template.iterfind("d:SegmentTimeline/d:S", NS):
            for _ in range(int(s.get("r", "0")) + 1):
                files[number] = folder / template.get("media", "").replace("$Number$", str(number))
                number += 1
        found[rep.get("id", "")] = (init, files)
    return found


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
    first, last = EDGE - 20, EDGE - 16
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
