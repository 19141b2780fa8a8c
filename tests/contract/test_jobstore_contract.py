"""SqlJobStore against ports.JobStore, on SQLite and PostgreSQL (see conftest's `db` fixture)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import pytest
from tests.support.tasks import download_task

from harvest.adapters.sql.db import Database, Transaction
from harvest.adapters.sql.jobstore import SqlJobStore
from harvest.adapters.sql.schema import MIGRATIONS, migrate, schema_version
from harvest.domain.download import DownloadTask
from harvest.domain.job import (
    CallbackClaim,
    HarvestJob,
    JobStatus,
    Message,
    Phase,
    chunk_message,
    finalize_message,
    plan_message,
)
from harvest.errors import (
    ConfigError,
    InvalidTransition,
    JobAlreadyExists,
    JobNotDeletable,
    JobNotFound,
    StorageError,
)
from harvest.ports import ChunkRecord

MakeJob = Callable[..., HarvestJob]
Concurrently = Callable[[Sequence[Callable[[], Any]]], list[Any]]


@pytest.fixture
def store(db: Database, clock: Callable[[], float]) -> SqlJobStore:
    return SqlJobStore(db, clock=clock)


def _outbox_bodies(store: SqlJobStore) -> list[dict[str, Any]]:
    return [message.body for _, message in store.pending_outbox(1000)]


def _planned(store: SqlJobStore, make_job: MakeJob, job_id: str, chunks: int) -> None:
    store.create(make_job(job_id), [])
    tasks = [[download_task(f"https://origin.invalid/{job_id}/{n}.ts", 100)] for n in range(chunks)]
    assert store.save_plan(job_id, {"renditions": 1}, tasks, chunks, [])


# --- create, get, list ------------------------------------------------------------------------


def test_created_job_reads_back_unchanged_with_its_outbox(store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN a new job and its plan message
    job = make_job("job-1")
    # WHEN it is created
    store.create(job, [plan_message("job-1")])
    # THEN it reads back field for field, and the message waits in the outbox
    assert store.get("job-1") == job
    assert [message for _, message in store.pending_outbox(10)] == [plan_message("job-1")]


def test_get_unknown_job_raises_not_found(store: SqlJobStore) -> None:
    with pytest.raises(JobNotFound, match="nope"):
        store.get("nope")


def test_list_orders_by_create_time_then_id_and_pages(store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN jobs created out of order, two sharing a create time
    for job_id, created in [("c", 30), ("b", 10), ("a", 20), ("a2", 10)]:
        store.create(make_job(job_id, create_time=created), [])
    # WHEN listed in pages of two
    first = store.list(None, 0, 2)
    second = store.list(None, 2, 2)
    beyond = store.list(None, 4, 2)
    # THEN the order is (create_time, id), stable across pages, with the full total each time
    assert [job.id for job in first.jobs + second.jobs] == ["a2", "b", "a", "c"]
    assert (first.total, second.total, beyond.total, beyond.jobs) == (4, 4, 4, [])


def test_list_filters_by_channel(store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN jobs on two channels
    store.create(make_job("x1", channel_name="x", create_time=2), [])
    store.create(make_job("y1", channel_name="y", create_time=1), [])
    store.create(make_job("x2", channel_name="x", create_time=1), [])
    # WHEN one channel is listed
    page = store.list("x", 0, 10)
    # THEN only its jobs count and show
    assert ([job.id for job in page.jobs], page.total) == (["x2", "x1"], 2)
    assert store.list("none", 0, 10).total == 0


def test_duplicate_id_is_refused_and_changes_nothing(store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN a job
    store.create(make_job("dup"), [plan_message("dup")])
    # WHEN another job with the same ID is created
    with pytest.raises(JobAlreadyExists, match="dup"):
        store.create(make_job("dup", channel_name="other"), [plan_message("dup")])
    # THEN the first job and its single message are untouched
    assert store.get("dup").channel_name == "channel-a"
    assert len(store.pending_outbox(10)) == 1


def test_concurrent_duplicate_creates_make_exactly_one_job_per_id(
    store: SqlJobStore, make_job: MakeJob, concurrently: Concurrently
) -> None:
    # GIVEN 200 creates over 50 IDs, all started at once
    calls = [
        lambda n=n: store.create(make_job(f"job-{n % 50}"), [plan_message(f"job-{n % 50}")])
        for n in range(200)
    ]
    # WHEN they race
    outcomes = concurrently(calls)
    # THEN the database kept 50 jobs and 50 messages; the other 150 were told the ID exists
    assert sum(isinstance(outcome, JobAlreadyExists) for outcome in outcomes) == 150
    assert [
        outcome for outcome in outcomes if outcome is not None and not isinstance(outcome, JobAlreadyExists)
    ] == []
    assert store.list(None, 0, 100).total == 50
    assert len(store.pending_outbox(1000)) == 50


def test_create_is_atomic_with_its_outbox(
    store: SqlJobStore, make_job: MakeJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a database that fails while writing the outbox, after the job row went in
    real_execute = Transaction.execute

    def failing_execute(self: Transaction, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if sql.startswith("INSERT INTO outbox"):
            raise StorageError("injected outbox failure")
        return real_execute(self, sql, params)

    monkeypatch.setattr(Transaction, "execute", failing_execute)
    # WHEN a job is created
    with pytest.raises(StorageError, match="injected"):
        store.create(make_job("atomic"), [plan_message("atomic")])
    monkeypatch.undo()
    # THEN neither the job nor its message exists
    with pytest.raises(JobNotFound):
        store.get("atomic")
    assert store.pending_outbox(10) == []


# --- delete ---------------------------------------------------------------------------------------


def test_delete_removes_finished_jobs_with_plan_and_chunks(store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN a planned job that completed, and a failed one
    _planned(store, make_job, "done", chunks=2)
    store.finish("done", JobStatus.COMPLETED)
    store.create(make_job("failed"), [])
    store.finish("failed", JobStatus.FAILED, "origin gone")
    # WHEN both are deleted (one named twice)
    store.delete(["done", "failed", "done"])
    # THEN the jobs, the plan and the chunks are gone
    assert store.list(None, 0, 10).total == 0
    with pytest.raises(JobNotFound):
        store.get_plan("done")
    with pytest.raises(JobNotFound):
        store.get_chunk("done", 0)


def test_delete_refuses_running_job_and_deletes_nothing(store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN a completed job and a running one
    store.create(make_job("finished"), [])
    store.finish("finished", JobStatus.COMPLETED)
    store.create(make_job("running"), [])
    # WHEN both are deleted in one request
    with pytest.raises(JobNotDeletable, match="running"):
        store.delete(["finished", "running"])
    # THEN the batch failed as a whole: the completed job is still there
    assert store.get("finished").status is JobStatus.COMPLETED
    assert store.get("running").status is JobStatus.RUNNING


def test_delete_with_unknown_id_names_it_and_deletes_nothing(store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN one completed job
    store.create(make_job("known"), [])
    store.finish("known", JobStatus.FAILED, "x")
    # WHEN it is deleted together with an unknown ID
    with pytest.raises(JobNotFound, match="ghost"):
        store.delete(["known", "ghost"])
    # THEN the known job survives
    assert store.get("known").id == "known"


# --- finish ---------------------------------------------------------------------------------------


def test_finish_moves_running_to_completed_once(
    store: SqlJobStore, make_job: MakeJob, clock: Callable[[], float]
) -> None:
    # GIVEN a running job
    store.create(make_job("fin"), [])
    # WHEN it is finished as Completed with a callback message
    job = store.finish("fin", JobStatus.COMPLETED, outbox=[Message("callback", {"job_id": "fin"}, "fin")])
    # THEN it is Completed, phase done, stamped with the clock, and the message is queued
    assert (job.status, job.phase, job.finished_at, job.updated_at) == (
        JobStatus.COMPLETED,
        Phase.DONE,
        clock(),
        clock(),
    )
    assert store.get("fin") == job
    assert _outbox_bodies(store) == [{"job_id": "fin"}]


def test_finish_of_finished_job_raises_and_writes_nothing(store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN a completed job
    store.create(make_job("fin"), [])
    store.finish("fin", JobStatus.COMPLETED)
    # WHEN a late writer tries to fail it
    with pytest.raises(InvalidTransition):
        store.finish("fin", JobStatus.FAILED, "late", outbox=[Message("callback", {"job_id": "fin"})])
    # THEN the job keeps its status and no message was queued
    job = store.get("fin")
    assert (job.status, job.err_message) == (JobStatus.COMPLETED, "")
    assert store.pending_outbox(10) == []


def test_finish_errors_for_unknown_job_and_for_running_target(store: SqlJobStore, make_job: MakeJob) -> None:
    with pytest.raises(JobNotFound):
        store.finish("ghost", JobStatus.FAILED, "x")
    store.create(make_job("run"), [])
    with pytest.raises(InvalidTransition):
        store.finish("run", JobStatus.RUNNING)


def test_concurrent_finishes_have_exactly_one_winner(
    store: SqlJobStore, make_job: MakeJob, concurrently: Concurrently
) -> None:
    # GIVEN a running job and 20 finishers, half completing it and half failing it
    store.create(make_job("race"), [])
    statuses = [JobStatus.COMPLETED, JobStatus.FAILED] * 10
    calls = [
        lambda status=status: store.finish(
            "race", status, "lost race", [Message("callback", {"s": status.value})]
        )
        for status in statuses
    ]
    # WHEN they race
    outcomes = concurrently(calls)
    # THEN one wrote, every other got InvalidTransition, and only the winner's message was queued
    winners = [outcome for outcome in outcomes if isinstance(outcome, HarvestJob)]
    assert len(winners) == 1
    assert sum(isinstance(outcome, InvalidTransition) for outcome in outcomes) == 19
    assert store.get("race").status is winners[0].status
    assert _outbox_bodies(store) == [{"s": winners[0].status.value}]


# --- plan and chunks -------------------------------------------------------------------------------


def test_save_plan_once(store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN a queued job
    store.create(make_job("p"), [])
    chunks = [[download_task("u0", 10)], [download_task("u1", 20), download_task("u2", 30)]]
    # WHEN it is planned, and a repeated plan message plans it again
    first = store.save_plan(
        "p", {"variants": ["720p"]}, chunks, 3, [chunk_message("p", 0), chunk_message("p", 1)]
    )
    second = store.save_plan("p", {"variants": ["other"]}, [[download_task("x")]], 1, [chunk_message("p", 0)])
    # THEN only the first was stored, with its chunks, totals and messages
    assert (first, second) == (True, False)
    assert store.get_plan("p") == {"variants": ["720p"]}
    job = store.get("p")
    assert (job.phase, job.chunks_total, job.segments_total) == (Phase.HARVESTING, 2, 3)
    assert store.get_chunk("p", 1).tasks == chunks[1]
    assert len(store.pending_outbox(10)) == 2


# A chunk row as an earlier release wrote it, before tasks were typed.
STORED_CHUNK = (
    '[{"url": "http://origin.example/live/main.mp4", "key": "vod/v0/main_0.mp4", "range": [0, 800],'
    ' "size": 800, "name": "v0/main_0.mp4 (bytes 0-799 of main.mp4)", "content_type": "video/mp4",'
    ' "counts": false}]'
)


def test_chunks_are_stored_as_the_json_earlier_releases_wrote_and_read(
    db: Database, store: SqlJobStore, make_job: MakeJob
) -> None:
    # GIVEN a job planned with a chunk an earlier release stored (a rolling upgrade mid-job)
    store.create(make_job("old"), [])
    task = DownloadTask.from_json(json.loads(STORED_CHUNK)[0])
    assert store.save_plan("old", {}, [[task]], 0, [])
    # THEN the row holds the very text the earlier release wrote, and reads back as the same task
    with db.transaction(write=False) as tx:
        [row] = tx.execute("SELECT tasks FROM chunks WHERE job_id = ? AND idx = 0", ("old",))
    assert row["tasks"] == STORED_CHUNK
    assert store.get_chunk("old", 0).tasks == [task]
    assert task.range == (0, 800)
    assert task.counts is False


def test_save_plan_of_finished_job_writes_nothing(store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN a job failed before it was planned
    store.create(make_job("f"), [])
    store.finish("f", JobStatus.FAILED, "cancelled")
    # WHEN a plan arrives late
    planned = store.save_plan("f", {"a": 1}, [[download_task("u")]], 1, [chunk_message("f", 0)])
    # THEN nothing is stored
    assert planned is False
    with pytest.raises(JobNotFound):
        store.get_plan("f")
    assert store.pending_outbox(10) == []
    with pytest.raises(JobNotFound):
        store.save_plan("ghost", {}, [], 0, [])


def test_plan_without_chunks_goes_straight_to_finalizing(store: SqlJobStore, make_job: MakeJob) -> None:
    store.create(make_job("empty"), [])
    assert store.save_plan("empty", {"segments": []}, [], 0, [finalize_message("empty")])
    assert store.get("empty").phase is Phase.FINALIZING


def test_absent_plan_and_chunk_raise_not_found(store: SqlJobStore, make_job: MakeJob) -> None:
    store.create(make_job("q"), [])
    with pytest.raises(JobNotFound):
        store.get_plan("q")
    with pytest.raises(JobNotFound):
        store.get_chunk("q", 0)
    with pytest.raises(JobNotFound):
        store.complete_chunk("q", 0, 1, 1, [])


def test_complete_chunk_counts_once_and_flags_the_last(store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN a job planned in two chunks
    _planned(store, make_job, "c", chunks=2)
    # WHEN chunk 0 completes, is redelivered and completes again, then chunk 1 completes
    first = store.complete_chunk("c", 0, 5, 500, [finalize_message("c")])
    repeat = store.complete_chunk("c", 0, 5, 500, [finalize_message("c")])
    last = store.complete_chunk("c", 1, 7, 700, [finalize_message("c")])
    # THEN only the last call reports True, counters are exact, and one finalize message is queued
    assert (first, repeat, last) == (False, False, True)
    job = store.get("c")
    assert (job.chunks_done, job.segments_done, job.bytes_done, job.phase) == (2, 12, 1200, Phase.FINALIZING)
    tasks = [download_task("https://origin.invalid/c/1.ts", 100)]
    assert store.get_chunk("c", 1) == ChunkRecord("c", 1, tasks, done=True, segments=7, bytes=700)
    assert [message for _, message in store.pending_outbox(10)] == [finalize_message("c")]
    # AND a redelivery of the last chunk does not queue it again
    assert store.complete_chunk("c", 1, 7, 700, [finalize_message("c")]) is False
    assert len(store.pending_outbox(10)) == 1


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_chunk_completions_report_last_exactly_once(
    store: SqlJobStore, make_job: MakeJob, concurrently: Concurrently, round_: int
) -> None:
    # GIVEN a job with 8 chunks, each delivered twice, all completing at once
    _planned(store, make_job, "par", chunks=8)
    calls = [
        lambda index=index: store.complete_chunk("par", index, 10, 1000, [finalize_message("par")])
        for index in list(range(8)) * 2
    ]
    # WHEN they race
    outcomes = concurrently(calls)
    # THEN exactly one call saw the job complete; counters are exact; one finalize was queued
    assert outcomes.count(True) == 1
    assert outcomes.count(False) == 15
    job = store.get("par")
    assert (job.chunks_done, job.segments_done, job.bytes_done) == (8, 80, 8000)
    assert [message for _, message in store.pending_outbox(10)] == [finalize_message("par")]


def test_chunk_completed_after_job_failed_queues_nothing(store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN a one-chunk job the sweeper failed while the chunk ran
    _planned(store, make_job, "late", chunks=1)
    store.finish("late", JobStatus.FAILED, "deadline passed")
    # WHEN the chunk finishes anyway
    last = store.complete_chunk("late", 0, 1, 10, [finalize_message("late")])
    # THEN it is not reported as last and no finalize is queued
    assert last is False
    assert store.get("late").phase is Phase.DONE
    assert store.pending_outbox(10) == []


# --- progress, callback, sweeper, outbox -------------------------------------------------------------


def test_add_progress_feeds_live_counters_not_exact_ones(
    store: SqlJobStore, make_job: MakeJob, clock: Any
) -> None:
    # GIVEN a planned job
    _planned(store, make_job, "prog", chunks=1)
    clock.advance(30)
    # WHEN a running chunk reports progress twice
    store.add_progress("prog", 3, 300)
    store.add_progress("prog", 2, 200)
    # THEN the live counters and updated_at move; the exact counters wait for complete_chunk
    job = store.get("prog")
    assert (job.extra["live_segments"], job.extra["live_bytes"], job.updated_at) == (5, 500, clock())
    assert (job.segments_done, job.bytes_done) == (0, 0)
    assert job.extra["requested_by"] == "contract-test"


def test_record_callback(store: SqlJobStore, make_job: MakeJob) -> None:
    store.create(make_job("cb"), [])
    store.finish("cb", JobStatus.COMPLETED)
    store.record_callback("cb", "delivered: HTTP 200")
    assert store.get("cb").callback_status == "delivered: HTTP 200"
    with pytest.raises(JobNotFound):
        store.record_callback("ghost", "x")


def test_a_callback_is_claimed_once_per_ended_job_and_again_only_when_stale(
    store: SqlJobStore, make_job: MakeJob, clock: Any
) -> None:
    # GIVEN a Running job with a CallbackURL, and one without
    store.create(make_job("cb"), [])
    store.create(dataclasses.replace(make_job("quiet"), callback_url=""), [])
    # WHEN claiming before the end, at the end from two deliverers, and after the outcome
    early = store.claim_callback("cb", stale_after=600)
    store.finish("cb", JobStatus.COMPLETED)
    store.finish("quiet", JobStatus.FAILED, "x")
    first, second = store.claim_callback("cb", 600), store.claim_callback("cb", 600)
    # THEN only the first claim after the end takes it, the second finds it held; a held claim reads
    # back as "no outcome yet"; a job without a CallbackURL has nothing to claim
    assert (early, first, second) == (CallbackClaim.SETTLED, CallbackClaim.TAKEN, CallbackClaim.HELD)
    assert store.get("cb").callback_status == ""
    assert store.claim_callback("quiet", 600) is CallbackClaim.SETTLED
    # AND a claim whose deliverer never reported is taken again once stale, but an outcome is final
    clock.advance(601)
    assert store.claim_callback("cb", 600) is CallbackClaim.TAKEN
    store.record_callback("cb", "delivered: HTTP 200 after 1 attempt")
    clock.advance(601)
    assert store.claim_callback("cb", 600) is CallbackClaim.SETTLED
    assert store.get("cb").callback_status == "delivered: HTTP 200 after 1 attempt"
    with pytest.raises(JobNotFound):
        store.claim_callback("ghost", 600)


def test_running_jobs_lists_only_stale_running_ones(
    store: SqlJobStore, make_job: MakeJob, clock: Any
) -> None:
    # GIVEN a stale running job, a fresh running job and a stale finished job
    store.create(make_job("stale", create_time=100), [])
    store.create(make_job("fresh", create_time=100), [])
    store.create(make_job("over", create_time=100), [])
    store.finish("over", JobStatus.FAILED, "x")
    store.add_progress("fresh", 1, 1)  # updated_at = clock(), far after 100
    # WHEN the sweeper asks for jobs not updated since 1000
    stale = store.running_jobs(updated_before=1000)
    # THEN only the stale running job is returned
    assert [job.id for job in stale] == ["stale"]


def test_outbox_is_oldest_first_limited_and_deletable(store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN three messages queued by two writes
    store.create(make_job("o"), [plan_message("o")])
    store.save_plan(
        "o",
        {},
        [[download_task("a")], [download_task("b")]],
        2,
        [chunk_message("o", 0), chunk_message("o", 1)],
    )
    # WHEN read two at a time and the first batch deleted
    batch = store.pending_outbox(2)
    store.delete_outbox([outbox_id for outbox_id, _ in batch])
    # THEN order was kept and only the third remains
    assert [message for _, message in batch] == [plan_message("o"), chunk_message("o", 0)]
    assert [message for _, message in store.pending_outbox(10)] == [chunk_message("o", 1)]


# --- schema and database ---------------------------------------------------------------------------


def test_migrate_twice_is_a_no_op(db: Database, store: SqlJobStore, make_job: MakeJob) -> None:
    # GIVEN a migrated database holding a job
    store.create(make_job("kept"), [])
    # WHEN the migrations run again
    applied = migrate(db)
    # THEN nothing was applied, the version is the latest, and the job is still there
    assert applied == []
    assert schema_version(db) == MIGRATIONS[-1].version
    assert store.get("kept").id == "kept"


def test_processes_starting_at_once_migrate_once(db_url: str, concurrently: Concurrently) -> None:
    # GIVEN an empty database location
    # WHEN four "processes" open it at the same moment
    outcomes = concurrently([lambda: Database.connect(db_url, pool_size=2) for _ in range(4)])
    # THEN all opened it and the migrations were recorded once
    assert all(isinstance(outcome, Database) for outcome in outcomes), outcomes
    with outcomes[0].transaction(write=False) as tx:
        versions = tx.execute("SELECT version FROM schema_version ORDER BY version")
    assert [row["version"] for row in versions] == [migration.version for migration in MIGRATIONS]
    for database in outcomes:
        database.close()


def test_reopened_database_keeps_jobs(db_url: str, make_job: MakeJob) -> None:
    # GIVEN a job written through one Database
    first = Database.connect(db_url)
    SqlJobStore(first).create(make_job("persisted"), [plan_message("persisted")])
    first.close()
    # WHEN the database is opened again (a restart)
    second = Database.connect(db_url)
    store = SqlJobStore(second)
    # THEN the job and its pending message are there
    assert store.get("persisted") == make_job("persisted")
    assert [message for _, message in store.pending_outbox(10)] == [plan_message("persisted")]
    second.close()


def test_placeholders_and_percent_signs_survive_translation(db: Database) -> None:
    with db.transaction(write=False) as tx:
        rows = tx.execute("SELECT ? || '%' AS value", ("50",))
    assert rows == [{"value": "50%"}]


def test_postgres_connection_killed_while_idle_is_replaced(
    db: Database, store: SqlJobStore, make_job: MakeJob
) -> None:
    if not db.is_postgres:
        pytest.skip("PostgreSQL only: SQLite has no server connection to lose")
    # GIVEN the server killed the (single, idle) pooled connection
    store.create(make_job("before"), [])
    with db.transaction(write=False) as tx:
        pid = tx.execute("SELECT pg_backend_pid() AS pid")[0]["pid"]
    with psycopg.connect(db.url.split("?")[0], autocommit=True) as admin:
        killed = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    assert killed == (True,)
    # WHEN the store is used again
    job = store.get("before")
    # THEN it reconnected transparently, on a new server process
    assert job.id == "before"
    with db.transaction(write=False) as tx:
        assert tx.execute("SELECT pg_backend_pid() AS pid")[0]["pid"] != pid


def test_bad_urls_are_config_errors() -> None:
    for url in (
        "mysql://localhost/x",
        "sqlite://relative",
        "sqlite:///:memory:",
        "postgresql://h/db?schema=a;b",
    ):
        with pytest.raises(ConfigError):
            Database.connect(url)


def test_postgres_scheme_alias_and_relative_sqlite_path(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the same location spelt the other way (postgres://, or a path relative to the cwd)
    if db_url.startswith("postgresql://"):
        url = "postgres://" + db_url.removeprefix("postgresql://")
    else:
        path = db_url.removeprefix("sqlite:///")
        monkeypatch.chdir(path.rsplit("/", 1)[0])
        url = "sqlite:///nested/relative.db"
    # WHEN it is opened
    database = Database.connect(url)
    # THEN it works like any other
    store = SqlJobStore(database)
    store.create(HarvestJob("alias", "c", "e", "epoch", "1", "2", 1.0, 2.0, "d", "m", "", "id", "r", 1), [])
    assert store.get("alias").channel_name == "c"
    database.close()
