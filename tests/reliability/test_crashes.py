"""Crashes and repeats: a killed process, doubled messages and two processes lose and redo nothing.

- `harvest serve` killed with SIGKILL mid-harvest, restarted on the same data dir: the job
  completes once (one callback), byte-exact.
- Every queue message published twice, and everything published again after completion: the
  output is byte-identical to a run without repeats, and the job ends once.
- Two `harvest serve` processes on one PostgreSQL share the queue: every planned segment is
  requested from the origin exactly once, and the job completes once, byte-exact.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from tests.reliability.table import Recorder
from tests.support.callback_receiver import CallbackReceiver
from tests.support.clock import ManualClock
from tests.support.engine import BUCKET, DESTINATION, Engine, make_engine
from tests.support.media import TEST_NOW
from tests.support.polling import eventually
from tests.support.serve_process import ServeProcess, channels_file_for, serve_env, start_serve

from harvest.adapters.sql import Database, SqlJobStore
from harvest.devtools import ChannelSpec, FaultPlan, LiveOrigin, Pool, write_channels_yaml
from harvest.domain.download import DownloadTask
from harvest.domain.job import HarvestJob, JobStatus, Message, chunk_message, finalize_message, plan_message
from harvest.engine.plan import Plan

pytest_plugins = ("tests.support.media", "tests.support.callback_receiver")

pytestmark = pytest.mark.media

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


class CountingOrigin(LiveOrigin):
    """A LiveOrigin that also counts requests per path, to tell a fetched-once segment from a redone one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.paths: Counter[str] = Counter()
        self._paths_lock = threading.Lock()

    def _serve(self, handler: Any, head: bool) -> None:
        with self._paths_lock:
            self.paths[urlsplit(handler.path).path] += 1
        super()._serve(handler, head)

    def counts_for(self, tasks: Sequence[DownloadTask]) -> list[int]:
        with self._paths_lock:
            return [self.paths[urlsplit(task.url).path] for task in tasks]


def callback_recorded(engine: Engine, job_id: str) -> bool:
    return bool(engine.deps.store.get(job_id).callback_status)


def stored_objects(bucket_root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(bucket_root)): path.read_bytes()
        for path in sorted(bucket_root.rglob("*"))
        if path.is_file()
    }


def serve_params(job_id: str, start: int, end: int, callback_url: str) -> dict[str, Any]:
    return {
        "ID": job_id,
        "ChannelName": "ts",
        "EndpointName": "hls",
        "TimeFormat": "Epoch seconds",
        "StartTime": str(start),
        "EndTime": str(end),
        "Destination": DESTINATION,
        "CallbackURL": callback_url,
    }


def read_job(database_url: str, job_id: str) -> tuple[HarvestJob, Plan]:
    db = Database.connect(database_url)
    try:
        store = SqlJobStore(db)
        return store.get(job_id), Plan.from_json(store.get_plan(job_id))
    finally:
        db.close()


# --- SIGKILL mid-harvest ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_serve_process_killed_mid_harvest_resumes_and_completes_the_job_once(
    tmp_path: Path,
    media_pools: dict[str, Pool],
    callback_receiver: CallbackReceiver,
    check_byte_exact: Callable[[Path, Plan], int],
    reliability_record: Recorder,
) -> None:
    # GIVEN a real-time live channel, slowed a little (10% of segments answer 0.2 s late), and
    # `harvest serve` with 3 s leases so a dead process's work is handed on quickly
    faults = FaultPlan(stall_rate=0.10, stall_seconds=0.2, seed=11)
    origin = CountingOrigin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}, faults=faults)
    origin.start()
    data_dir = tmp_path / "data"
    env = serve_env(
        data_dir,
        channels_file_for(origin, tmp_path),
        workers=2,
        extra={
            "HARVEST_VISIBILITY_TIMEOUT": "3",
            "HARVEST_DOWNLOAD_CONCURRENCY": "2",
            "HARVEST_ALLOW_PRIVATE_CALLBACKS": "true",
        },
    )
    bucket_root = data_dir / "cos" / BUCKET
    job_dir = bucket_root / "out" / "crash"
    first = start_serve(env, data_dir)
    second: ServeProcess | None = None
    try:
        # WHEN a 300 s window (about 750 objects) is being harvested and the process is killed
        # once 200 objects are stored
        now = int(time.time())
        first.create(serve_params("crash", now - 310, now - 10, callback_receiver.url()))
        eventually(lambda: sum(1 for _ in job_dir.rglob("*.ts")) >= 200, 60, "200 stored segments")
        first.kill()
        stored_at_kill = sum(1 for _ in job_dir.rglob("*.ts"))
        job_at_kill, plan = read_job(f"sqlite:///{data_dir / 'harvest.db'}", "crash")
        assert job_at_kill.status is JobStatus.RUNNING  # the kill really interrupted the harvest
        counts_at_kill = origin.counts_for(plan.tasks)
        # AND a new process is started on the same data dir
        restarted = time.monotonic()
        second = start_serve(env, data_dir)
        status = second.wait_until_ended("crash", timeout=120)
        resumed_in = time.monotonic() - restarted
        eventually(lambda: len(callback_receiver.received()) >= 1, 10, "the callback")
        second.stop()
    finally:
        first.stop(5)
        if second is not None:
            second.stop(5)
    job, plan = read_job(f"sqlite:///{data_dir / 'harvest.db'}", "crash")
    counts = origin.counts_for(plan.tasks)
    origin.faults = None
    # THEN the job is Completed once: one callback, every chunk and segment counted once
    assert status == "Completed", job.err_message
    assert job.status is JobStatus.COMPLETED, job.err_message
    callbacks = callback_receiver.received()
    assert [(body["ID"], body["Status"]) for _, body in callbacks] == [("crash", "Completed")]
    assert job.chunks_done == job.chunks_total > 1
    assert job.segments_done == job.segments_total == plan.segment_count
    # AND every object is the source's bytes; nothing was skipped, only in-flight work was redone
    checked = check_byte_exact(bucket_root, plan)
    assert min(counts) >= 1
    refetched = sum(1 for count in counts if count > 1)
    fetched_before_kill = sum(1 for count in counts_at_kill if count >= 1)
    origin.stop()
    reliability_record(
        "harvest serve killed mid-harvest",
        "SIGKILL of `harvest serve` with 200 of 750 objects stored (HARVEST_VISIBILITY_TIMEOUT=3),"
        " restart on the same data dir",
        f"Completed {resumed_in:.1f} s after the restart; {job.chunks_done}/{job.chunks_total} chunks,"
        f" {checked}/{checked} objects byte-exact; exactly 1 callback; {stored_at_kill} segments stored and"
        f" {fetched_before_kill} requested before the kill, {refetched} requested again after it",
    )


# --- every message twice -------------------------------------------------------------------------


def test_every_message_delivered_twice_gives_the_same_output_and_one_end(
    tmp_path: Path,
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    callback_receiver: CallbackReceiver,
    check_byte_exact: Callable[[Path, Plan], int],
    monkeypatch: pytest.MonkeyPatch,
    reliability_record: Recorder,
) -> None:
    # GIVEN two engines on the same live channel: a reference one, and one whose queue publishes
    # every message twice (so two consumers may work on the same chunk at once)
    clock = ManualClock(TEST_NOW)
    origin = start_origin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}, clock=clock)
    engines: dict[str, Engine] = {}
    stops: list[Callable[[], None]] = []
    for name in ("reference", "doubled"):
        (tmp_path / name).mkdir()
        engine, stop = make_engine(tmp_path / name, origin, clock, allow_private_callbacks=True)
        engines[name], stops = engine, [*stops, stop]
    queue = engines["doubled"].queue
    publish_once = queue.publish
    published: Counter[str] = Counter()

    def publish_twice(messages: Sequence[Message]) -> None:
        published["messages"] += len(messages)
        publish_once([*messages, *messages])

    monkeypatch.setattr(queue, "publish", publish_twice)
    try:
        # WHEN both harvest the same window (about 555 objects in 2 chunks)
        for name, engine in engines.items():
            hook = callback_receiver.url(f"/{name}")
            engine.create("twice", "ts", TEST_NOW - 241.5, TEST_NOW - 19.2, callback_url=hook)
        jobs = {name: engine.wait("twice") for name, engine in engines.items()}
        eventually(lambda: queue.pending_count() == 0, 30, "the doubled queue to drain")
        eventually(lambda: len(callback_receiver.received()) >= 2, 10, "both callbacks")
        for engine in engines.values():  # the callback outcome is recorded just after the POST
            eventually(partial(callback_recorded, engine, "twice"), 10, "the callback outcome")
        reference = stored_objects(engines["reference"].bucket_root)
        doubled = stored_objects(engines["doubled"].bucket_root)
        first_deliveries = published["messages"]
        # AND afterwards every plan, chunk and finalize message of the doubled job arrives twice again
        job = engines["doubled"].deps.store.get("twice")
        queue.publish(
            [plan_message("twice")]
            + [chunk_message("twice", i) for i in range(job.chunks_total)]
            + [finalize_message("twice")]
        )
        eventually(lambda: queue.pending_count() == 0, 30, "the redelivered messages to be handled")
        time.sleep(0.2)  # let a (wrong) late callback arrive before counting
        after = stored_objects(engines["doubled"].bucket_root)
        job_after = engines["doubled"].deps.store.get("twice")
        plan = Plan.from_json(engines["doubled"].deps.store.get_plan("twice"))
    finally:
        for stop in stops:
            stop()
    # THEN both jobs are Completed and the doubled run stored exactly the reference's bytes
    assert [j.status for j in jobs.values()] == [JobStatus.COMPLETED, JobStatus.COMPLETED]
    assert job.chunks_total > 1
    assert doubled == reference
    assert len(doubled) > job.segments_total
    checked = check_byte_exact(engines["doubled"].bucket_root, plan)
    # AND the repeats after completion changed nothing: same objects, same job record
    assert after == doubled
    assert job_after == job
    # AND each job ended once: one callback each
    assert sorted((path, body["Status"]) for path, body in callback_receiver.received()) == [
        ("/doubled", "Completed"),
        ("/reference", "Completed"),
    ]
    reliability_record(
        "Every message delivered twice",
        "every plan/chunk/finalize message published twice; after completion all "
        f"{job.chunks_total + 2} published twice again",
        f"Completed once (1 callback); {2 * first_deliveries} deliveries of {first_deliveries} messages, then"
        f" {2 * (job.chunks_total + 2)} more; {len(doubled)} stored files byte-identical to a single-delivery"
        f" run, {checked}/{checked} objects byte-exact; job record unchanged by the late repeats",
    )


# --- two processes on one PostgreSQL ---------------------------------------------------------------


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh schema on the machine's PostgreSQL (skipped when it is not reachable); dropped after."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432 ({exc}); two-process test needs it")
    schema = f"harvest_reliability_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.slow
@pytest.mark.postgres
def test_two_serve_processes_on_one_postgres_fetch_every_segment_exactly_once(
    tmp_path: Path,
    media_pools: dict[str, Pool],
    postgres_schema: str,
    callback_receiver: CallbackReceiver,
    check_byte_exact: Callable[[Path, Plan], int],
    reliability_record: Recorder,
) -> None:
    # GIVEN a real-time live channel (no faults) and two `harvest serve` processes sharing one
    # PostgreSQL schema (job table and queue) and one local bucket
    origin = CountingOrigin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)})
    origin.start()
    registry = tmp_path / "channels.yaml"
    write_channels_yaml(registry, origin.url, origin.channels)
    data_dir = tmp_path / "data"
    database_url = f"{POSTGRES_URL}?schema={postgres_schema}"
    env = serve_env(
        data_dir,
        registry,
        database_url=database_url,
        workers=2,
        extra={"HARVEST_ALLOW_PRIVATE_CALLBACKS": "true"},
    )
    processes = [start_serve(env, data_dir)]
    try:
        processes.append(start_serve(env, data_dir))
        # WHEN a 600 s window (about 1,500 objects in 4 chunks) is harvested
        now = int(time.time())
        started = time.monotonic()
        processes[0].create(serve_params("shared", now - 610, now - 10, callback_receiver.url()))
        status = processes[1].wait_until_ended("shared", timeout=120)
        elapsed = time.monotonic() - started
        eventually(lambda: len(callback_receiver.received()) >= 1, 10, "the callback")
    finally:
        for process in processes:
            process.stop(10)
    job, plan = read_job(database_url, "shared")
    counts = origin.counts_for(plan.tasks)
    # THEN the job is Completed once, byte-exact, with one callback
    assert status == "Completed", job.err_message
    assert job.status is JobStatus.COMPLETED, job.err_message
    assert job.chunks_done == job.chunks_total > 1
    assert job.segments_done == job.segments_total == plan.segment_count
    callbacks = callback_receiver.received()
    assert [(body["ID"], body["Status"]) for _, body in callbacks] == [("shared", "Completed")]
    checked = check_byte_exact(data_dir / "cos" / BUCKET, plan)
    # AND no chunk was lost or done twice: every planned object was requested exactly once
    assert Counter(counts) == {1: len(plan.tasks)}, Counter(counts)
    origin.stop()
    reliability_record(
        "Two harvest serve processes on one PostgreSQL",
        "two `harvest serve` processes (2 consumers each) on one PostgreSQL schema and one bucket",
        f"Completed in {elapsed:.1f} s; {job.chunks_done}/{job.chunks_total} chunks, {checked}/{checked}"
        f" objects byte-exact, each requested from the origin exactly once; exactly 1 callback",
    )
