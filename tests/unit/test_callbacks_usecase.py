"""fail_job and deliver_callback against in-memory ports: a job ends once, and its CallbackURL is
delivered once, never lost."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.support.harvest_world import BASE, World, make_world

from harvest.domain.job import CallbackClaim, JobStatus, callback_message
from harvest.errors import Unavailable
from harvest.usecases.harvest import (
    CLAIM_POLL_SECONDS,
    callback_claim_stale_after,
    deliver_callback,
    fail_job,
)

CALLBACK = "https://hooks.example.com/done"


@pytest.fixture
def world() -> World:
    world = make_world()
    world.create("j", BASE + 20, BASE + 40, callback_url=CALLBACK)
    world.take_published()
    return world


def test_fail_job_fails_a_running_job_with_a_public_message_and_queues_its_callback(world: World) -> None:
    # WHEN a running job is failed with a reason that carries a URL's token
    job = fail_job(world.deps, "j", "playlist http://o.example/a.m3u8?token=s3cr3t: HTTP 403")
    # THEN it is Failed with the reason as clients may see it, and its callback message went out
    assert job is not None
    stored = world.store.get("j")
    assert (stored.status, stored.err_message) == (
        JobStatus.FAILED,
        "playlist http://o.example/a.m3u8: HTTP 403",
    )
    assert job == stored
    assert world.take_published() == [callback_message("j")]


def test_fail_job_leaves_an_ended_or_unknown_job_alone(world: World) -> None:
    # GIVEN a job that completed
    world.store.finish("j", JobStatus.COMPLETED, outbox=[callback_message("j")])
    world.deps.relay.flush()
    world.take_published()
    # WHEN something late fails it, and fails a job that does not exist
    late = fail_job(world.deps, "j", "deadline passed")
    ghost = fail_job(world.deps, "ghost", "x")
    # THEN neither call changed anything or queued a second callback
    assert (late, ghost) == (None, None)
    assert world.store.get("j").status is JobStatus.COMPLETED
    assert world.take_published() == []


class BrokenRelay:
    """A relay whose queue is down: flush raises."""

    def flush(self, limit: int = 500) -> int:
        raise Unavailable("queue down")


def test_a_failed_publish_after_the_end_leaves_the_callback_in_the_outbox(world: World) -> None:
    # GIVEN a relay that cannot publish right now
    world.deps = replace(world.deps, relay=BrokenRelay())
    # WHEN the job is failed
    job = fail_job(world.deps, "j", "origin gone")
    # THEN it is Failed all the same, and its callback message waits for the next flush
    assert job is not None
    assert world.store.get("j").status is JobStatus.FAILED
    assert [message for _, message in world.store.pending_outbox(10)] == [callback_message("j")]


def test_an_ended_job_is_posted_to_its_callback_url_once_and_the_outcome_kept(world: World) -> None:
    # GIVEN a job that failed
    fail_job(world.deps, "j", "origin gone")
    # WHEN its callback message is delivered, and delivered again
    deliver_callback(world.deps, "j")
    deliver_callback(world.deps, "j")
    # THEN the receiver got the job's API record once, and the outcome is on the job
    job = world.store.get("j")
    assert world.notifier.sent == [(CALLBACK, job.to_api())]
    assert job.to_api()["Status"] == "Failed"
    assert job.callback_status == world.notifier.outcome


def test_a_callback_for_a_deleted_job_or_one_still_running_sends_nothing(world: World) -> None:
    # GIVEN a running job (a callback message ahead of its end cannot happen, but is harmless)
    # WHEN callback messages arrive for it and for a job that was deleted
    deliver_callback(world.deps, "j")
    deliver_callback(world.deps, "ghost")
    # THEN nothing was sent
    assert world.notifier.sent == []


def test_a_claim_held_by_a_dead_deliverer_is_taken_over_once_stale(world: World) -> None:
    # GIVEN an ended job whose callback another deliverer claimed and then died with
    fail_job(world.deps, "j", "origin gone")
    stale_after = callback_claim_stale_after(world.deps.settings)
    assert world.store.claim_callback("j", stale_after) is CallbackClaim.TAKEN
    # WHEN the redelivered callback message is handled
    deliver_callback(world.deps, "j")
    # THEN it polled until the claim went stale, then delivered it itself, once
    assert set(world.sleeps) == {CLAIM_POLL_SECONDS}
    assert len(world.sleeps) * CLAIM_POLL_SECONDS > stale_after
    assert len(world.notifier.sent) == 1
    assert world.store.get("j").callback_status == world.notifier.outcome
