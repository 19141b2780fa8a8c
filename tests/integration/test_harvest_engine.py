"""The harvest engine end to end: live origin -> plan -> chunks -> finalize, on real ffmpeg media.

Every harvested object is compared byte for byte with what the origin serves for it, every
playlist reference resolves, the VOD covers the whole window, and ffmpeg decodes every rendition
with no error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.callback_receiver import Answer, CallbackReceiver
from tests.support.clock import ManualClock
from tests.support.engine import BUCKET, Engine, ffmpeg_decode_errors
from tests.support.media import TEST_NOW
from tests.support.polling import eventually

from harvest.devtools import ChannelSpec, LiveOrigin, Pool
from harvest.domain.job import JobStatus
from harvest.engine.plan import Plan
from harvest.hls.parse import is_master, parse_master, parse_media

pytest_plugins = (
    "tests.support.media",
    "tests.support.engine",
    "tests.support.cos_server",
    "tests.support.callback_receiver",
)

pytestmark = pytest.mark.media


def _origin(
    start_origin: Callable[..., LiveOrigin], pools: dict[str, Pool], kind: str
) -> tuple[LiveOrigin, ManualClock]:
    clock = ManualClock(TEST_NOW)
    origin = start_origin({kind: ChannelSpec(kind, pools[kind], dvr_window=3600)}, clock=clock)
    return origin, clock


def _playlist_files(root: Path, master_key: str) -> list[Path]:
    """The master and every playlist it references, checking each referenced file exists."""
    master = root / master_key
    files = [master]
    text = master.read_text()
    if is_master(text):
        parsed = parse_master(text, master.as_uri())
        uris = [v.uri for v in parsed.variants] + [i.uri for i in parsed.iframe_streams]
        uris += [m.uri for m in parsed.media if m.uri]
        for uri in uris:
            path = Path(uri.removeprefix("file://"))
            assert path.is_file(), f"master points at a missing playlist {path}"
            files.append(path)
    return files


def assert_byte_exact(engine: Engine, job_id: str) -> Plan:
    plan = Plan.from_json(engine.deps.store.get_plan(job_id))
    assert plan.tasks, "the plan has no downloads"
    for task in plan.tasks:
        rng = task.range
        source = engine.deps.origin.get_bytes(task.url, {}, (rng[0], rng[1]) if rng else None)
        stored = (engine.bucket_root / task.key).read_bytes()
        assert stored == source, f"{task.name} differs from the source"
    return plan


def assert_playlists_resolve_and_cover(engine: Engine, plan: Plan, start: float, end: float) -> None:
    for path in _playlist_files(engine.bucket_root, plan.master_key)[1:] or [
        engine.bucket_root / plan.master_key
    ]:
        media = parse_media(path.read_text(), path.as_uri())
        assert media.ended
        assert media.playlist_type == "VOD"
        for segment in media.segments:
            if segment.gap:
                continue
            local = Path(segment.uri.removeprefix("file://"))
            assert local.is_file(), f"{path.name} points at a missing segment {local}"
        if media.iframes_only:
            continue
        first, last = media.segments[0], media.segments[-1]
        assert first.pdt is not None
        assert last.pdt is not None
        # AAC segments end a few ms short of the next PDT, hence the small tolerance.
        assert first.pdt <= start < first.pdt + first.duration, f"{path} does not start at the window"
        assert last.pdt < end <= last.pdt + last.duration + 0.05, f"{path} does not end at the window"
        for segment in media.segments:
            assert segment.pdt is not None
            assert segment.pdt + segment.duration > start
            assert segment.pdt < end


@pytest.mark.parametrize("kind", ["ts", "fmp4", "aes", "byterange"])
def test_each_kind_of_channel_harvests_into_a_byte_exact_decodable_vod(
    kind: str,
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    engine_factory: Callable[..., Engine],
) -> None:
    # GIVEN a live channel of this kind with a DVR window, and a window across a pool wrap
    origin, clock = _origin(start_origin, media_pools, kind)
    engine = engine_factory(origin, clock)
    start, end = TEST_NOW - 41.5, TEST_NOW - 19.2
    # WHEN a job harvests the window
    engine.create(f"job-{kind}", kind, start, end)
    job = engine.wait(f"job-{kind}")
    # THEN it completes, every object is the source's bytes, the playlists cover the window,
    # and ffmpeg decodes every rendition without a single error
    assert (job.status, job.err_message) == (JobStatus.COMPLETED, "")
    plan = assert_byte_exact(engine, job.id)
    assert job.segments_done == job.segments_total == plan.segment_count
    assert_playlists_resolve_and_cover(engine, plan, float(int(start)), float(int(end)))
    assert ffmpeg_decode_errors(engine.bucket_root / plan.master_key) == ""
    assert plan.master_key == f"out/job-{kind}/index.m3u8"  # Destination's prefix + Manifest
    assert (engine.settings.data_dir / "cos" / BUCKET / plan.master_key).is_file()


def test_a_permanently_missing_segment_fails_the_job_naming_it(
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    engine_factory: Callable[..., Engine],
) -> None:
    # GIVEN a channel where one segment inside the window answers 404 for ever
    from harvest.devtools import FaultPlan

    origin, clock = _origin(start_origin, media_pools, "ts")
    msn = int((TEST_NOW - 30) // 2)
    rendition = media_pools["ts"].variants[0].name
    origin.faults = FaultPlan(missing={("ts", rendition, msn)})
    engine = engine_factory(origin, clock, fetch_attempts=3)
    # WHEN a job harvests a window that holds it
    engine.create("job-missing", "ts", TEST_NOW - 40, TEST_NOW - 20)
    job = engine.wait("job-missing")
    # THEN the job is Failed and ErrMessage names the segment and the reason; no master is written
    assert job.status is JobStatus.FAILED
    assert f"{rendition}/{msn}.ts: HTTP 404 after 3 attempts" in job.err_message
    assert not (engine.bucket_root / "out" / "job-missing" / "index.m3u8").exists()


def test_a_repeated_chunk_message_rewrites_the_same_objects(
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    engine_factory: Callable[..., Engine],
) -> None:
    # GIVEN a completed job
    origin, clock = _origin(start_origin, media_pools, "ts")
    engine = engine_factory(origin, clock)
    engine.create("job-twice", "ts", TEST_NOW - 30, TEST_NOW - 20)
    first = engine.wait("job-twice")
    before = {p: p.read_bytes() for p in sorted(engine.bucket_root.rglob("*")) if p.is_file()}
    # WHEN every message of the job is delivered again
    from harvest.domain.job import chunk_message, finalize_message, plan_message

    engine.deps.queue.publish(
        [plan_message("job-twice")]
        + [chunk_message("job-twice", i) for i in range(first.chunks_total)]
        + [finalize_message("job-twice")]
    )
    engine.drain()
    # THEN nothing changed: same objects, same bytes, same record
    after = {p: p.read_bytes() for p in sorted(engine.bucket_root.rglob("*")) if p.is_file()}
    assert after == before
    assert engine.deps.store.get("job-twice") == first


def test_callback_url_receives_the_job_record_and_its_outcome_is_recorded(
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    engine_factory: Callable[..., Engine],
    callback_receiver: CallbackReceiver,
) -> None:
    # GIVEN a receiver that fails once, then accepts (private addresses allowed for this local test)
    url = callback_receiver.script("/done", Answer(500), Answer(200))
    origin, clock = _origin(start_origin, media_pools, "ts")
    engine = engine_factory(origin, clock, allow_private_callbacks=True)
    # WHEN a job with a CallbackURL completes
    engine.create("job-cb", "ts", TEST_NOW - 30, TEST_NOW - 20, callback_url=url)
    job = engine.wait("job-cb")
    eventually(lambda: engine.deps.store.get("job-cb").callback_status, 10, "the callback outcome")
    received = [body for _, body in callback_receiver.received()]
    # THEN the receiver got the HarvestJobResp (retried after the 500), and the outcome is on the job
    assert job.status is JobStatus.COMPLETED
    assert received[-1]["ID"] == "job-cb"
    assert received[-1]["Status"] == "Completed"
    assert received[-1]["CallbackURL"] == url
    assert len(received) == 2
    assert engine.deps.store.get("job-cb").callback_status == "delivered: HTTP 200 after 2 attempts"
    assert engine.deps.store.get("job-cb").status is JobStatus.COMPLETED


def test_a_harvest_into_cos_is_byte_exact(
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    engine_factory: Callable[..., Engine],
    cos_server: object,
) -> None:
    # GIVEN the COS adapter aimed at the COS stand-in (moto's S3 app behind a COS-signature check)
    from harvest.adapters.objectstore.cos import CosStore

    server: Any = cos_server
    bucket = server.create_bucket("vod")
    origin, clock = _origin(start_origin, media_pools, "fmp4")
    engine = engine_factory(
        origin,
        clock,
        region=server.region,
        object_store="cos",
        cos_endpoint_ip=server.ip,
        cos_endpoint_port=server.port,
        cos_scheme="http",
        cloud_secret_id=server.secret_id,
        cloud_secret_key=server.secret_key,
    )
    assert isinstance(engine.deps.objects, CosStore)
    destination = f"https://{bucket}.cos.{server.region}.myqcloud.com/cos-out/"
    # WHEN a job harvests into that bucket
    engine.create("job-cos", "fmp4", TEST_NOW - 30, TEST_NOW - 20, destination=destination)
    job = engine.wait("job-cos")
    # THEN every object read back through COS is the source's bytes, and the master is there
    assert (job.status, job.err_message) == (JobStatus.COMPLETED, "")
    plan = Plan.from_json(engine.deps.store.get_plan("job-cos"))
    for task in plan.tasks:
        rng = task.range
        source = engine.deps.origin.get_bytes(task.url, {}, (rng[0], rng[1]) if rng else None)
        assert engine.deps.objects.get(bucket, task.key) == source
    assert engine.deps.objects.get(bucket, "cos-out/job-cos/index.m3u8").startswith(b"#EXTM3U")
