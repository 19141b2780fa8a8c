"""The sweeper (a timer function): nothing may stay stuck.

- A Running job older than the deadline fails with a message that says how far it got.
- A Running job that has not moved for `stale_after` seconds gets its next messages queued again
  (plan, the chunks not done, or finalize): a lost message costs a delay, never the job. Every
  handler ignores a message it has already acted on, so re-queueing is harmless.
- Committed but unpublished outbox rows are published.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from harvest.domain.job import HarvestJob, Message, Phase, chunk_message, finalize_message, plan_message
from harvest.errors import JobNotFound
from harvest.ports import JobPlans
from harvest.usecases.harvest import HarvestDeps, fail_job

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    failed: list[str] = field(default_factory=list)
    requeued: dict[str, int] = field(default_factory=dict)
    published: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"failed": self.failed, "requeued": self.requeued, "published": self.published}


def lost_messages(store: JobPlans, job: HarvestJob) -> list[Message]:
    """The messages that move a Running job on from where it stands (plan, unfinished chunks, finalize)."""
    if job.phase is Phase.QUEUED:
        return [plan_message(job.id)]
    if job.phase is Phase.FINALIZING or (job.phase is Phase.HARVESTING and job.chunks_total == 0):
        return [finalize_message(job.id)]
    if job.phase is Phase.HARVESTING:
        messages = []
        for index in range(job.chunks_total):
            try:
                if not store.get_chunk(job.id, index).done:
                    messages.append(chunk_message(job.id, index))
            except JobNotFound:
                continue
        return messages
    return []


def sweep(deps: HarvestDeps, stale_after: float) -> SweepReport:
    report = SweepReport()
    now = deps.clock()
    deadline = deps.settings.job_deadline
    # Every Running job is looked at: a job past its deadline fails even if something still touches it.
    for job in deps.store.running_jobs(updated_before=now + 1):
        if now - job.create_time > deadline:
            reason = (
                f"job did not finish within {deadline:.0f} s (stopped at phase {job.phase.value},"
                f" {job.chunks_done}/{job.chunks_total} chunks, {job.segments_done}/{job.segments_total}"
                " segments); failed by the sweeper"
            )
            if fail_job(deps, job.id, reason) is not None:
                report.failed.append(job.id)
            continue
        if now - job.updated_at < stale_after:
            continue
        messages = lost_messages(deps.store, job)
        if messages:
            deps.queue.publish(messages)
            deps.store.add_progress(job.id, 0, 0)  # touch: wait another stale period before re-queueing
            report.requeued[job.id] = len(messages)
            log.warning("re-queued %d message(s) for a stalled job", len(messages), extra={"job_id": job.id})
    report.published = deps.relay.flush()
    if report.failed or report.requeued or report.published:
        log.info("sweep: %s", report.as_dict())
    return report
