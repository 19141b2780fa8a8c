"""The harvest-job API's use cases: create, describe, list, delete, cancel.

Create stores the job and its first queue message in one transaction (the outbox), then asks the
relay to publish it at once. If publishing fails the job is still created: the outbox row is
durable and the next flush (a later request, the pump, the sweeper) publishes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone

from harvest.domain.access import Caller
from harvest.domain.destination import CosLocation, parse_destination
from harvest.domain.job import HarvestJob, JobStatus, callback_message, plan_message
from harvest.domain.registry import Registry
from harvest.domain.validation import (
    CreateParams,
    check_delete_ids,
    check_job_id,
    check_not_reserved,
    check_page,
    validate_create,
)
from harvest.errors import HarvestError, InvalidTransition, JobNotCancellable
from harvest.ports import JobPage, JobRecords, Relay
from harvest.settings import Settings

log = logging.getLogger(__name__)

ANYONE = Caller("")  # a caller without a scope: sees and may do everything
SCAN_BATCH = 500  # jobs read per query when a scoped key lists (its scope is applied here)


def _location(job: HarvestJob) -> CosLocation | None:
    try:
        return parse_destination(job.destination, job.region)
    except HarvestError:
        return None


def _check_sees(caller: Caller, job: HarvestJob) -> HarvestJob:
    caller.check_job(job.id, job.channel_name, _location(job))
    return job


def create_job(
    store: JobRecords,
    relay: Relay,
    registry: Registry,
    settings: Settings,
    params: CreateParams,
    now: float,
    caller: Caller = ANYONE,
    live_event: bool = False,
) -> HarvestJob:
    """Store a new job and queue its plan; only live events (`live_event`) may use live- IDs."""
    if not live_event:
        check_not_reserved(params.id)
    valid = validate_create(params, registry, settings, now)
    caller.check_channel(valid.channel.name)
    caller.check_destination(valid.location)
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


def describe_job(store: JobRecords, job_id: str, caller: Caller = ANYONE) -> HarvestJob:
    return _check_sees(caller, store.get(check_job_id(job_id)))


def list_jobs(
    store: JobRecords, channel_name: str | None, page_num: int, page_size: int, caller: Caller = ANYONE
) -> JobPage:
    """Page `page_num` (from 1) of the jobs the caller may see, oldest first; past the end: empty."""
    check_page(page_num, page_size)
    offset = (page_num - 1) * page_size
    if caller.scope is None:
        return store.list(channel_name or None, offset, page_size)
    if channel_name:
        caller.check_channel(channel_name)
    visible: list[HarvestJob] = []
    scanned = 0
    while True:
        batch = store.list(channel_name or None, scanned, SCAN_BATCH)
        visible += [job for job in batch.jobs if caller.sees(job.channel_name, _location(job))]
        scanned += len(batch.jobs)
        if not batch.jobs or scanned >= batch.total:
            break
    return JobPage(jobs=visible[offset : offset + page_size], total=len(visible))


def delete_job(store: JobRecords, job_id: str, caller: Caller = ANYONE) -> None:
    """Delete one Completed or Failed job."""
    _delete_in_scope(store, [check_job_id(job_id)], caller)


def delete_jobs(store: JobRecords, job_ids: Sequence[str], caller: Caller = ANYONE) -> None:
    """Delete every job or none: each must exist, be in the caller's scope and be Completed or Failed."""
    _delete_in_scope(store, check_delete_ids(job_ids), caller)


def _delete_in_scope(store: JobRecords, job_ids: Sequence[str], caller: Caller) -> None:
    if caller.scope is not None:
        for job_id in job_ids:
            _check_sees(caller, store.get(job_id))
    store.delete(job_ids)


def cancel_job(store: JobRecords, relay: Relay, job_id: str, caller: Caller, now: float) -> HarvestJob:
    """Fail a Running job now, saying who cancelled it and when.

    The status change is the conditional write every other ending uses, so a job ends once: a
    chunk that later finds the job no longer Running stops, and the CallbackURL is delivered once,
    by the callback message queued in the same transaction.
    """
    _check_sees(caller, store.get(check_job_id(job_id)))
    when = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        job = store.finish(
            job_id, JobStatus.FAILED, f"cancelled by {caller.secret_id} at {when}", [callback_message(job_id)]
        )
    except InvalidTransition:
        status = store.get(job_id).status.value
        raise JobNotCancellable(
            f"harvest job {job_id} is {status}; only a Running job can be cancelled",
            zh=f"任务 {job_id} 的状态为 {status},只能取消运行中(Running)的任务",
        ) from None
    log.info("job cancelled", extra={"job_id": job_id, "caller": caller.secret_id})
    _flush(relay, job_id)
    return job
