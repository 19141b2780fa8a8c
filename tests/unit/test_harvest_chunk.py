"""harvest_chunk (and its download loop) against in-memory ports: what a chunk leaves behind in the
bucket, on its chunk record, on the job and on the queue, for every way a chunk can end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import pytest
from tests.support.fakes import MemoryObjectStore
from tests.support.harvest_world import (
    BASE,
    BUCKET,
    HEADERS,
    SEGMENT_SECONDS,
    World,
    make_world,
    segment_body,
    segment_url,
)
from tests.support.tasks import download_task

from harvest.domain.download import DownloadTask
from harvest.domain.job import JobStatus, Phase, callback_message, chunk_message, finalize_message
from harvest.errors import StorageError
from harvest.usecases import harvest
from harvest.usecases.harvest import Interrupted, harvest_chunk, plan_job


def planned(world: World, segments: int, first: int = 10) -> list[list[DownloadTask]]:
    """A job "j" planned over `segments` segments from segment `first`; its chunks' tasks."""
    start = BASE + first * SEGMENT_SECONDS
    world.create("j", start, start + segments * SEGMENT_SECONDS)
    plan_job(world.deps, "j")
    world.take_published()
    world.origin.requests.clear()
    return [world.store.get_chunk("j", index).tasks for index in range(world.store.get("j").chunks_total)]


def seeded(world: World, tasks: list[DownloadTask]) -> None:
    """A job "j" whose one chunk holds `tasks` as given (sizes the planner knew, for instance)."""
    world.create("j", BASE + 20, BASE + 40)
    assert world.store.save_plan("j", {}, [tasks], len(tasks), [chunk_message("j", 0)])
    world.take_published()


@pytest.fixture
def world() -> World:
    world = make_world(download_concurrency=2)
    world.live(100)
    return world


def test_a_chunk_stores_every_segment_synced_and_records_itself_done(world: World) -> None:
    # GIVEN a job planned in three chunks
    chunks = planned(world, 60)
    # WHEN its middle chunk is harvested
    harvest_chunk(world.deps, "j", 1)
    # THEN each of its segments is in the bucket byte for byte, made durable before the record
    for task in chunks[1]:
        index = int(task.url.rsplit("_", 1)[1].removesuffix(".ts"))
        assert world.objects.get(BUCKET, task.key) == segment_body(index)
    assert world.objects.unsynced == set()
    assert world.stored_keys() == sorted(task.key for task in chunks[1])
    # AND the chunk is done with its counts, the job counts it, and no finalize is queued yet
    nbytes = sum(len(segment_body(index)) for index in range(35, 60))
    record = world.store.get_chunk("j", 1)
    assert (record.done, record.segments, record.bytes) == (True, 25, nbytes)
    job = world.store.get("j")
    assert (job.phase, job.chunks_done, job.segments_done, job.bytes_done) == (
        Phase.HARVESTING,
        1,
        25,
        nbytes,
    )
    assert world.take_published() == []
    # AND every segment was asked for with the endpoint's headers
    assert set(world.origin.requests) == {task.url for task in chunks[1]}
    assert all(headers == HEADERS for headers in world.origin.headers_seen)


def test_the_chunk_that_completes_the_job_queues_its_finalize_once(world: World) -> None:
    # GIVEN a job planned in three chunks
    planned(world, 60)
    # WHEN its chunks are harvested one after the other
    published = []
    for index in (2, 0, 1):
        harvest_chunk(world.deps, "j", index)
        published.append(world.take_published())
    # THEN only the last one queued the finalize message, and the job is finalizing
    assert published == [[], [], [finalize_message("j")]]
    assert world.store.get("j").phase is Phase.FINALIZING


def test_a_repeated_message_for_a_done_chunk_fetches_nothing(world: World) -> None:
    # GIVEN a one-chunk job whose chunk is done (its finalize already queued)
    planned(world, 10)
    harvest_chunk(world.deps, "j", 0)
    world.take_published()
    world.origin.requests.clear()
    # WHEN the chunk's message is delivered again
    harvest_chunk(world.deps, "j", 0)
    # THEN nothing was fetched, counted or queued again
    assert world.origin.requests == []
    assert world.store.get("j").segments_done == 10
    assert world.take_published() == []


def test_a_chunk_of_a_cancelled_or_deleted_job_fetches_nothing(world: World) -> None:
    # GIVEN a planned job that was cancelled, and then deleted
    planned(world, 10)
    world.store.finish("j", JobStatus.FAILED, "cancelled by AKIDtest")
    # WHEN its chunk message arrives, before and after the deletion
    harvest_chunk(world.deps, "j", 0)
    world.store.delete(["j"])
    harvest_chunk(world.deps, "j", 0)
    # THEN the origin was never asked and nothing was stored
    assert world.origin.requests == []
    assert world.stored_keys() == []


def test_a_segment_that_cannot_be_fetched_fails_the_job_naming_it_and_stops_the_rest(world: World) -> None:
    # GIVEN a 25-segment chunk whose first segment is gone (404 after the origin's retries), while the
    # second one is still downloading when the first fails
    planned(world, 25)
    failed = threading.Event()
    world.origin.serve(segment_url(10), status=404, during=failed.set)
    world.origin.serve(segment_url(11), segment_body(11), during=lambda: failed.wait(5))

    def until_the_failure_is_on_record() -> None:
        # A segment taken after 11 was taken while the failure was on its way to the pool (the
        # read-ahead): it ends only once the pool has it, so how many are taken in that moment
        # does not depend on how fast this machine runs the fake fetches (CI once saw all 25).
        deadline = time.monotonic() + 5
        while world.deps.downloads.batches_waiting and time.monotonic() < deadline:
            time.sleep(0.001)

    for index in range(12, 35):
        world.origin.serve(segment_url(index), segment_body(index), during=until_the_failure_is_on_record)
    # WHEN the chunk is harvested (two downloads at a time)
    harvest_chunk(world.deps, "j", 0)
    # THEN the job failed naming that segment, and its callback message went out
    job = world.store.get("j")
    assert (job.status, job.err_message) == (JobStatus.FAILED, f"segment {segment_url(10)}: HTTP 404")
    assert world.take_published() == [callback_message("j")]
    # AND no further download was started (at most the loop's read-ahead), none is left running,
    # and the chunk is not recorded as done
    assert len(world.origin.requests) <= 2 * 2
    assert world.origin.in_flight == 0
    assert world.store.get_chunk("j", 0).done is False


class FailingStore(MemoryObjectStore):
    """A bucket that refuses the keys ending in `refused` (a full disk, a COS outage)."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    def put_stream(
        self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str, durable: bool = True
    ) -> int:
        if key.endswith(self.refused):
            raise StorageError(f"cannot write {bucket}/{key}: injected")
        return super().put_stream(bucket, key, chunks, content_type, durable)


def test_an_unexpected_error_is_raised_for_redelivery_and_stops_the_remaining_downloads() -> None:
    # GIVEN a 25-segment chunk whose second object the bucket refuses (not the segment's fault)
    world = make_world(download_concurrency=2, objects=FailingStore("/11.ts"))
    world.live(100)
    planned(world, 25)
    # WHEN the chunk is harvested
    # THEN the error comes out (the message is redelivered), the job is still Running and the chunk not done
    with pytest.raises(StorageError, match="injected"):
        harvest_chunk(world.deps, "j", 0)
    job = world.store.get("j")
    assert (job.status, job.phase) == (JobStatus.RUNNING, Phase.HARVESTING)
    assert world.store.get_chunk("j", 0).done is False
    # AND the downloads after it were not all started, and none is left running
    assert len(world.origin.requests) <= 2 * 2 + 1
    assert world.origin.in_flight == 0


def test_the_deadline_interrupts_a_chunk_which_resumes_on_redelivery() -> None:
    # GIVEN a 10-segment chunk, one download at a time, each segment taking 1 s of the test's clock,
    # and an invocation that must stop 3.5 s from now
    world = make_world(download_concurrency=1)
    world.live(100)
    chunks = planned(world, 10)
    for index in range(10, 20):
        world.origin.serve(segment_url(index), segment_body(index), delay=1.0)
    deadline = world.clock() + 3.5
    # WHEN the chunk is harvested until should_stop says the deadline is near
    # THEN it stops with Interrupted, leaving the first four segments stored and the chunk not done
    with pytest.raises(Interrupted, match="stopped before"):
        harvest_chunk(world.deps, "j", 0, should_stop=lambda: world.clock() >= deadline)
    assert world.stored_keys() == sorted(task.key for task in chunks[0][:4])
    job = world.store.get("j")
    assert (job.status, job.chunks_done) == (JobStatus.RUNNING, 0)
    assert world.store.get_chunk("j", 0).done is False
    assert world.take_published() == []
    # AND the redelivered message, with time enough, finishes the chunk and queues the finalize
    harvest_chunk(world.deps, "j", 0)
    assert world.stored_keys() == sorted(task.key for task in chunks[0])
    assert world.store.get_chunk("j", 0).done is True
    assert world.take_published() == [finalize_message("j")]


@pytest.mark.parametrize("deleted", [False, True])
def test_a_cancel_during_a_chunk_stops_its_downloads_and_records_nothing(
    monkeypatch: pytest.MonkeyPatch, deleted: bool
) -> None:
    # GIVEN a 10-segment chunk, one download at a time, the job's status read before every download,
    # and a cancel (then, in one case, a delete) that lands while the third segment downloads
    world = make_world(download_concurrency=1)
    world.live(100)
    planned(world, 10)
    monkeypatch.setattr(harvest, "CANCEL_POLL_SECONDS", 0.0)

    def cancel() -> None:
        world.store.finish("j", JobStatus.FAILED, "cancelled by AKIDtest")
        if deleted:
            world.store.delete(["j"])

    world.origin.serve(segment_url(12), segment_body(12), during=cancel)
    # WHEN the chunk is harvested
    harvest_chunk(world.deps, "j", 0)
    # THEN the segment under way finished, no other started, and nothing was recorded or queued
    assert world.origin.requests == [segment_url(index) for index in (10, 11, 12)]
    assert world.take_published() == []
    if not deleted:
        assert world.store.get_chunk("j", 0).done is False
        job = world.store.get("j")
        assert (job.status, job.err_message, job.chunks_done) == (
            JobStatus.FAILED,
            "cancelled by AKIDtest",
            0,
        )


def test_chunks_running_at_once_in_one_process_share_its_download_concurrency(world: World) -> None:
    # GIVEN HARVEST_DOWNLOAD_CONCURRENCY 2 and a job of three chunks whose segments take a while
    chunks = planned(world, 60)
    most = [0]

    def slow() -> None:
        most[0] = max(most[0], world.origin.in_flight)
        threading.Event().wait(0.005)

    for task in chunks[0] + chunks[1]:
        index = int(task.url.rsplit("_", 1)[1].removesuffix(".ts"))
        world.origin.serve(task.url, segment_body(index), during=slow)
    # WHEN two consumers harvest two chunks at the same time
    consumers = [threading.Thread(target=harvest_chunk, args=(world.deps, "j", i)) for i in (0, 1)]
    for consumer in consumers:
        consumer.start()
    for consumer in consumers:
        consumer.join(30)
    # THEN both are done, and the process never had more than 2 downloads under way (not 2 each)
    assert [world.store.get_chunk("j", i).done for i in (0, 1)] == [True, True]
    assert most[0] == 2


def test_a_long_chunk_reports_live_progress_while_it_runs(world: World) -> None:
    # GIVEN a 6-segment chunk whose last segment takes over a second of real time (the progress
    # report is paced by the real clock, once a second)
    planned(world, 6)
    world.origin.serve(segment_url(15), segment_body(15), during=lambda: threading.Event().wait(1.3))
    # WHEN it is harvested
    harvest_chunk(world.deps, "j", 0)
    # THEN the segments done before the slow one were reported as live progress while it ran
    job = world.store.get("j")
    assert 1 <= job.extra["live_segments"] <= 5
    assert job.extra["live_bytes"] >= len(segment_body(10))
    assert job.segments_done == 6


def test_an_object_already_stored_with_its_planned_size_is_not_fetched_again(world: World) -> None:
    # GIVEN a chunk of two segments of known size, the first stored by an earlier delivery
    tasks = [download_task(segment_url(index), len(segment_body(index))) for index in (1, 2)]
    seeded(world, tasks)
    world.objects.put(BUCKET, tasks[0].key, segment_body(1), "video/mp2t")
    # WHEN the chunk runs again
    harvest_chunk(world.deps, "j", 0)
    # THEN only the second segment was fetched; the chunk counts both segments, and the bytes fetched
    assert world.origin.requests == [segment_url(2)]
    record = world.store.get_chunk("j", 0)
    assert (record.done, record.segments, record.bytes) == (True, 2, len(segment_body(2)))


@pytest.mark.parametrize(
    ("served", "error"),
    [
        (b"x" * 99, "segment seg_1.ts: got 99 bytes, expected 100"),
        (b"x" * 101, "segment seg_1.ts: more than the 100 bytes expected"),
    ],
)
def test_a_segment_of_another_size_than_planned_fails_the_job_and_stores_nothing(
    world: World, served: bytes, error: str
) -> None:
    # GIVEN a chunk whose segment was planned at 100 bytes, and an origin that sends another size
    seeded(world, [download_task(segment_url(1), 100)])
    world.origin.serve(segment_url(1), served)
    # WHEN the chunk is harvested
    harvest_chunk(world.deps, "j", 0)
    # THEN the job failed naming the segment and both sizes, and no object was left in the bucket
    job = world.store.get("j")
    assert (job.status, job.err_message) == (JobStatus.FAILED, error)
    assert world.stored_keys() == []
