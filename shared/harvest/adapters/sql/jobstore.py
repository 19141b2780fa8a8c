"""JobStore on SQL: jobs, plans, chunks and the outbox, each change in one transaction.

Every state change is a conditional write (`UPDATE ... WHERE <expected state>`) whose row count says
whether this caller won, so concurrent or repeated messages cannot apply a change twice.

Progress counters, and why they cannot double count:
- `chunks_done`, `segments_done` and `bytes_done` on HarvestJob are exact: they are advanced only
  by `complete_chunk`, in the transaction that flips the chunk's `done` flag from 0 to 1, so a
  redelivered chunk adds nothing.
- `add_progress` feeds separate best-effort counters (`live_segments`, `live_bytes`) for progress
  bars while a chunk runs. A redelivered chunk counts its downloads again there. They are exposed
  as `job.extra["live_segments"]` and `job.extra["live_bytes"]` once non-zero.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harvest.adapters.sql.db import Database, DuplicateKey, Row, Transaction, placeholders
from harvest.domain.download import DownloadTask
from harvest.domain.job import CallbackClaim, HarvestJob, JobStatus, Message, Phase, check_transition
from harvest.errors import InvalidTransition, JobAlreadyExists, JobNotDeletable, JobNotFound
from harvest.ports import ChunkRecord, JobPage

TASKS_IN_CHUNKS = "tasks_in_chunks"  # engine.plan.TASKS_IN_CHUNKS: the adapter imports no engine

LIVE_KEYS = ("live_segments", "live_bytes")  # read-only keys merged into HarvestJob.extra

_JOB_COLUMNS = (
    "id",
    "channel_name",
    "endpoint_name",
    "time_format",
    "start_time",
    "end_time",
    "start_epoch",
    "end_epoch",
    "destination",
    "manifest",
    "callback_url",
    "channel_id",
    "region",
    "create_time",
    "status",
    "err_message",
    "phase",
    "chunks_total",
    "chunks_done",
    "segments_total",
    "segments_done",
    "bytes_done",
    "updated_at",
    "finished_at",
    "callback_status",
    "extra",
)
_INSERT_JOB = f"INSERT INTO jobs ({', '.join(_JOB_COLUMNS)}) VALUES ({placeholders(len(_JOB_COLUMNS))})"
_SELECT_JOB = f"SELECT {', '.join(_JOB_COLUMNS)}, live_segments, live_bytes FROM jobs"
_INSERT_OUTBOX = "INSERT INTO outbox (topic, key, body, created_at) VALUES (?, ?, ?, ?)"
_BATCH = 500  # ids per IN (...) list, well under every driver's parameter limit


def _job_row(job: HarvestJob) -> tuple[Any, ...]:
    extra = {key: value for key, value in job.extra.items() if key not in LIVE_KEYS}
    values = {column: getattr(job, column) for column in _JOB_COLUMNS if column != "extra"}
    values["status"] = job.status.value
    values["phase"] = job.phase.value
    values["extra"] = json.dumps(extra, sort_keys=True)
    return tuple(values[column] for column in _JOB_COLUMNS)


# callback_status while a delivery is claimed but has no outcome yet; read back as "" (none yet).
_CALLBACK_CLAIMED = "claimed"


def _job_from_row(row: Row) -> HarvestJob:
    fields = {column: row[column] for column in _JOB_COLUMNS}
    if fields["callback_status"] == _CALLBACK_CLAIMED:
        fields["callback_status"] = ""
    extra = json.loads(fields.pop("extra"))
    # Only once add_progress has counted something, so a fresh job reads back equal to what was created.
    extra.update({key: int(row[key]) for key in LIVE_KEYS if row[key]})
    fields["status"] = JobStatus(fields["status"])
    fields["phase"] = Phase(fields["phase"])
    return HarvestJob(**fields, extra=extra)


def _batches(ids: Sequence[Any]) -> list[Sequence[Any]]:
    return [ids[start : start + _BATCH] for start in range(0, len(ids), _BATCH)]


class SqlJobStore:
    """ports.JobStore on a Database (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    # --- jobs -----------------------------------------------------------------------------------

    def create(self, job: HarvestJob, outbox: Sequence[Message]) -> None:
        try:
            with self._db.transaction() as tx:
                # The primary key decides duplicates, so two racing creates cannot both succeed.
                tx.execute(_INSERT_JOB, _job_row(job))
                self._queue_outbox(tx, outbox)
        except DuplicateKey as exc:
            raise JobAlreadyExists(f"harvest job {job.id} already exists") from exc

    def get(self, job_id: str) -> HarvestJob:
        with self._db.transaction(write=False) as tx:
            return self._get(tx, job_id)

    def list(self, channel_name: str | None, offset: int, limit: int) -> JobPage:
        where, params = ("WHERE channel_name = ?", (channel_name,)) if channel_name is not None else ("", ())
        with self._db.transaction(write=False) as tx:
            total = tx.execute(f"SELECT COUNT(*) AS n FROM jobs {where}", params)[0]["n"]
            rows = tx.execute(
                f"{_SELECT_JOB} {where} ORDER BY create_time, id LIMIT ? OFFSET ?", (*params, limit, offset)
            )
        return JobPage([_job_from_row(row) for row in rows], int(total))

    def delete(self, job_ids: Sequence[str]) -> None:
        unique_ids = builtins.list(dict.fromkeys(job_ids))
        with self._db.transaction() as tx:
            statuses: dict[str, str] = {}
            for batch in _batches(unique_ids):
                rows = tx.execute(
                    f"SELECT id, status FROM jobs WHERE id IN ({placeholders(len(batch))})", batch
                )
                statuses.update({row["id"]: row["status"] for row in rows})
            # Checked before anything is deleted: the whole request fails or none of it does.
            for job_id in unique_ids:
                if job_id not in statuses:
                    raise JobNotFound(f"harvest job {job_id} not found")
            for job_id in unique_ids:
                if statuses[job_id] == JobStatus.RUNNING.value:
                    raise JobNotDeletable(f"harvest job {job_id} is Running; only Completed or Failed jobs")
            for batch in _batches(unique_ids):
                # Plans and chunks go with their job (ON DELETE CASCADE).
                tx.execute(f"DELETE FROM jobs WHERE id IN ({placeholders(len(batch))})", batch)

    def finish(
        self, job_id: str, status: JobStatus, err_message: str = "", outbox: Sequence[Message] = ()
    ) -> HarvestJob:
        check_transition(JobStatus.RUNNING, status)
        now = self._clock()
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE jobs SET status = ?, err_message = ?, phase = ?, finished_at = ?, updated_at = ?"
                " WHERE id = ? AND status = ?",
                (status.value, err_message, Phase.DONE.value, now, now, job_id, JobStatus.RUNNING.value),
            )
            if tx.rowcount == 0:
                current = self._get(tx, job_id).status
                check_transition(current, status)
                raise InvalidTransition(f"harvest job {job_id} is {current.value}, not Running")
            self._queue_outbox(tx, outbox)
            return self._get(tx, job_id)

    def claim_callback(self, job_id: str, stale_after: float) -> CallbackClaim:
        now = self._clock()
        claimed = _CALLBACK_CLAIMED
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE jobs SET callback_status = ?, updated_at = ?"
                " WHERE id = ? AND status <> ? AND callback_url <> ''"
                " AND (callback_status = '' OR (callback_status = ? AND updated_at < ?))",
                (claimed, now, job_id, JobStatus.RUNNING.value, claimed, now - stale_after),
            )
            if tx.rowcount == 1:
                return CallbackClaim.TAKEN
            rows = tx.execute(
                "SELECT status, callback_url, callback_status FROM jobs WHERE id = ?", (job_id,)
            )
        if not rows:
            raise JobNotFound(f"harvest job {job_id} not found")
        row = rows[0]
        ended = row["status"] != JobStatus.RUNNING.value
        held = ended and bool(row["callback_url"]) and row["callback_status"] == claimed
        return CallbackClaim.HELD if held else CallbackClaim.SETTLED

    def record_callback(self, job_id: str, outcome: str) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE jobs SET callback_status = ?, updated_at = ? WHERE id = ?",
                (outcome, self._clock(), job_id),
            )
            if tx.rowcount == 0:
                raise JobNotFound(f"harvest job {job_id} not found")

    def running_jobs(self, updated_before: float) -> builtins.list[HarvestJob]:
        with self._db.transaction(write=False) as tx:
            rows = tx.execute(
                f"{_SELECT_JOB} WHERE status = ? AND updated_at < ? ORDER BY updated_at, id",
                (JobStatus.RUNNING.value, updated_before),
            )
        return [_job_from_row(row) for row in rows]

    # --- plan and chunks ------------------------------------------------------------------------

    def save_plan(
        self,
        job_id: str,
        plan: Mapping[str, Any],
        chunks: Sequence[Sequence[DownloadTask]],
        segments_total: int,
        outbox: Sequence[Message],
    ) -> bool:
        # A plan without chunks has nothing to harvest: the job goes straight to finalizing.
        phase = Phase.HARVESTING if chunks else Phase.FINALIZING
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE jobs SET phase = ?, chunks_total = ?, segments_total = ?, updated_at = ?"
                " WHERE id = ? AND status = ? AND phase = ?",
                (
                    phase.value,
                    len(chunks),
                    segments_total,
                    self._clock(),
                    job_id,
                    JobStatus.RUNNING.value,
                    Phase.QUEUED.value,
                ),
            )
            if tx.rowcount == 0:
                self._get(tx, job_id)  # JobNotFound when there is no such job
                return False  # planned already, or no longer Running
            if plan.get("warnings"):
                # Kept on the job too, so progress shows them without reading the (large) plan.
                extra = json.loads(tx.execute("SELECT extra FROM jobs WHERE id = ?", (job_id,))[0]["extra"])
                extra["warnings"] = list(plan["warnings"])
                tx.execute(
                    "UPDATE jobs SET extra = ? WHERE id = ?", (json.dumps(extra, sort_keys=True), job_id)
                )
            tx.execute("INSERT INTO plans (job_id, plan) VALUES (?, ?)", (job_id, json.dumps(plan)))
            # One chunk's JSON at a time: a 24 h plan's chunks are tens of MB of text in all.
            tx.executemany(
                "INSERT INTO chunks (job_id, idx, tasks) VALUES (?, ?, ?)",
                ((job_id, index, _tasks_json(tasks)) for index, tasks in enumerate(chunks)),
            )
            self._queue_outbox(tx, outbox)
        return True

    def get_plan(self, job_id: str, with_tasks: bool = True) -> dict[str, Any]:
        with self._db.transaction(write=False) as tx:
            rows = tx.execute("SELECT plan FROM plans WHERE job_id = ?", (job_id,))
            if not rows:
                raise JobNotFound(f"harvest job {job_id} has no plan")
            plan: dict[str, Any] = json.loads(rows[0]["plan"])
            if not with_tasks:
                plan.pop("tasks", None)
            elif plan.get(TASKS_IN_CHUNKS):
                chunks = tx.execute("SELECT tasks FROM chunks WHERE job_id = ? ORDER BY idx", (job_id,))
                plan["tasks"] = [task for row in chunks for task in json.loads(row["tasks"])]
        return plan

    def get_chunk(self, job_id: str, index: int) -> ChunkRecord:
        with self._db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT tasks, done, segments, bytes FROM chunks WHERE job_id = ? AND idx = ?",
                (job_id, index),
            )
        if not rows:
            raise JobNotFound(f"harvest job {job_id} has no chunk {index}")
        row = rows[0]
        return ChunkRecord(
            job_id,
            index,
            [DownloadTask.from_json(task) for task in json.loads(row["tasks"])],
            bool(row["done"]),
            int(row["segments"]),
            int(row["bytes"]),
        )

    def complete_chunk(
        self, job_id: str, index: int, segments: int, nbytes: int, outbox_if_last: Sequence[Message]
    ) -> bool:
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE chunks SET done = 1, segments = ?, bytes = ?"
                " WHERE job_id = ? AND idx = ? AND done = 0",
                (segments, nbytes, job_id, index),
            )
            if tx.rowcount == 0:
                if not tx.execute(
                    "SELECT 1 AS found FROM chunks WHERE job_id = ? AND idx = ?", (job_id, index)
                ):
                    raise JobNotFound(f"harvest job {job_id} has no chunk {index}")
                return False  # a repeated delivery: this chunk was counted already
            # The job row is the serialisation point: concurrent completions update it one after the
            # other, and only the one that brings chunks_done to chunks_total sees them equal.
            tx.execute(
                "UPDATE jobs SET chunks_done = chunks_done + 1, segments_done = segments_done + ?,"
                " bytes_done = bytes_done + ?, updated_at = ?,"
                " phase = CASE WHEN chunks_done + 1 >= chunks_total AND status = ? AND phase = ? THEN ?"
                " ELSE phase END"
                " WHERE id = ?",
                (
                    segments,
                    nbytes,
                    self._clock(),
                    JobStatus.RUNNING.value,
                    Phase.HARVESTING.value,
                    Phase.FINALIZING.value,
                    job_id,
                ),
            )
            row = tx.execute("SELECT chunks_done, chunks_total, status FROM jobs WHERE id = ?", (job_id,))[0]
            last = row["chunks_done"] == row["chunks_total"] and row["status"] == JobStatus.RUNNING.value
            if last:
                self._queue_outbox(tx, outbox_if_last)
        return bool(last)

    def add_progress(self, job_id: str, segments: int, nbytes: int) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE jobs SET live_segments = live_segments + ?, live_bytes = live_bytes + ?,"
                " updated_at = ? WHERE id = ?",
                (segments, nbytes, self._clock(), job_id),
            )

    # --- outbox ---------------------------------------------------------------------------------

    def pending_outbox(self, limit: int) -> builtins.list[tuple[int, Message]]:
        with self._db.transaction(write=False) as tx:
            rows = tx.execute("SELECT id, topic, key, body FROM outbox ORDER BY id LIMIT ?", (limit,))
        return [(int(row["id"]), Message(row["topic"], json.loads(row["body"]), row["key"])) for row in rows]

    def delete_outbox(self, ids: Sequence[int]) -> None:
        unique_ids = builtins.list(dict.fromkeys(ids))
        with self._db.transaction() as tx:
            for batch in _batches(unique_ids):
                tx.execute(f"DELETE FROM outbox WHERE id IN ({placeholders(len(batch))})", batch)

    # --- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _get(tx: Transaction, job_id: str) -> HarvestJob:
        rows = tx.execute(f"{_SELECT_JOB} WHERE id = ?", (job_id,))
        if not rows:
            raise JobNotFound(f"harvest job {job_id} not found")
        return _job_from_row(rows[0])

    def _queue_outbox(self, tx: Transaction, messages: Sequence[Message]) -> None:
        now = self._clock()
        tx.executemany(
            _INSERT_OUTBOX,
            [(message.topic, message.key, json.dumps(message.body), now) for message in messages],
        )


def _tasks_json(tasks: Sequence[DownloadTask]) -> str:
    """A chunk's tasks as stored: the same text a chunk held before tasks were typed."""
    return json.dumps([task.to_json() for task in tasks])
