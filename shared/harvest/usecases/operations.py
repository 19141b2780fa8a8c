"""What an operator does to a running service: find stuck jobs, see dead letters, put work back.

- A job is *stuck* when it is Running and has not moved for a while; its last error comes from the
  queue (the error its messages were last given back with), so an operator sees why at once.
- A *dead letter* is a message that used up its attempts. On `harvest serve` its job is held
  Running for `HARVEST_DEAD_LETTER_HOLD` seconds, so the cause (a full disk, a database failover,
  an origin outage) can be mended and the message replayed; a job still held when the time is up
  fails, naming the step that could not be done, as it always did.
- Replaying hands dead messages back to the queue with fresh attempts. A job with no dead letter
  (CKafka keeps none in our database) can still be moved on: its unfinished steps are queued
  again, exactly what the sweeper does for a stalled job. Every step ignores work already done,
  so a replay never redoes or breaks anything.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from harvest.domain.job import HarvestJob, JobStatus
from harvest.ports import DeadLetter, Operations, PlannedJobs, Queue, RunningJobs
from harvest.usecases.harvest import HarvestDeps, fail_job
from harvest.usecases.sweep import lost_messages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StuckJob:
    job: HarvestJob
    idle_seconds: float
    last_error: str


def stuck_jobs(store: RunningJobs, operations: Operations, idle_for: float, now: float) -> list[StuckJob]:
    """Running jobs that have not moved for `idle_for` seconds, longest idle first."""
    jobs = store.running_jobs(updated_before=now - idle_for)
    errors = operations.last_errors([job.id for job in jobs])
    stuck = [StuckJob(job, max(0.0, now - job.updated_at), errors.get(job.id, "")) for job in jobs]
    return sorted(stuck, key=lambda item: (-item.idle_seconds, item.job.id))


@dataclass(frozen=True)
class ReplayResult:
    replayed: list[DeadLetter]
    requeued: int  # messages queued afresh for a job that had no dead letter


def replay(
    store: PlannedJobs,
    queue: Queue,
    operations: Operations,
    ids: Sequence[int] | None = None,
    job_id: str | None = None,
) -> ReplayResult:
    """Replay dead letters by ID (all of them when `ids` and `job_id` are None), or one job's.

    For a job without dead letters, its unfinished steps are queued again instead.
    """
    if job_id is None:
        return ReplayResult(operations.replay(ids), 0)
    dead = [letter.id for letter in operations.dead_letters(job_id)]
    if dead:
        return ReplayResult(operations.replay(dead), 0)
    job = store.get(job_id)  # raises JobNotFound
    if job.status is not JobStatus.RUNNING:
        return ReplayResult([], 0)
    messages = lost_messages(store, job)
    queue.publish(messages)
    log.warning("re-queued %d message(s) by operator request", len(messages), extra={"job_id": job_id})
    return ReplayResult([], len(messages))


def fail_held_jobs(deps: HarvestDeps, operations: Operations, hold: float) -> list[str]:
    """Fail the jobs whose dead letters have waited `hold` seconds (without progress) for a replay."""
    failed = []
    # Only Running jobs idle for the whole hold can qualify: few, and found through an index.
    for job in deps.store.running_jobs(updated_before=deps.clock() - hold):
        letters = operations.dead_letters(job.id)
        if not letters:
            continue
        first = letters[0]
        reason = f"{first.step} could not be done after {first.attempts} attempts: {first.error}"
        if fail_job(deps, job.id, reason) is not None:
            failed.append(job.id)
    return failed
