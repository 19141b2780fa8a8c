"""Outages of what the service stands on: the database crashes, COS fails, SQLite stays locked.

- PostgreSQL (a private cluster, never the machine's) is crashed with an immediate shutdown while
  two `harvest serve` processes harvest a job, kept down for 15 s and started again: both processes
  stay up and the job completes, byte-exact, soon after the database is back.
- The object store answers 503 to every request for several seconds mid-chunk: the chunk waits
  for it and the job completes without spending its queue attempts.
- Another process holds SQLite's write lock past the busy timeout: the steps that met
  `database is locked` run again once it is released.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tests.reliability.conftest import fetch_source
from tests.reliability.table import Recorder
from tests.reliability.test_crashes import CountingOrigin, read_job, serve_params
from tests.support.callback_receiver import CallbackReceiver
from tests.support.clock import ManualClock
from tests.support.engine import BUCKET, make_engine
from tests.support.media import TEST_NOW
from tests.support.pg_cluster import PrivateCluster
from tests.support.polling import eventually
from tests.support.serve_process import ServeProcess, channels_file_for, serve_env, start_serve

from harvest.adapters.objectstore.cos import CosStore
from harvest.devtools import ChannelSpec, FaultPlan, LiveOrigin, Pool
from harvest.domain.job import JobStatus
from harvest.engine.plan import Plan

pytest_plugins = (
    "tests.support.media",
    "tests.support.pg_cluster",
    "tests.support.cos_server",
    "tests.support.callback_receiver",
)

pytestmark = pytest.mark.media

OUTAGE_SECONDS = 15.0


def ended_status(process: ServeProcess, job_id: str) -> str | None:
    """The job's status once it has ended; None while Running or while the API cannot answer (its
    database is still coming back: the SDK raises its own error for an InternalError answer)."""
    try:
        status = str(process.describe(job_id).Status)
    except TencentCloudSDKException:
        return None
    return None if status == "Running" else status


def slowed_channel(
    start_origin: Callable[..., LiveOrigin], media_pools: dict[str, Pool], seed: int
) -> tuple[ManualClock, LiveOrigin]:
    """A ts channel whose every segment answers its first request 50 ms late, so chunks take seconds."""
    clock = ManualClock(TEST_NOW)
    faults = FaultPlan(stall_rate=1.0, stall_seconds=0.05, max_failures_per_path=1, seed=seed)
    channels = {"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}
    return clock, start_origin(channels, clock=clock, faults=faults)


def stored_segments(root: Path) -> int:
    return sum(1 for _ in root.rglob("*.ts"))


# --- PostgreSQL crash-restart ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_postgres_crash_mid_harvest_is_survived_by_two_serve_processes(
    tmp_path: Path,
    media_pools: dict[str, Pool],
    private_postgres: PrivateCluster,
    callback_receiver: CallbackReceiver,
    check_byte_exact: Callable[[Path, Plan], int],
    reliability_record: Recorder,
) -> None:
    # GIVEN a live channel slowed so a 300 s window takes several seconds (each segment's first
    # request answers 80 ms late), and two `harvest serve` processes on a private PostgreSQL
    faults = FaultPlan(stall_rate=1.0, stall_seconds=0.08, max_failures_per_path=1, seed=3)
    origin = CountingOrigin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}, faults=faults)
    origin.start()
    data_dir = tmp_path / "data"
    env = serve_env(
        data_dir,
        channels_file_for(origin, tmp_path),
        database_url=private_postgres.url(),
        workers=2,
        extra={"HARVEST_DOWNLOAD_CONCURRENCY": "2", "HARVEST_ALLOW_PRIVATE_CALLBACKS": "true"},
    )
    job_dir = data_dir / "cos" / BUCKET / "out"
    processes = [start_serve(env, data_dir)]
    try:
        processes.append(start_serve(env, data_dir))
        now = int(time.time())
        processes[0].create(serve_params("pgcrash", now - 310, now - 10, callback_receiver.url()))
        # WHEN a quarter of the ~750 objects is stored, PostgreSQL is stopped hard for 15 s
        eventually(lambda: stored_segments(job_dir) >= 190, 60, "a quarter of the segments")
        private_postgres.crash()
        stored_at_crash = stored_segments(job_dir)
        time.sleep(OUTAGE_SECONDS)
        assert all(process.alive for process in processes), "a serve process died with its database"
        private_postgres.start()
        back = time.monotonic()
        # THEN the job completes, soon after the database's return
        status = eventually(
            partial(ended_status, processes[1], "pgcrash"),
            60,
            "the job to end once the database is back",
            interval=0.2,
        )
        completed_after = time.monotonic() - back
        eventually(lambda: len(callback_receiver.received()) >= 1, 10, "the callback")
        alive = [process.alive for process in processes]
    finally:
        for process in processes:
            process.stop(10)
    job, plan = read_job(private_postgres.url(), "pgcrash")
    origin.faults = None
    assert status == "Completed", f"{status} {job.err_message}\n" + processes[1].log_tail(30)
    assert job.status is JobStatus.COMPLETED, job.err_message
    assert completed_after < 60
    assert alive == [True, True]
    assert job.chunks_done == job.chunks_total > 1
    callbacks = callback_receiver.received()
    assert [(body["ID"], body["Status"]) for _, body in callbacks] == [("pgcrash", "Completed")]
    checked = check_byte_exact(data_dir / "cos" / BUCKET, plan)
    origin.stop()
    reliability_record(
        "PostgreSQL crash-restart mid-harvest",
        f"two `harvest serve` processes on a private PostgreSQL; `pg_ctl stop -m immediate` with"
        f" {stored_at_crash} of {len(plan.tasks)} objects stored, {OUTAGE_SECONDS:.0f} s down, started again",
        f"both processes stayed up; Completed {completed_after:.1f} s after the database's return;"
        f" {job.chunks_done}/{job.chunks_total} chunks, {checked}/{checked} objects byte-exact;"
        " exactly 1 callback",
    )


# --- COS outage mid-chunk --------------------------------------------------------------------------


def test_a_cos_outage_mid_chunk_is_waited_out(
    tmp_path: Path,
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    cos_server: Any,
    reliability_record: Recorder,
) -> None:
    # GIVEN an engine whose bucket is COS (the stand-in, through the real COS SDK), on a live
    # channel slowed so its chunks take a few seconds (each segment's first request is 50 ms late)
    clock, origin = slowed_channel(start_origin, media_pools, seed=5)
    bucket = cos_server.create_bucket("outage")
    store = CosStore(
        "ap-singapore", cos_server.secret_id, cos_server.secret_key, scheme="http",
        ip=cos_server.ip, port=cos_server.port, sdk_retries=0,
    )  # fmt: skip
    engine, stop = make_engine(tmp_path, origin, clock, objects=store, download_concurrency=2)
    destination = f"https://{bucket}.cos.ap-singapore.myqcloud.com/out/"
    refused = 0
    try:
        engine.create("cosdown", "ts", TEST_NOW - 241.5, TEST_NOW - 19.2, destination=destination)
        # WHEN, with some segments stored, every COS request answers 503 ServiceUnavailable for 15 s
        eventually(lambda: _puts(cos_server, bucket) >= 60, 30, "60 objects written to COS")
        with cos_server.failing(
            lambda method, path, query: True, status=503, code="ServiceUnavailable"
        ) as fault:
            stored_at_outage = _puts(cos_server, bucket)
            seen_before = len(cos_server.requests_for(bucket))
            time.sleep(OUTAGE_SECONDS)
            refused = len(cos_server.requests_for(bucket)) - seen_before
        back = time.monotonic()
        job = engine.wait("cosdown", timeout=60)
        completed_after = time.monotonic() - back
        queue = engine.queue
        dead = queue.counts()["dead"]
        plan = Plan.from_json(engine.deps.store.get_plan("cosdown"))
        exact = sum(store.get(bucket, task.key) == fetch_source(task) for task in plan.tasks)
    finally:
        stop()
    # THEN the job is Completed soon after COS is back, no message dead-lettered, every object exact
    assert job.status is JobStatus.COMPLETED, job.err_message
    assert fault.remaining is None
    assert refused > 0
    assert dead == 0
    assert exact == len(plan.tasks)
    reliability_record(
        "COS outage mid-chunk",
        f"engine on the COS stand-in (real COS SDK); with {stored_at_outage} objects written every COS"
        f" request answers 503 ServiceUnavailable for {OUTAGE_SECONDS:.0f} s",
        f"Completed {completed_after:.1f} s after COS's return; {refused} requests (HEAD, PUT) refused"
        " during the outage;"
        f" 0 messages dead-lettered; {exact}/{len(plan.tasks)} objects byte-exact",
    )


def _puts(cos_server: Any, bucket: str) -> int:
    return sum(1 for seen in cos_server.requests_for(bucket) if seen.method == "PUT")


# --- SQLite database is locked ---------------------------------------------------------------------


@pytest.mark.slow
def test_sqlite_locked_past_the_busy_timeout_costs_no_queue_attempt(
    tmp_path: Path,
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    check_byte_exact: Callable[[Path, Plan], int],
    reliability_record: Recorder,
) -> None:
    # GIVEN an engine on SQLite that allows ONE delivery per message (so a step that spent a queue
    # attempt on the lock would fail the job), on a live channel slowed as above
    clock, origin = slowed_channel(start_origin, media_pools, seed=7)
    engine, stop = make_engine(
        tmp_path, origin, clock, lease_seconds=60, queue_max_attempts=1, download_concurrency=2
    )
    database = engine.settings.data_dir / "harvest.db"
    hold = 35.0  # past SQLite's 30 s busy timeout: writers get "database is locked"
    try:
        engine.create("locked", "ts", TEST_NOW - 241.5, TEST_NOW - 19.2)
        eventually(lambda: stored_segments(engine.bucket_root) >= 60, 30, "60 stored segments")
        # WHEN another process's connection holds the write lock for 35 s
        locker = sqlite3.connect(database, timeout=30, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        time.sleep(hold)
        locker.execute("COMMIT")
        locker.close()
        released = time.monotonic()
        job = engine.wait("locked", timeout=60)
        completed_after = time.monotonic() - released
        queue = engine.queue
        dead = queue.counts()["dead"]
        plan = Plan.from_json(engine.deps.store.get_plan("locked"))
    finally:
        stop()
    # THEN the job completes once the lock is gone, and no message was dead-lettered
    assert job.status is JobStatus.COMPLETED, job.err_message
    assert dead == 0
    checked = check_byte_exact(engine.bucket_root, plan)
    reliability_record(
        "SQLite database is locked",
        f"another connection holds SQLite's write lock (BEGIN EXCLUSIVE) for {hold:.0f} s mid-chunk, past the"
        " 30 s busy timeout; HARVEST_QUEUE_MAX_ATTEMPTS=1",
        f"Completed {completed_after:.1f} s after the lock's release; 0 messages dead-lettered;"
        f" {checked}/{checked} objects byte-exact",
    )
