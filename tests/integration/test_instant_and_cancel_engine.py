"""Through the real handlers and pump: an instant (StartTime == EndTime) harvests the segment
holding it, and a cancelled job's CallbackURL fires once however often its notice is delivered."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from tests.support.callback_receiver import CallbackReceiver
from tests.support.clock import ManualClock
from tests.support.engine import Engine
from tests.support.media import TEST_NOW
from tests.support.polling import eventually

from harvest.devtools import ChannelSpec, FaultPlan, LiveOrigin, Pool
from harvest.domain.access import Caller
from harvest.domain.job import JobStatus, callback_message
from harvest.engine.plan import Plan
from harvest.usecases.api_jobs import cancel_job

pytest_plugins = ("tests.support.media", "tests.support.engine", "tests.support.callback_receiver")
pytestmark = pytest.mark.media


def test_an_instant_harvests_the_one_segment_holding_it(
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    engine_factory: Callable[..., Engine],
) -> None:
    # GIVEN a live channel with 2 s segments
    clock = ManualClock(TEST_NOW)
    origin = start_origin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}, clock=clock)
    engine = engine_factory(origin, clock)
    # WHEN a job's StartTime equals its EndTime (20 s ago)
    engine.create("instant", "ts", TEST_NOW - 20, TEST_NOW - 20)
    job = engine.wait("instant")
    # THEN it completes with exactly one segment per rendition
    assert job.status is JobStatus.COMPLETED, job.err_message
    plan = Plan.from_json(engine.deps.store.get_plan("instant"))
    media = {key: text for key, text in plan.playlists.items() if key != plan.master_key}
    assert media
    assert all(text.count("#EXTINF") == 1 for text in media.values()), media


def test_a_cancelled_job_calls_back_once_however_often_the_notice_arrives(
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    engine_factory: Callable[..., Engine],
    callback_receiver: CallbackReceiver,
) -> None:
    # GIVEN a job on a slow origin (every segment answers 0.5 s late), so it is still harvesting
    clock = ManualClock(TEST_NOW)
    origin = start_origin(
        {"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)},
        clock=clock,
        faults=FaultPlan(stall_rate=1.0, stall_seconds=0.5, seed=5),
    )
    engine = engine_factory(origin, clock, allow_private_callbacks=True)
    engine.create("stop-me", "ts", TEST_NOW - 120, TEST_NOW - 20, callback_url=callback_receiver.url())
    eventually(lambda: engine.deps.store.get("stop-me").chunks_total > 0, 20, "the plan")
    # WHEN it is cancelled, and the notice is then delivered twice more
    job = cancel_job(engine.deps.store, engine.deps.relay, "stop-me", Caller("AKIDops"), time.time())
    engine.deps.queue.publish([callback_message("stop-me"), callback_message("stop-me")])
    engine.drain(20)
    # THEN the job stays Failed with who and when, and exactly one callback carried that record
    assert job.status is JobStatus.FAILED
    assert job.err_message.startswith("cancelled by AKIDops at ")
    stored = engine.deps.store.get("stop-me")
    assert (stored.status, stored.err_message) == (JobStatus.FAILED, job.err_message)
    assert stored.chunks_done < stored.chunks_total  # it really was stopped part way
    assert [(body["ID"], body["Status"]) for _, body in callback_receiver.received()] == [
        ("stop-me", "Failed")
    ]
    assert stored.callback_status
