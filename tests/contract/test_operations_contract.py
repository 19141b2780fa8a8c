"""SqlOperations (ports.Operations) and the operator use cases, on SQLite and PostgreSQL.

What `harvest admin` and /metrics read: dead letters with their last error, replay, stuck jobs,
queue depth and age per topic, jobs per status and phase; and the dead-letter hold of `harvest serve`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.tasks import download_task
from tests.support.unused_ports import UnusedNotifier, UnusedObjectStore, UnusedOrigin

from harvest.adapters.relay import OutboxRelay
from harvest.adapters.sql.db import Database
from harvest.adapters.sql.jobstore import SqlJobStore
from harvest.adapters.sql.operations import SqlOperations
from harvest.adapters.sql.queue import SqlQueue
from harvest.domain.job import (
    TOPIC_FINALIZE,
    TOPIC_WORK,
    HarvestJob,
    JobStatus,
    chunk_message,
    finalize_message,
    plan_message,
)
from harvest.domain.registry import Registry
from harvest.settings import Settings
from harvest.usecases.download_pool import DownloadPool
from harvest.usecases.harvest import HarvestDeps
from harvest.usecases.operations import fail_held_jobs, replay, stuck_jobs

LEASE = 60.0


@pytest.fixture
def queue(db: Database, clock: Any) -> SqlQueue:
    return SqlQueue(db, max_attempts=2, clock=clock)


@pytest.fixture
def store(db: Database, clock: Any) -> SqlJobStore:
    return SqlJobStore(db, clock=clock)


@pytest.fixture
def ops(db: Database, clock: Any) -> SqlOperations:
    return SqlOperations(db, clock=clock)


def kill(queue: SqlQueue, error: str) -> int:
    """Lease the next message and give it back with `error` until it is dead; its ID."""
    while True:
        (delivery,) = queue.receive(1, LEASE)
        if queue.nack(delivery.id, error, 0.0):
            return delivery.id


def test_dead_letters_are_listed_per_job_with_their_last_error(queue: SqlQueue, ops: SqlOperations) -> None:
    # GIVEN chunk 3 of job a and the plan of job b dead-lettered, and a live message of job a
    queue.publish([chunk_message("a", 3)])
    first = kill(queue, "cannot write vod/a/1.ts: [Errno 28] No space left on device")
    queue.publish([plan_message("b")])
    second = kill(queue, "database is locked")
    queue.publish([finalize_message("a")])
    # WHEN an operator lists them
    every = ops.dead_letters()
    of_a = ops.dead_letters("a")
    # THEN each names its job, step, attempts and last error; a job filter keeps only that job's
    assert [(d.id, d.job_id, d.step, d.topic, d.attempts) for d in every] == [
        (first, "a", "chunk 3", TOPIC_WORK, 2),
        (second, "b", "plan step", TOPIC_WORK, 2),
    ]
    assert [d.error for d in of_a] == ["cannot write vod/a/1.ts: [Errno 28] No space left on device"]
    assert ops.dead_letters("nobody") == []


def test_replay_makes_dead_letters_deliverable_again_with_fresh_attempts(
    queue: SqlQueue, ops: SqlOperations
) -> None:
    # GIVEN two dead letters
    queue.publish([chunk_message("a", 0)])
    one = kill(queue, "boom")
    queue.publish([chunk_message("a", 1)])
    two = kill(queue, "boom")
    assert queue.receive(5, LEASE) == []
    # WHEN one is replayed by ID (with an unknown ID beside it)
    replayed = ops.replay([one, 999_999])
    # THEN only it comes back, on its first attempt again, and the other stays dead
    assert [d.id for d in replayed] == [one]
    (delivery,) = queue.receive(5, LEASE)
    assert (delivery.id, delivery.attempts, delivery.message) == (one, 1, chunk_message("a", 0))
    assert [d.id for d in ops.dead_letters()] == [two]
    # AND replaying all brings back the rest; replaying again finds nothing
    assert [d.id for d in ops.replay(None)] == [two]
    assert ops.replay(None) == []
    assert ops.replay([two]) == []
    assert queue.counts() == {"ready": 1, "leased": 1, "dead": 0}


def test_queue_state_per_topic_gives_depth_age_and_dead(
    queue: SqlQueue, ops: SqlOperations, clock: Any
) -> None:
    # GIVEN an empty queue
    assert ops.topics(clock()) == []
    # WHEN messages wait, one is leased, and 30 s pass
    queue.publish([plan_message("a"), chunk_message("b", 0)])
    clock.advance(10)
    queue.publish([finalize_message("c")])
    queue.receive(1, LEASE)  # leases the plan message
    queue.publish([chunk_message("d", 0)])
    clock.advance(20)
    # THEN each topic counts ready, leased and dead, and the oldest unfinished message's age
    finalize, work = ops.topics(clock())  # by topic name
    assert (work.topic, work.ready, work.leased, work.dead, work.oldest_age) == (TOPIC_WORK, 2, 1, 0, 30.0)
    assert (finalize.topic, finalize.ready, finalize.leased, finalize.oldest_age) == (
        TOPIC_FINALIZE,
        1,
        0,
        20.0,
    )


def test_job_counts_and_ping(
    store: SqlJobStore, ops: SqlOperations, make_job: Callable[..., HarvestJob]
) -> None:
    # GIVEN two Running jobs and one Failed
    for job_id in ("a", "b", "c"):
        store.create(make_job(job_id), [])
    store.finish("c", JobStatus.FAILED, "x")
    # THEN jobs are counted per status and phase, and the database answers a ping
    assert ops.job_counts() == {("Running", "queued"): 2, ("Failed", "done"): 1}
    ops.ping()


def _deps(store: SqlJobStore, queue: SqlQueue, clock: Any) -> HarvestDeps:
    # Only the store, queue and clock are used by these use cases (the jobs have no CallbackURL).
    return HarvestDeps(
        settings=Settings(),
        registry=Registry(channels={}),
        store=store,
        queue=queue,
        relay=OutboxRelay(store, queue),
        objects=UnusedObjectStore(),
        origin=UnusedOrigin(),
        notifier=UnusedNotifier(),
        downloads=DownloadPool(1),  # never downloads
        clock=clock,
    )


def test_stuck_jobs_show_idle_time_and_last_error(
    store: SqlJobStore, queue: SqlQueue, ops: SqlOperations, clock: Any, make_job: Callable[..., HarvestJob]
) -> None:
    # GIVEN job a idle for 20 min with a dead chunk, job b idle for 5 min, job c Completed long ago
    store.create(make_job("a", create_time=int(clock())).replace(updated_at=clock()), [])
    queue.publish([chunk_message("a", 2)])
    kill(queue, "cannot write: disk full")
    clock.advance(15 * 60)
    store.create(make_job("b", create_time=int(clock())).replace(updated_at=clock()), [])
    store.create(make_job("c", create_time=int(clock())).replace(updated_at=clock()), [])
    store.finish("c", JobStatus.COMPLETED)
    clock.advance(5 * 60)
    # WHEN an operator asks for jobs idle for 10 minutes, then for 1 minute
    ten = stuck_jobs(store, ops, 600, clock())
    one = stuck_jobs(store, ops, 60, clock())
    # THEN only Running jobs idle that long appear, longest first, with the queue's last error
    assert [(s.job.id, s.idle_seconds, s.last_error) for s in ten] == [
        ("a", 1200.0, "cannot write: disk full")
    ]
    assert [(s.job.id, s.last_error) for s in one] == [("a", "cannot write: disk full"), ("b", "")]


def test_a_dead_letter_holds_its_job_until_the_hold_runs_out_then_fails_it(
    store: SqlJobStore, queue: SqlQueue, ops: SqlOperations, clock: Any, make_job: Callable[..., HarvestJob]
) -> None:
    # GIVEN a Running job whose chunk 0 was dead-lettered
    store.create(make_job("held", create_time=int(clock())).replace(updated_at=clock(), callback_url=""), [])
    queue.publish([chunk_message("held", 0)])
    kill(queue, "cannot write vod/0.ts: No space left on device")
    deps = _deps(store, queue, clock)
    # WHEN the hold (1 h) has not run out
    clock.advance(3599)
    # THEN the job stays Running, waiting for a replay
    assert fail_held_jobs(deps, ops, 3600) == []
    assert store.get("held").status is JobStatus.RUNNING
    # AND once it has, the job fails naming the step, the attempts and the error
    clock.advance(2)
    assert fail_held_jobs(deps, ops, 3600) == ["held"]
    job = store.get("held")
    assert job.status is JobStatus.FAILED
    assert (
        job.err_message
        == "chunk 0 could not be done after 2 attempts: cannot write vod/0.ts: No space left on device"
    )


def test_replaying_a_job_without_dead_letters_queues_its_unfinished_steps(
    store: SqlJobStore, queue: SqlQueue, ops: SqlOperations, clock: Any, make_job: Callable[..., HarvestJob]
) -> None:
    # GIVEN a planned job with 3 chunks, chunk 1 done, and no message left for it (as after CKafka gave up)
    store.create(make_job("lost", create_time=int(clock())).replace(callback_url=""), [])
    store.save_plan(
        "lost", {"plan": 1}, [[download_task("k0")], [download_task("k1")], [download_task("k2")]], 3, []
    )
    store.complete_chunk("lost", 1, 1, 10, [])
    # WHEN an operator replays the job
    result = replay(store, queue, ops, job_id="lost")
    # THEN chunks 0 and 2 are queued again, and nothing else
    assert result.replayed == []
    assert result.requeued == 2
    assert [d.message for d in queue.receive(10, LEASE)] == [
        chunk_message("lost", 0),
        chunk_message("lost", 2),
    ]
    # AND a job with dead letters gets those back instead
    queue.publish([chunk_message("other", 4)])
    store.create(make_job("other", create_time=int(clock())).replace(callback_url=""), [])
    dead = kill(queue, "boom")
    again = replay(store, queue, ops, job_id="other")
    assert [d.id for d in again.replayed] == [dead]
    assert again.requeued == 0


def test_the_admin_commands_work_on_either_database(
    db: Database,
    db_url: str,
    store: SqlJobStore,
    queue: SqlQueue,
    make_job: Callable[..., HarvestJob],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from harvest.cli.main import main as harvest_main

    def admin(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = harvest_main(["admin", *args, "--database-url", db_url])
        return code, capsys.readouterr().out

    # GIVEN a Running job whose chunk 1 is dead-lettered, on this backend
    store.create(make_job("cli-job", create_time=1).replace(updated_at=1.0), [])
    queue.publish([chunk_message("cli-job", 1)])
    dead = kill(queue, "cannot write: disk full")
    # WHEN an operator runs the three commands against it
    code, stuck = admin("stuck", "--minutes", "1", "--json")
    assert code == 0
    assert [(j["ID"], j["Phase"], j["LastError"]) for j in json.loads(stuck)] == [
        ("cli-job", "queued", "cannot write: disk full")
    ]
    code, letters = admin("dead-letters", "--job", "cli-job")
    header, row = letters.splitlines()[:2]
    assert code == 0
    assert header.split()[:5] == ["ID", "JOB", "STEP", "TOPIC", "ATTEMPTS"]
    assert row.split()[:6] == [str(dead), "cli-job", "chunk", "1", "work", "2"]
    assert row.endswith("cannot write: disk full")
    code, replayed = admin("replay", str(dead))
    # THEN the dead letter is back on the queue, and a second replay finds nothing to do
    assert code == 0
    assert replayed.strip() == f"replayed {dead}: job cli-job chunk 1"
    assert queue.counts()["ready"] == 1
    assert admin("replay", str(dead))[0] == 1
    code, none = admin("dead-letters")
    assert code == 0
    assert none.strip() == "no dead letters"
