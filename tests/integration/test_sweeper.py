"""The sweeper on a real SQLite table and queue (the record loop is tested in tests/unit/test_batch.py).

The sweeper's clock is injected, so "an hour later" needs no sleeping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.support.clock import ManualClock
from tests.support.tasks import download_task
from tests.support.unused_ports import UnusedOrigin

from harvest.adapters.objectstore.local import LocalDiskStore
from harvest.adapters.relay import OutboxRelay
from harvest.adapters.sql import Database, SqlJobStore, SqlQueue
from harvest.domain.job import HarvestJob, JobStatus, Phase, chunk_message, finalize_message, plan_message
from harvest.domain.registry import Registry
from harvest.settings import Settings
from harvest.usecases.download_pool import DownloadPool
from harvest.usecases.harvest import HarvestDeps
from harvest.usecases.sweep import sweep

NOW = 1_800_000_000.0


class NoNotifier:
    def notify(self, url: str, payload: dict[str, Any]) -> str:
        return "not sent"


def _job(job_id: str, created: float) -> HarvestJob:
    return HarvestJob(
        id=job_id,
        channel_name="news",
        endpoint_name="hls",
        time_format="Epoch seconds",
        start_time="1",
        end_time="2",
        start_epoch=created - 600,
        end_epoch=created - 60,
        destination="https://vod-1250000000.cos.ap-singapore.myqcloud.com/",
        manifest=f"{job_id}/index.m3u8",
        callback_url="",
        channel_id="ch",
        region="ap-singapore",
        create_time=int(created),
        updated_at=created,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def deps(tmp_path: Path, clock: ManualClock) -> HarvestDeps:
    db = Database.connect(f"sqlite:///{tmp_path / 'sweep.db'}")
    store = SqlJobStore(db, clock=clock)
    queue = SqlQueue(db)
    return HarvestDeps(
        settings=Settings(job_deadline=3600.0),
        registry=Registry(channels={}),
        store=store,
        queue=queue,
        relay=OutboxRelay(store, queue),
        objects=LocalDiskStore(tmp_path / "cos"),
        origin=UnusedOrigin(),  # the sweeper never fetches
        notifier=NoNotifier(),
        downloads=DownloadPool(1),  # never downloads
        clock=clock,
    )


def _queued(deps: HarvestDeps) -> list[dict[str, Any]]:
    queue: Any = deps.queue
    return [d.message.body for d in queue.receive(100, 60)]


def test_sweeper_fails_jobs_past_their_deadline_saying_how_far_they_got(deps: HarvestDeps) -> None:
    # GIVEN a job created two hours ago (deadline one hour), still touched a moment ago
    deps.store.create(_job("old", NOW - 7200), [])
    deps.store.save_plan("old", {"bucket": "b"}, [[download_task("a")], [download_task("b")]], 2, [])
    deps.store.add_progress("old", 1, 100)
    # WHEN the sweeper runs
    report = sweep(deps, stale_after=300)
    # THEN the job is Failed with a message naming the deadline and its progress
    job = deps.store.get("old")
    assert report.failed == ["old"]
    assert job.status is JobStatus.FAILED
    assert job.err_message.startswith(
        "job did not finish within 3600 s (stopped at phase harvesting, 0/2 chunks"
    )


def test_sweeper_requeues_what_a_stalled_job_is_waiting_for(deps: HarvestDeps, clock: ManualClock) -> None:
    # GIVEN three jobs that stalled 15 minutes ago: one never planned, one with a chunk not done,
    # one waiting to finalize
    store = deps.store
    clock.now = NOW - 900
    for job_id in ("unplanned", "harvesting", "finalizing"):
        store.create(_job(job_id, NOW - 1000), [])
    store.save_plan("harvesting", {}, [[download_task("0")], [download_task("1")]], 2, [])
    store.complete_chunk("harvesting", 0, 1, 10, [])
    store.save_plan("finalizing", {}, [[download_task("0")]], 1, [])
    store.complete_chunk("finalizing", 0, 1, 10, [])
    assert store.get("finalizing").phase is Phase.FINALIZING
    clock.now = NOW
    # WHEN the sweeper runs
    report = sweep(deps, stale_after=300)
    # THEN each gets exactly the message it is waiting for, and nothing is failed
    assert report.failed == []
    assert report.requeued == {"unplanned": 1, "harvesting": 1, "finalizing": 1}
    assert sorted(_queued(deps), key=lambda b: b["job_id"]) == [
        finalize_message("finalizing").body,
        chunk_message("harvesting", 1).body,
        plan_message("unplanned").body,
    ]
    # AND a second sweep right after does not queue them again (they were touched)
    assert sweep(deps, stale_after=300).requeued == {}


def test_sweeper_leaves_moving_jobs_alone_and_publishes_the_outbox(deps: HarvestDeps) -> None:
    # GIVEN a job updated a minute ago whose plan message is still in the outbox (a crash after commit)
    deps.store.create(_job("fresh", NOW - 60), [plan_message("fresh")])
    # WHEN the sweeper runs
    report = sweep(deps, stale_after=300)
    # THEN it re-queues nothing for it, but publishes the committed outbox row
    assert report.requeued == {}
    assert report.published == 1
    assert _queued(deps) == [plan_message("fresh").body]
