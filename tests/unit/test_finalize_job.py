"""finalize_job against in-memory ports: the bucket is checked against the plan, the manifests are
written (the Manifest last), and the job completes once."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.support.fakes import MemoryObjectStore
from tests.support.harvest_world import BASE, BUCKET, SEGMENT_SECONDS, World, make_world
from tests.support.tasks import download_task

from harvest.domain.job import JobStatus, Phase, callback_message
from harvest.usecases.harvest import finalize_job, harvest_chunk, plan_job

MANIFEST = "out/j/index.m3u8"
MEDIA_PLAYLIST = "out/j/index/v0_640x360/playlist.m3u8"


def harvested(world: World, segments: int = 10, chunks_done: bool = True) -> None:
    """Job "j" over `segments` segments from segment 10, planned and (unless not `chunks_done`) harvested."""
    start = BASE + 10 * SEGMENT_SECONDS
    world.create("j", start, start + segments * SEGMENT_SECONDS)
    plan_job(world.deps, "j")
    if chunks_done:
        for index in range(world.store.get("j").chunks_total):
            harvest_chunk(world.deps, "j", index)
    world.take_published()


@pytest.fixture
def world() -> World:
    world = make_world(master=True)
    world.live(100)
    return world


def test_a_harvested_job_gets_its_manifests_and_completes(world: World) -> None:
    # GIVEN a job whose every chunk is done
    harvested(world)
    segment_keys = world.stored_keys()
    # WHEN it is finalized
    finalize_job(world.deps, "j")
    # THEN the media playlist and the Manifest (the master) are in the bucket, typed as HLS, and the
    # media playlist names every segment
    assert world.stored_keys() == sorted([*segment_keys, MANIFEST, MEDIA_PLAYLIST])
    assert world.objects.content_type(BUCKET, MANIFEST) == "application/vnd.apple.mpegurl"
    media = world.objects.get(BUCKET, MEDIA_PLAYLIST).decode()
    assert [line for line in media.splitlines() if line.endswith(".ts")] == [
        f"{index}.ts" for index in range(10, 20)
    ]
    assert media.rstrip().endswith("#EXT-X-ENDLIST")
    # AND the job is Completed with its callback message queued
    job = world.store.get("j")
    assert (job.status, job.phase, job.err_message) == (JobStatus.COMPLETED, Phase.DONE, "")
    assert world.take_published() == [callback_message("j")]


class OrderedStore(MemoryObjectStore):
    """A bucket that remembers the order objects were written in."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        self.written.append(key)
        super().put(bucket, key, data, content_type)


def test_the_manifest_is_written_after_the_playlists_it_points_to() -> None:
    # GIVEN a harvested job
    objects = OrderedStore()
    world = make_world(objects=objects, master=True)
    world.live(100)
    harvested(world)
    # WHEN it is finalized
    finalize_job(world.deps, "j")
    # THEN the Manifest was the last object written: once it exists, all it points to exists
    assert objects.written[-1] == MANIFEST
    assert MEDIA_PLAYLIST in objects.written[:-1]


def test_missing_segments_fail_the_job_naming_the_first_and_counting_the_rest(world: World) -> None:
    # GIVEN a job whose chunks were recorded done but whose segments never reached the bucket
    harvested(world, chunks_done=False)
    world.store.complete_chunk("j", 0, 10, 0, [])
    # WHEN it is finalized
    finalize_job(world.deps, "j")
    # THEN it failed naming the first missing segment and how many more, and wrote no manifest
    job = world.store.get("j")
    assert job.status is JobStatus.FAILED
    assert job.err_message == "segment v0_640x360/10.ts is missing from the bucket (and 9 more)"
    assert world.stored_keys() == []
    assert world.take_published() == [callback_message("j")]


def test_a_single_lost_segment_is_named_alone(world: World) -> None:
    # GIVEN a harvested job that lost one segment from the bucket after its chunk was recorded
    harvested(world)
    kept = MemoryObjectStore()
    for key in world.stored_keys()[1:]:
        kept.put(BUCKET, key, world.objects.get(BUCKET, key), "video/mp2t")
    world.deps = replace(world.deps, objects=kept)
    # WHEN it is finalized
    finalize_job(world.deps, "j")
    # THEN ErrMessage names that segment, and no "more"
    assert world.store.get("j").err_message == "segment v0_640x360/10.ts is missing from the bucket"


def test_a_segment_of_another_size_than_planned_fails_the_job_with_both_sizes(world: World) -> None:
    # GIVEN a job planned with sizes (byte ranges are), whose second object has the wrong size
    world.create("j", BASE + 20, BASE + 40)
    tasks = [download_task(f"http://origin.example/live/{n}.mp4", 100) for n in range(3)]
    plan = {
        "format": 1,
        "bucket": BUCKET,
        "master_key": MANIFEST,
        "playlists": {MANIFEST: "#EXTM3U\n"},
        "tasks": [task.to_json() for task in tasks],
        "warnings": [],
    }
    assert world.store.save_plan("j", plan, [tasks], 3, [])
    for task, size in zip(tasks, (100, 99, 100), strict=True):
        world.objects.put(BUCKET, task.key, b"x" * size, task.content_type)
    world.store.complete_chunk("j", 0, 3, 299, [])
    # WHEN it is finalized
    finalize_job(world.deps, "j")
    # THEN ErrMessage names the object and both sizes, and the Manifest was not written
    assert world.store.get("j").err_message == "segment 1.mp4 has 99 bytes, expected 100"
    assert MANIFEST not in world.stored_keys()


def test_finalize_before_every_chunk_is_done_is_ignored(world: World) -> None:
    # GIVEN a planned job whose chunk has not run (a finalize message out of order)
    harvested(world, chunks_done=False)
    # WHEN it is finalized
    finalize_job(world.deps, "j")
    # THEN nothing changed: still harvesting, no manifest, nothing queued
    job = world.store.get("j")
    assert (job.status, job.phase) == (JobStatus.RUNNING, Phase.HARVESTING)
    assert world.stored_keys() == []
    assert world.take_published() == []


def test_a_repeated_finalize_after_completion_changes_nothing(world: World) -> None:
    # GIVEN a completed job, whose Manifest a user then replaced
    harvested(world)
    finalize_job(world.deps, "j")
    world.take_published()
    world.objects.put(BUCKET, MANIFEST, b"#EXTM3U\n# edited\n", "application/vnd.apple.mpegurl")
    finished_at = world.store.get("j").finished_at
    world.clock.advance(60)
    # WHEN the finalize message is delivered again, and once more after the job was deleted
    finalize_job(world.deps, "j")
    world.store.delete(["j"])
    finalize_job(world.deps, "j")
    # THEN nothing was rewritten and no second callback was queued
    assert world.objects.get(BUCKET, MANIFEST) == b"#EXTM3U\n# edited\n"
    assert world.take_published() == []
    assert finished_at == BASE + 3600


class CancelOnManifest(MemoryObjectStore):
    """A bucket that lets `on_manifest` run (a cancel landing) as the Manifest is written."""

    def __init__(self) -> None:
        super().__init__()
        self.world: World | None = None

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        super().put(bucket, key, data, content_type)
        if key == MANIFEST and self.world is not None:
            self.world.store.finish("j", JobStatus.FAILED, "cancelled by AKIDtest", [callback_message("j")])


def test_a_cancel_that_lands_while_finalizing_wins() -> None:
    # GIVEN a harvested job that is cancelled while its manifests are written
    objects = CancelOnManifest()
    world = make_world(objects=objects, master=True)
    world.live(100)
    harvested(world)
    objects.world = world
    # WHEN it is finalized
    finalize_job(world.deps, "j")
    # THEN the job stays as the cancel left it, and only the cancel's callback is to go out
    job = world.store.get("j")
    assert (job.status, job.err_message) == (JobStatus.FAILED, "cancelled by AKIDtest")
    assert [message for _, message in world.store.pending_outbox(10)] == [callback_message("j")]
    assert world.take_published() == []
