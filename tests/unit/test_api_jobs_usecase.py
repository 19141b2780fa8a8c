"""The API's job use cases against in-memory ports: what a scoped key sees and may do, cancelling,
and a create whose publish fails."""

from __future__ import annotations

import dataclasses

import pytest
from tests.support.harvest_world import BASE, CHANNEL, DESTINATION, ENDPOINT, PLAYLIST_URL, World, make_world

from harvest.domain.access import BucketScope, Caller, KeyScope
from harvest.domain.job import JobStatus, callback_message, plan_message
from harvest.domain.registry import Channel, Endpoint
from harvest.domain.validation import CreateParams
from harvest.errors import FieldError, JobNotCancellable, UnauthorizedOperation, Unavailable
from harvest.usecases import api_jobs
from harvest.usecases.api_jobs import cancel_job, create_job, delete_job, delete_jobs, describe_job, list_jobs

OTHER = "other"
DEMO_ONLY = Caller("AKIDdemo", KeyScope(channels=(CHANNEL,)))
DEMO_BUCKET = Caller("AKIDbucket", KeyScope(buckets=(BucketScope("vod-1250000000", "out/"),)))


@pytest.fixture
def world() -> World:
    world = make_world()
    world.deps.registry.channels[OTHER] = Channel(
        OTHER, "ch-other", {ENDPOINT: Endpoint(ENDPOINT, PLAYLIST_URL)}
    )
    return world


def create(world: World, job_id: str, channel: str = CHANNEL, live_event: bool = False) -> None:
    params = CreateParams(
        job_id, channel, ENDPOINT, "Epoch seconds", str(int(BASE + 20)), str(int(BASE + 40)), DESTINATION
    )
    deps = world.deps
    create_job(
        world.store, deps.relay, deps.registry, deps.settings, params, world.clock(), live_event=live_event
    )


def test_a_scoped_key_lists_only_its_channels_jobs_page_by_page(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN five jobs on two channels, read two rows at a time when a scoped key lists
    monkeypatch.setattr(api_jobs, "SCAN_BATCH", 2)
    for job_id, channel in [("a", CHANNEL), ("b", OTHER), ("c", CHANNEL), ("d", OTHER), ("e", CHANNEL)]:
        create(world, job_id, channel)
        world.clock.advance(1)
    # WHEN a key scoped to the demo channel lists pages of two
    first = list_jobs(world.store, None, 1, 2, DEMO_ONLY)
    second = list_jobs(world.store, None, 2, 2, DEMO_ONLY)
    # THEN it sees its three jobs in creation order, counted as three; an unscoped key sees all five
    assert ([job.id for job in first.jobs + second.jobs], first.total, second.total) == (
        ["a", "c", "e"],
        3,
        3,
    )
    assert list_jobs(world.store, None, 1, 10).total == 5
    # AND asking for another channel's jobs is refused, naming the key
    with pytest.raises(UnauthorizedOperation, match="AKIDdemo"):
        list_jobs(world.store, OTHER, 1, 10, DEMO_ONLY)


def test_a_key_scoped_to_buckets_does_not_see_a_job_whose_destination_no_longer_parses(world: World) -> None:
    # GIVEN a job in the key's bucket, and one stored by an older release with a destination this
    # release does not read
    create(world, "mine")
    legacy = dataclasses.replace(world.store.get("mine"), id="legacy", destination="ftp://old/place")
    world.store.create(legacy, [])
    # WHEN the bucket-scoped key describes and lists them
    mine = describe_job(world.store, "mine", DEMO_BUCKET)
    with pytest.raises(UnauthorizedOperation):
        describe_job(world.store, "legacy", DEMO_BUCKET)
    listed = list_jobs(world.store, None, 1, 10, DEMO_BUCKET)
    # THEN it sees its own job only; an unscoped key sees the legacy one as well
    assert mine.id == "mine"
    assert [job.id for job in listed.jobs] == ["mine"]
    assert describe_job(world.store, "legacy").destination == "ftp://old/place"


def test_a_scoped_key_deletes_all_of_its_jobs_or_none(world: World) -> None:
    # GIVEN two ended jobs, one on each channel
    for job_id, channel in [("mine", CHANNEL), ("theirs", OTHER)]:
        create(world, job_id, channel)
        world.store.finish(job_id, JobStatus.FAILED, "x")
    # WHEN the demo-scoped key deletes both, then its own
    with pytest.raises(UnauthorizedOperation, match="theirs"):
        delete_jobs(world.store, ["mine", "theirs"], DEMO_ONLY)
    kept = world.store.list(None, 0, 10).total
    delete_jobs(world.store, ["mine"], DEMO_ONLY)
    # THEN the mixed request deleted nothing, the second deleted its job
    assert kept == 2
    assert [job.id for job in world.store.list(None, 0, 10).jobs] == ["theirs"]
    # AND an unscoped key deletes any one ended job
    delete_job(world.store, "theirs")
    assert world.store.list(None, 0, 10).total == 0


def test_cancel_fails_a_running_job_naming_who_and_when_and_queues_its_callback(world: World) -> None:
    # GIVEN a running job
    create(world, "j")
    world.take_published()
    # WHEN the demo key cancels it
    job = cancel_job(world.store, world.deps.relay, "j", DEMO_ONLY, world.clock())
    # THEN it is Failed saying who and when, and its callback message went out at once
    assert (job.status, job.err_message) == (
        JobStatus.FAILED,
        "cancelled by AKIDdemo at 2023-11-14T23:13:20Z",
    )
    assert world.store.get("j") == job
    assert world.take_published() == [callback_message("j")]


def test_cancel_of_an_ended_job_is_refused_with_its_status(world: World) -> None:
    # GIVEN a completed job
    create(world, "j")
    world.store.finish("j", JobStatus.COMPLETED)
    # WHEN it is cancelled
    # THEN the refusal names its status, and it stays Completed
    with pytest.raises(JobNotCancellable, match="harvest job j is Completed"):
        cancel_job(world.store, world.deps.relay, "j", DEMO_ONLY, world.clock())
    assert world.store.get("j").status is JobStatus.COMPLETED


def test_cancel_of_another_channels_job_is_refused_and_changes_nothing(world: World) -> None:
    # GIVEN a running job on a channel outside the key's scope
    create(world, "theirs", OTHER)
    # WHEN the demo key cancels it / THEN refused, still Running
    with pytest.raises(UnauthorizedOperation):
        cancel_job(world.store, world.deps.relay, "theirs", DEMO_ONLY, world.clock())
    assert world.store.get("theirs").status is JobStatus.RUNNING


class BrokenRelay:
    def flush(self, limit: int = 500) -> int:
        raise Unavailable("queue down")


def test_a_job_is_created_even_when_its_first_message_cannot_be_published_yet(world: World) -> None:
    # GIVEN a relay whose queue is down
    world.deps = dataclasses.replace(world.deps, relay=BrokenRelay())
    # WHEN a job is created
    create(world, "j")
    # THEN it exists, and its plan message waits in the outbox for the next flush
    assert world.store.get("j").status is JobStatus.RUNNING
    assert [message for _, message in world.store.pending_outbox(10)] == [plan_message("j")]
    assert world.published() == []


def test_only_live_events_may_take_live_ids(world: World) -> None:
    # WHEN an API caller and a live event each create a job with a live- ID
    with pytest.raises(FieldError, match="reserved"):
        create(world, "live-stream-1")
    create(world, "live-stream-2", live_event=True)
    # THEN only the live event's job exists
    assert [job.id for job in world.store.list(None, 0, 10).jobs] == ["live-stream-2"]
