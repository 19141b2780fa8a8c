"""The harvest itself: plan a job, harvest one chunk, finalize. One use case per message kind.

Every step checks the stored state first and does nothing harmful on a repeat, because every
message may arrive twice or out of order. Object keys are deterministic, so a repeated chunk
rewrites the same bytes; the job is Completed only after every planned object is in the store
with the expected size.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from harvest.domain.destination import normalize_manifest, parse_destination
from harvest.domain.download import DownloadTask
from harvest.domain.job import (
    CallbackClaim,
    HarvestJob,
    JobStatus,
    Phase,
    callback_message,
    chunk_message,
    finalize_message,
)
from harvest.domain.registry import Registry
from harvest.engine.plan import Plan, PlanLimits, build_plan, manifest_content_type
from harvest.errors import (
    HarvestError,
    HarvestFailure,
    InvalidTransition,
    JobNotFound,
    NotFound,
    PlaylistError,
    RetryableError,
    SegmentFetchError,
    StorageError,
    Unavailable,
    WindowNotCovered,
)
from harvest.logs import public_text
from harvest.ports import HarvestStore, JobRecords, Notifier, ObjectStore, Origin, Queue, Relay
from harvest.settings import Settings
from harvest.usecases.download_pool import DownloadPool

log = logging.getLogger(__name__)

# The segment holding EndTime is published only once it has ended, up to a target duration later.
# Planning waits this long past EndTime, and a window that still looks short at its end within
# RECENT_END seconds of EndTime is retried (redelivered) instead of failed.
PLAN_GRACE_SECONDS = 8.0
RECENT_END_SECONDS = 120.0
# A job whose StartTime equals its EndTime is planned as this short window: the segment holding it.
INSTANT_SECONDS = 0.01

# Chunks are sized by task count as well as bytes: at a few MB per segment and a few segments
# per second per worker, 400 tasks finish in a few minutes, well inside SCF's 900 s limit.
# A window is also split into at least MIN_CHUNKS, so that several consumers (or SCF instances)
# share even a short one; below CHUNK_MIN_TASKS per chunk the per-message overhead dominates.
CHUNK_MAX_TASKS = 400
CHUNK_MIN_TASKS = 25
MIN_CHUNKS = 8


def chunk_size(tasks: int) -> int:
    return min(CHUNK_MAX_TASKS, max(CHUNK_MIN_TASKS, -(-tasks // MIN_CHUNKS)))


@dataclass(frozen=True)
class HarvestDeps:
    settings: Settings
    registry: Registry
    store: HarvestStore  # every concern but the outbox: the relay publishes what the steps commit
    queue: Queue  # direct publishing, for the sweeper's re-queues
    relay: Relay
    objects: ObjectStore
    origin: Origin
    notifier: Notifier
    downloads: DownloadPool  # DownloadPool(settings.download_concurrency), one per process
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


# How often a running chunk reads its job's status, so a cancel stops new fetches within this long.
CANCEL_POLL_SECONDS = 0.1


class JobEnded(Exception):
    """The job stopped being Running (cancelled, or failed elsewhere) while a chunk was fetching."""


class _StillRunning:
    """Whether the job is still Running, read from the store at most every CANCEL_POLL_SECONDS."""

    def __init__(self, store: JobRecords, job_id: str) -> None:
        self._store, self._job_id = store, job_id
        self._lock = threading.Lock()
        self._checked_at = time.monotonic()
        self._running = True

    def __call__(self) -> bool:
        if not self._running or time.monotonic() - self._checked_at < CANCEL_POLL_SECONDS:
            return self._running
        # One thread reads the store; the others go on with the last answer instead of queueing
        # behind it (a blocking lock here cost 12 % of the GIL's time on 64 KB segments).
        if not self._lock.acquire(blocking=False):
            return self._running
        try:
            if time.monotonic() - self._checked_at >= CANCEL_POLL_SECONDS:
                try:
                    self._running = self._store.get(self._job_id).status is JobStatus.RUNNING
                except JobNotFound:
                    self._running = False
                self._checked_at = time.monotonic()
        finally:
            self._lock.release()
        return self._running


class Interrupted(Exception):
    """The invocation ran out of time (or the process is stopping) before the chunk was done.

    Not a failure: the message is redelivered and the chunk runs again, skipping the objects
    already stored with their known size (byte ranges); whole-file segments of unknown size are
    fetched again, since an object left under the same key by another job must not pass.
    """


# --- job end ------------------------------------------------------------------------------------


def public_message(reason: str) -> str:
    """ErrMessage reaches API clients and callbacks: no URL user info or query (tokens), no local paths."""
    return public_text(reason)


def fail_job(deps: HarvestDeps, job_id: str, reason: str) -> HarvestJob | None:
    """Mark a Running job Failed with `reason`; a job that already ended is left alone."""
    reason = public_message(reason)
    try:
        job = deps.store.finish(job_id, JobStatus.FAILED, reason, outbox=[callback_message(job_id)])
    except (InvalidTransition, JobNotFound):
        return None
    log.warning("job failed: %s", reason, extra={"job_id": job_id})
    _publish_soon(deps)
    return job


def _publish_soon(deps: HarvestDeps) -> None:
    # The callback message is committed with the job's end; publishing it now only saves the wait
    # for the next relay flush, so a failure here is left to that flush.
    try:
        deps.relay.flush()
    except HarvestError as exc:
        log.warning("outbox flush after a job's end failed (%s); the relay will publish it", exc)


CLAIM_POLL_SECONDS = 1.0
_LONGEST_BACKOFF = 5.0  # RetryPolicy's max_delay, between two callback attempts


def callback_claim_stale_after(settings: Settings) -> float:
    """How old a claim with no outcome must be before another deliverer takes it over: longer than
    any delivery lasts (every attempt to its deadline, the backoff between them), plus a margin."""
    return settings.fetch_attempts * (settings.callback_deadline + _LONGEST_BACKOFF) + 10.0


def deliver_callback(deps: HarvestDeps, job_id: str) -> None:
    """POST an ended job to its CallbackURL, once, and record the outcome (from the callback topic).

    The job's status was committed with this message; the callback can neither delay nor change it.
    A repeated message finds the delivery taken: it waits for that outcome, or, if the deliverer
    died, for its claim to go stale and takes the delivery over, so a callback is never lost.
    """
    stale_after = callback_claim_stale_after(deps.settings)
    while True:
        try:
            claim = deps.store.claim_callback(job_id, stale_after)
        except JobNotFound:
            return
        if claim is CallbackClaim.SETTLED:
            return
        if claim is CallbackClaim.TAKEN:
            break
        deps.sleep(CLAIM_POLL_SECONDS)
    job = deps.store.get(job_id)
    outcome = deps.notifier.notify(job.callback_url, job.to_api())
    deps.store.record_callback(job.id, outcome)


def _running(deps: HarvestDeps, job_id: str) -> HarvestJob | None:
    try:
        job = deps.store.get(job_id)
    except JobNotFound:
        log.info("message for a job that no longer exists", extra={"job_id": job_id})
        return None
    return job if job.status is JobStatus.RUNNING else None


# --- plan ---------------------------------------------------------------------------------------


def plan_job(deps: HarvestDeps, job_id: str) -> None:
    """Read the endpoint's playlists, select the window, store the plan and queue its chunks."""
    job = _running(deps, job_id)
    if job is None or job.phase is not Phase.QUEUED:
        return  # already planned (a repeated plan message) or already ended
    early = job.end_epoch + PLAN_GRACE_SECONDS - deps.clock()
    if early > 0:
        deps.sleep(min(early, PLAN_GRACE_SECONDS))
    try:
        endpoint = deps.registry.channel(job.channel_name).endpoint(job.endpoint_name)
        destination = parse_destination(job.destination, deps.settings.region, ())
        plan = build_plan(
            deps.origin,
            endpoint,
            job.start_epoch,
            max(job.end_epoch, job.start_epoch + INSTANT_SECONDS),  # an instant: its one segment
            destination,
            normalize_manifest(job.manifest),
            now=deps.clock(),
            copy_keys=deps.settings.copy_keys,
            limits=PlanLimits.from_settings(deps.settings),
        )
    except PlaylistError as exc:
        if isinstance(exc, WindowNotCovered) and deps.clock() - job.end_epoch < RECENT_END_SECONDS:
            # The live edge may simply not have reached EndTime yet: try again on redelivery.
            raise RetryableError(f"window not yet available, will retry: {exc.message}") from exc
        fail_job(deps, job_id, exc.message)
        return
    except HarvestFailure as exc:
        fail_job(deps, job_id, exc.message)
        return
    except (StorageError, NotFound) as exc:  # registry or destination changed under the job
        fail_job(deps, job_id, f"cannot plan: {exc}")
        return
    chunks = plan.chunks(chunk_size(len(plan.tasks)), deps.settings.chunk_max_bytes)
    outbox = [chunk_message(job_id, i) for i in range(len(chunks))] or [finalize_message(job_id)]
    # The tasks are stored once, in the chunk rows, each chunk made as it is written.
    stored = deps.store.save_plan(job_id, plan.to_json(with_tasks=False), chunks, plan.segment_count, outbox)
    if stored:
        log.info("planned %d tasks in %d chunks", len(plan.tasks), len(chunks), extra={"job_id": job_id})
        for warning in plan.warnings:
            log.warning("playlist warning: %s", warning, extra={"job_id": job_id})
        deps.relay.flush()


# --- chunk --------------------------------------------------------------------------------------


def _fetch_and_store(deps: HarvestDeps, headers: Mapping[str, str], bucket: str, task: DownloadTask) -> int:
    expected = task.size
    existing = deps.objects.size(bucket, task.key)
    if existing is not None and expected is not None and existing == expected:
        return 0  # stored by an earlier delivery of this chunk

    def store(chunks: Iterator[bytes]) -> int:
        # Straight from the origin's socket to the store, a buffer at a time: a 512 MB segment
        # never sits in memory whole.
        # Not synced one by one: the chunk syncs all its objects once, before it is recorded done.
        return deps.objects.put_stream(
            bucket, task.key, _sized(chunks, expected, task.name), task.content_type, durable=False
        )

    return deps.origin.stream(task.url, headers, task.range, store)


def _sized(chunks: Iterator[bytes], expected: int | None, name: str) -> Iterator[bytes]:
    """`chunks`, failing the segment when they add up to other than the planned size (if one is known)."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if expected is not None and total > expected:
            raise SegmentFetchError(f"segment {name}: more than the {expected} bytes expected")
        yield chunk
    if expected is not None and total != expected:
        raise SegmentFetchError(f"segment {name}: got {total} bytes, expected {expected}")


def harvest_chunk(
    deps: HarvestDeps, job_id: str, index: int, should_stop: Callable[[], bool] = lambda: False
) -> None:
    """Fetch every task of one chunk into the object store, then record the chunk as done.

    Raises Interrupted when `should_stop` turns true first; the redelivered message resumes.
    """
    job = _running(deps, job_id)
    if job is None:
        return
    chunk = deps.store.get_chunk(job_id, index)
    if chunk.done:
        return
    # The bucket comes from the job, not the plan: a 24 h plan is tens of MB of JSON, and parsing it
    # for every chunk cost each consumer its own copy (the benchmark's memory run found it).
    bucket = parse_destination(job.destination, deps.settings.region, ()).bucket
    endpoint = deps.registry.channel(job.channel_name).endpoint(job.endpoint_name)
    nbytes = _run_tasks(deps, job_id, bucket, endpoint.headers, chunk.tasks, should_stop)
    if nbytes is None:
        return  # the job failed (a segment that could not be fetched) or was cancelled
    deps.objects.sync(bucket, [task.key for task in chunk.tasks])
    segments = sum(1 for task in chunk.tasks if task.counts)
    last = deps.store.complete_chunk(job_id, index, segments, nbytes, [finalize_message(job_id)])
    if last:
        deps.relay.flush()


def _run_tasks(
    deps: HarvestDeps,
    job_id: str,
    bucket: str,
    headers: Mapping[str, str],
    tasks: Sequence[DownloadTask],
    should_stop: Callable[[], bool],
) -> int | None:
    """Run tasks on the process's download pool; None when the job failed (a permanent fetch
    failure) or ended meanwhile (a cancel).

    After the first failure no new task starts; the ones under way finish their segment.
    """
    still_running = _StillRunning(deps.store, job_id)
    lock = threading.Lock()
    total = [0]
    progress = [0, 0]  # segments, bytes not yet reported

    def fetch(task: DownloadTask) -> int:
        if should_stop():
            raise Interrupted(f"stopped before {task.name}")
        if not still_running():  # cancelled: fetches under way finish, no new one starts
            raise JobEnded(f"job ended before {task.name}")
        n = _fetch_and_store(deps, headers, bucket, task)
        with lock:
            total[0] += n
            progress[0] += 1
            progress[1] += n
        return n

    batch = deps.downloads.submit(iter(tasks), fetch)
    while not batch.wait(1.0):
        _report_progress(deps, job_id, lock, progress)
    exc = batch.failure
    if exc is not None:
        if isinstance(exc, SegmentFetchError):
            fail_job(deps, job_id, exc.message)
            return None
        if isinstance(exc, JobEnded):
            log.info("chunk stopped: the job is no longer Running", extra={"job_id": job_id})
            return None
        raise exc
    return total[0]


def _report_progress(deps: HarvestDeps, job_id: str, lock: threading.Lock, progress: list[int]) -> None:
    with lock:
        segs, got = progress
        progress[0] = progress[1] = 0
    if not segs:
        return
    try:
        deps.store.add_progress(job_id, segs, got)
    except Unavailable:
        # Progress is for progress bars: keep the counts for the next report rather than abandon a
        # chunk's downloads because the database blinked.
        with lock:
            progress[0] += segs
            progress[1] += got


# --- finalize -----------------------------------------------------------------------------------


# Listings kept while the finalizer checks a plan's objects, folder by folder (tasks come in folder order).
LISTED_FOLDERS = 2


def _missing_objects(deps: HarvestDeps, bucket: str, tasks: Iterable[DownloadTask]) -> tuple[str, int]:
    """What is wrong with the first object missing or of the wrong size, and how many are ("", 0 if none)."""
    # One listing per folder instead of a HEAD per object (43,200 HEADs would take minutes on COS),
    # and only the last folders' listings held: a 24 h plan of many renditions lists 400,000 objects.
    listings: dict[str, dict[str, int]] = {}
    first, count = "", 0
    for task in tasks:
        folder = task.key.rpartition("/")[0]
        stored = listings.get(folder)
        if stored is None:
            if len(listings) >= LISTED_FOLDERS:
                del listings[next(iter(listings))]
            stored = listings[folder] = dict(deps.objects.list(bucket, folder + "/" if folder else ""))
        size = stored.get(task.key)
        if size is None or (task.size is not None and size != task.size):
            count += 1
            if not first:
                wrong = (
                    f"has {size} bytes, expected {task.size}"
                    if size is not None
                    else "is missing from the bucket"
                )
                first = f"{task.name} {wrong}"
    return first, count


def _planned_tasks(deps: HarvestDeps, job: HarvestJob) -> Iterator[DownloadTask]:
    """Every task of the job's plan, read chunk by chunk (where a plan stored by any release has them)."""
    for index in range(job.chunks_total):
        yield from deps.store.get_chunk(job.id, index).tasks


def finalize_job(deps: HarvestDeps, job_id: str) -> None:
    """Check every planned object, write the playlists (children first, master last), complete."""
    job = _running(deps, job_id)
    if job is None:
        return
    if job.phase is not Phase.FINALIZING and not (job.phase is Phase.HARVESTING and job.chunks_total == 0):
        log.info("finalize before every chunk is done; ignored", extra={"job_id": job_id})
        return
    plan = Plan.from_json(deps.store.get_plan(job_id, with_tasks=False))
    first, missing = _missing_objects(deps, plan.bucket, _planned_tasks(deps, job))
    if missing:
        more = f" (and {missing - 1} more)" if missing > 1 else ""
        fail_job(deps, job_id, f"segment {first}{more}")
        return
    for key, text in plan.playlists.items():
        if key != plan.master_key:
            deps.objects.put(plan.bucket, key, text.encode(), manifest_content_type(key))
    # The Manifest goes last: once it exists, everything it points to exists too.
    deps.objects.put(
        plan.bucket,
        plan.master_key,
        plan.playlists[plan.master_key].encode(),
        manifest_content_type(plan.master_key),
    )
    try:
        deps.store.finish(job_id, JobStatus.COMPLETED, outbox=[callback_message(job_id)])
    except InvalidTransition:
        return  # a concurrent finalize (duplicate message) won
    log.info("job completed", extra={"job_id": job_id})
    _publish_soon(deps)
