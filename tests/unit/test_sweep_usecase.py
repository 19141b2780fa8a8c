"""The sweeper against in-memory ports: jobs past the deadline fail saying how far they got, stalled
jobs get their next messages again, and committed messages are published."""

from __future__ import annotations

import pytest
from tests.support.harvest_world import BASE, SEGMENT_SECONDS, World, make_world

from harvest.domain.job import (
    JobStatus,
    Phase,
    callback_message,
    chunk_message,
    finalize_message,
    plan_message,
)
from harvest.usecases.harvest import harvest_chunk, plan_job
from harvest.usecases.sweep import lost_messages, sweep

STALE = 300.0


@pytest.fixture
def world() -> World:
    world = make_world(job_deadline=3600.0)
    world.live(100)
    return world


def create(world: World, job_id: str, segments: int = 10) -> None:
    start = BASE + 10 * SEGMENT_SECONDS
    world.create(job_id, start, start + segments * SEGMENT_SECONDS)


def test_a_job_past_the_deadline_fails_saying_how_far_it_got(world: World) -> None:
    # GIVEN a job harvesting 3 chunks, one done, created more than the deadline ago
    create(world, "old", segments=60)
    plan_job(world.deps, "old")
    harvest_chunk(world.deps, "old", 0)
    world.take_published()
    world.clock.advance(3600 + 1)
    # WHEN the sweeper runs
    report = sweep(world.deps, STALE)
    # THEN the job failed with its phase and counts in ErrMessage, and its callback went out
    job = world.store.get("old")
    assert job.status is JobStatus.FAILED
    assert job.err_message == (
        "job did not finish within 3600 s (stopped at phase harvesting, 1/3 chunks, 25/60 segments);"
        " failed by the sweeper"
    )
    assert (report.failed, report.requeued) == (["old"], {})
    assert world.take_published() == [callback_message("old")]


def test_a_job_that_moved_recently_is_left_alone(world: World) -> None:
    # GIVEN a job created a while ago that was touched less than STALE seconds ago
    create(world, "busy")
    world.take_published()
    world.clock.advance(STALE * 2)
    world.store.add_progress("busy", 1, 100)
    world.clock.advance(STALE - 1)
    # WHEN the sweeper runs
    report = sweep(world.deps, STALE)
    # THEN nothing was failed, re-queued or published
    assert report.as_dict() == {"failed": [], "requeued": {}, "published": 0}
    assert world.take_published() == []


def test_stalled_jobs_get_the_messages_of_their_phase_again_once_per_stale_period(world: World) -> None:
    # GIVEN a job never planned, one harvesting with chunk 1 of 3 done, and one whose chunks are done
    create(world, "queued")
    create(world, "harvesting", segments=60)
    plan_job(world.deps, "harvesting")
    harvest_chunk(world.deps, "harvesting", 1)
    create(world, "finalizing")
    plan_job(world.deps, "finalizing")
    harvest_chunk(world.deps, "finalizing", 0)
    world.take_published()
    world.clock.advance(STALE)
    # WHEN the sweeper runs, and runs again right after
    report = sweep(world.deps, STALE)
    again = sweep(world.deps, STALE)
    # THEN each job got what moves it on: plan, the chunks not done, finalize; each once
    assert report.requeued == {"queued": 1, "harvesting": 2, "finalizing": 1}
    assert sorted(world.take_published(), key=lambda m: (m.key, str(m.body))) == [
        finalize_message("finalizing"),
        chunk_message("harvesting", 0),
        chunk_message("harvesting", 2),
        plan_message("queued"),
    ]
    assert again.requeued == {}
    # AND none of them was failed
    assert all(world.store.get(job_id).status is JobStatus.RUNNING for job_id in report.requeued)


def test_committed_messages_left_in_the_outbox_are_published(world: World) -> None:
    # GIVEN a job whose plan message was committed but not published (the relay was down)
    create(world, "j")
    world.queue.ack(world.queue.receive(1, 60)[0].id)  # consumed and lost downstream
    world.store.finish("j", JobStatus.FAILED, "cancelled", [callback_message("j")])
    # WHEN the sweeper runs
    report = sweep(world.deps, STALE)
    # THEN the callback message was published
    assert report.published == 1
    assert world.take_published() == [callback_message("j")]


def test_an_ended_job_has_no_lost_messages(world: World) -> None:
    # GIVEN a job that completed (read before the sweep saw it end)
    create(world, "j")
    job = world.store.finish("j", JobStatus.COMPLETED)
    # WHEN its lost messages are asked for
    # THEN there are none: nothing moves a job that has ended
    assert job.phase is Phase.DONE
    assert lost_messages(world.store, job) == []
