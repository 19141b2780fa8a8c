"""The harvest-job API's use cases: create, describe, list, delete, cancel.

Create stores the job and its first queue message in one transaction (the outbox), then asks the
relay to publish it at once. If publishing fails the job is still created: the outbox row is
durable and the next flush (a later request, the pump, the sweeper) publishes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone

from harvest.domain.job import HarvestJob, JobStatus, callback_message, plan_message
from harvest.domain.registry import Registry
from harvest.domain.validation import (
    CreateParams,
    check_delete_ids,
    check_job_id,
    check_page,
    validate_create,
)
from harvest.errors import InvalidTransition, JobNotCancellable
from harvest.ports import JobPage, JobStore, Relay
from harvest.settings import Settings

log = logging.getLogger(__name__)


def create_job(
    store: JobStore, relay: Relay, registry: Registry, settings: Settings, params: CreateParams, now: float
) -> HarvestJob:
    valid = validate_create(params, registry, settings, now)
    job = HarvestJob(
        id=valid.id,
        channel_name=valid.channel.name,
        endpoint_name=valid.endpoint.name,
        time_format=valid.time_format,
        start_time=valid.start_time,
        end_time=valid.end_time,
        start_epoch=valid.start_epoch,
        end_epoch=valid.end_epoch,
        destination=valid.destination,
        manifest=valid.manifest,
        callback_url=valid.callback_url,
        channel_id=valid.channel.id,
        region=settings.region,
        create_time=int(now),
        updated_at=now,
    )
    store.create(job, [plan_message(job.id)])  # raises JobAlreadyExists for a taken ID
    _flush(relay, job.id)
    return job


def _flush(relay: Relay, job_id: str) -> None:
    try:
        relay.flush()
    except Exception:  # any failure: the committed outbox row is published by a later flush
        log.warning(
            "outbox flush failed; a later flush publishes it", exc_info=True, extra={"job_id": job_id}
        )


def describe_job(store: JobStore, job_id: str) -> HarvestJob:
    return store.get(check_job_id(job_id))


def list_jobs(store: JobStore, channel_name: str | None, page_num: int, page_size: int) -> JobPage:
    """Page `page_num` (from 1) of the jobs, oldest first; a page past the end is empty."""
    check_page(page_num, page_size)
    return store.list(channel_name or None, (page_num - 1) * page_size, page_size)


def delete_job(store: JobStore, job_id: str) -> None:
    """Delete one Completed or Failed job."""
    store.delete([check_job_id(job_id)])


def delete_jobs(store: JobStore, job_ids: Sequence[str]) -> None:
    """Delete every job or none: each must exist and be Completed or Failed."""
    store.delete(check_delete_ids(job_ids))


def cancel_job(store: JobStore, relay: Relay, job_id: str, caller: str, now: float) -> HarvestJob:
    """Fail a Running job now, saying who cancelled it and when.

    The status change is the conditional write every other ending uses, so a job ends once: a
    chunk that later finds the job no longer Running stops, and the CallbackURL is delivered once,
    by the notify message queued in the same transaction.
    """
    check_job_id(job_id)
    when = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        job = store.finish(
            job_id, JobStatus.FAILED, f"cancelled by {caller} at {when}", [callback_message(job_id)]
        )
    except InvalidTransition:
        status = store.get(job_id).status.value
        raise JobNotCancellable(
            f"harvest job {job_id} is {status}; only a Running job can be cancelled",
            zh=f"任务 {job_id} 的状态为 {status},只能取消运行中(Running)的任务",
        ) from None
    log.info("job cancelled", extra={"job_id": job_id, "caller": caller})
    _flush(relay, job_id)
    return job
