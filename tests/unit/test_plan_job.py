"""plan_job against in-memory ports (tests/support/harvest_world.py): each branch, by what it leaves
behind: the job's status and phase, its chunks, and the messages on the queue."""

from __future__ import annotations

import logging

import pytest
from tests.support.harvest_world import (
    BASE,
    HEADERS,
    PLAYLIST_URL,
    SEGMENT_SECONDS,
    World,
    live_playlist,
    make_world,
    segment_url,
)

from harvest.domain.job import JobStatus, Phase, callback_message, chunk_message, plan_message
from harvest.errors import RetryableError
from harvest.hls.parse import format_date
from harvest.usecases.harvest import PLAN_GRACE_SECONDS, RECENT_END_SECONDS, plan_job


@pytest.fixture
def world() -> World:
    world = make_world()
    world.live(100)
    return world


def test_a_window_is_planned_into_chunks_each_queued_once(world: World) -> None:
    # GIVEN a job for 60 segments of a live playlist of 100, its plan message consumed
    world.create("j", BASE + 20, BASE + 20 + 60 * SEGMENT_SECONDS)
    assert world.take_published() == [plan_message("j")]
    # WHEN it is planned
    plan_job(world.deps, "j")
    # THEN the job is harvesting 60 segments in 3 chunks (25, 25, 10), in window order
    job = world.store.get("j")
    assert (job.status, job.phase, job.chunks_total, job.segments_total) == (
        JobStatus.RUNNING,
        Phase.HARVESTING,
        3,
        60,
    )
    urls = [task.url for index in range(3) for task in world.store.get_chunk("j", index).tasks]
    assert urls == [segment_url(index) for index in range(10, 70)]
    assert [len(world.store.get_chunk("j", index).tasks) for index in range(3)] == [25, 25, 10]
    # AND one message per chunk was published at once (not left for the next relay flush)
    assert world.take_published() == [chunk_message("j", index) for index in range(3)]
    # AND only the playlist was read, with the endpoint's headers
    assert world.origin.requests == [PLAYLIST_URL]
    assert world.origin.headers_seen == [HEADERS]


def test_a_repeated_plan_message_plans_nothing_again(world: World) -> None:
    # GIVEN a planned job
    world.create("j", BASE + 20, BASE + 40)
    plan_job(world.deps, "j")
    world.take_published()
    requests = len(world.origin.requests)
    # WHEN its plan message is delivered again
    plan_job(world.deps, "j")
    # THEN the origin was not asked again and nothing new was queued
    assert len(world.origin.requests) == requests
    assert world.take_published() == []
    assert world.store.get("j").chunks_total == 1


def test_a_plan_message_for_a_cancelled_or_deleted_job_does_nothing(world: World) -> None:
    # GIVEN a job cancelled before it was planned, and one deleted after it failed
    world.create("cancelled", BASE + 20, BASE + 40)
    world.store.finish("cancelled", JobStatus.FAILED, "cancelled by AKIDtest")
    world.create("deleted", BASE + 20, BASE + 40)
    world.store.finish("deleted", JobStatus.FAILED, "x")
    world.store.delete(["deleted"])
    world.take_published()
    # WHEN their plan messages arrive
    plan_job(world.deps, "cancelled")
    plan_job(world.deps, "deleted")
    # THEN the origin was never asked and the cancelled job keeps its end
    assert world.origin.requests == []
    job = world.store.get("cancelled")
    assert (job.status, job.phase, job.chunks_total) == (JobStatus.FAILED, Phase.DONE, 0)
    assert world.take_published() == []


def test_planning_right_after_endtime_waits_for_the_grace_first() -> None:
    # GIVEN a job whose EndTime passed 3 s ago (its last segment may not be published yet)
    world = make_world(now=BASE + 43)
    world.live(30)
    world.create("j", BASE + 20, BASE + 40)
    # WHEN it is planned
    plan_job(world.deps, "j")
    # THEN it first slept until EndTime + the grace, then planned
    assert world.sleeps == [pytest.approx(40 + PLAN_GRACE_SECONDS - 43)]
    assert world.store.get("j").phase is Phase.HARVESTING


def test_a_window_the_live_edge_has_not_reached_is_retried_not_failed() -> None:
    # GIVEN a playlist whose live edge lags EndTime, planned within RECENT_END_SECONDS of EndTime
    world = make_world(now=BASE + 100)
    world.live(40)  # up to BASE + 80
    world.create("j", BASE + 60, BASE + 95)
    # WHEN it is planned
    # THEN the message is to be redelivered, and the job is still Running and unplanned
    with pytest.raises(RetryableError, match="not yet available"):
        plan_job(world.deps, "j")
    job = world.store.get("j")
    assert (job.status, job.phase) == (JobStatus.RUNNING, Phase.QUEUED)


def test_a_window_still_uncovered_long_after_endtime_fails_the_job() -> None:
    # GIVEN the same lagging playlist, but EndTime is more than RECENT_END_SECONDS ago
    world = make_world(now=BASE + 95 + RECENT_END_SECONDS + 1)
    world.live(40)
    world.create("j", BASE + 60, BASE + 95)
    world.take_published()
    # WHEN it is planned
    plan_job(world.deps, "j")
    # THEN the job failed saying the window is not covered, and its callback message is queued
    job = world.store.get("j")
    assert job.status is JobStatus.FAILED
    assert "missing at the end" in job.err_message
    assert world.take_published() == [callback_message("j")]


def test_dates_nobody_can_read_fail_the_job_at_once_naming_the_date() -> None:
    # GIVEN a live playlist whose every PROGRAM-DATE-TIME is written day first, planned right after
    # EndTime (where a window not yet covered is retried)
    world = make_world(now=BASE + 100)
    world.live(40)
    text = live_playlist(40).replace("#EXT-X-PROGRAM-DATE-TIME:", "#EXT-X-PROGRAM-DATE-TIME:x")
    world.origin.serve(PLAYLIST_URL, text)
    world.create("j", BASE + 20, BASE + 40)
    # WHEN it is planned
    plan_job(world.deps, "j")
    # THEN it failed at once (not retried as "window not yet available" until dead-lettered), and
    # ErrMessage names the line and the date it could not read
    job = world.store.get("j")
    assert job.status is JobStatus.FAILED
    first = format_date(BASE)
    assert f"line 5: #EXT-X-PROGRAM-DATE-TIME 'x{first}' is not an ISO 8601 date-time" in job.err_message
    assert "no segment has a readable EXT-X-PROGRAM-DATE-TIME" in job.err_message


def test_an_unreadable_playlist_fails_the_job_naming_it_without_its_query() -> None:
    # GIVEN an endpoint whose playlist answers 404 (the origin retried already)
    world = make_world()
    world.origin.serve(PLAYLIST_URL, status=404)
    world.create("j", BASE + 20, BASE + 40)
    # WHEN the job is planned
    plan_job(world.deps, "j")
    # THEN it failed with the playlist's URL and status in ErrMessage
    job = world.store.get("j")
    assert (job.status, job.err_message) == (JobStatus.FAILED, f"playlist {PLAYLIST_URL}: HTTP 404")


def test_a_window_over_the_task_limit_fails_the_job_naming_the_limit() -> None:
    # GIVEN a job for 60 segments where one job may plan at most 50 downloads
    world = make_world(max_plan_tasks=50)
    world.live(100)
    world.create("j", BASE + 20, BASE + 140)
    # WHEN it is planned
    plan_job(world.deps, "j")
    # THEN it failed naming the setting, and nothing was stored to harvest
    job = world.store.get("j")
    assert job.status is JobStatus.FAILED
    assert "HARVEST_MAX_PLAN_TASKS" in job.err_message
    assert job.chunks_total == 0


def test_an_endpoint_removed_from_the_registry_fails_the_job(world: World) -> None:
    # GIVEN a job whose channel lost its endpoint after the job was created (a registry reload)
    world.create("j", BASE + 20, BASE + 40)
    world.deps.registry.channels["demo"].endpoints.clear()
    # WHEN it is planned
    plan_job(world.deps, "j")
    # THEN it failed saying it cannot plan, naming the endpoint
    job = world.store.get("j")
    assert job.status is JobStatus.FAILED
    assert job.err_message.startswith("cannot plan: ")
    assert "'hls'" in job.err_message
    assert world.origin.requests == []


def test_a_plan_stored_meanwhile_by_another_delivery_is_kept_and_not_queued_again(world: World) -> None:
    # GIVEN a job whose plan message is delivered twice, the second delivery planning while the
    # first one reads the playlist
    world.create("j", BASE + 20, BASE + 40)
    world.take_published()
    others: list[str] = []

    def other_delivery() -> None:
        if not others:
            others.append("planning")
            plan_job(world.deps, "j")

    world.origin.serve(PLAYLIST_URL, live_playlist(100), during=other_delivery)
    # WHEN the first delivery plans
    plan_job(world.deps, "j")
    # THEN the other delivery's plan stands, and its chunk message was queued once only
    assert others == ["planning"]
    assert world.store.get("j").chunks_total == 1
    assert world.take_published() == [chunk_message("j", 0)]


def test_a_malformed_tag_outside_the_window_plans_with_a_warning_kept_and_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a live playlist with a broken DATERANGE on segment 1, long before the window
    lines = live_playlist(100).splitlines()
    broken = '#EXT-X-DATERANGE:ID="bad",START-DATE="yesterday"'
    lines.insert(lines.index(f"#EXT-X-PROGRAM-DATE-TIME:{format_date(BASE + SEGMENT_SECONDS)}"), broken)
    world.origin.serve(PLAYLIST_URL, "\n".join(lines) + "\n")
    world.create("j", BASE + 20, BASE + 40)
    # WHEN it is planned
    with caplog.at_level(logging.WARNING, logger="harvest.usecases.harvest"):
        plan_job(world.deps, "j")
    # THEN the job is harvesting, and the warning (naming the tag) is on the job and in the log
    job = world.store.get("j")
    assert job.phase is Phase.HARVESTING
    assert len(job.extra["warnings"]) == 1
    assert "START-DATE 'yesterday' is not valid (outside the window, ignored)" in job.extra["warnings"][0]
    assert [r.getMessage() for r in caplog.records] == [f"playlist warning: {job.extra['warnings'][0]}"]
