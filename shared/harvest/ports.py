"""Ports: what the domain needs from the outside world. Adapters in `harvest.adapters` implement them.

Every port is a typing.Protocol so adapters need not inherit, and the contract tests in
tests/contract run the same cases against each adapter.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from harvest.domain.credentials import TemporaryKey
from harvest.domain.download import DownloadTask
from harvest.domain.job import CallbackClaim, HarvestJob, JobStatus, Message

T = TypeVar("T")

# What every function's entry point is, on SCF and under `harvest serve` alike: (event, context) ->
# the response SCF hands back (the API's envelope, a queue function's summary).
Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class ChunkRecord:
    """One unit of worker work: a list of download tasks that fits well inside one invocation."""

    job_id: str
    index: int
    tasks: list[DownloadTask]
    done: bool = False
    segments: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class JobPage:
    jobs: list[HarvestJob]
    total: int


# --- the job database, by concern. SqlJobStore implements all five; each consumer names only the
# concern(s) it uses, so a reader (or a fake in a test) sees at once what a step can touch.


class JobRecords(Protocol):
    """Harvest jobs as the API sees them: create, read, list, delete, and the one write that ends one."""

    def create(self, job: HarvestJob, outbox: Sequence[Message]) -> None:
        """Insert the job and its first messages atomically. Raises JobAlreadyExists on a duplicate ID."""

    def get(self, job_id: str) -> HarvestJob:
        """Raises JobNotFound."""

    def list(self, channel_name: str | None, offset: int, limit: int) -> JobPage:
        """Jobs in a stable order (CreateTime, then ID), optionally for one channel."""

    def delete(self, job_ids: Sequence[str]) -> None:
        """Delete all or none: raises JobNotFound or JobNotDeletable and deletes nothing."""

    def finish(
        self, job_id: str, status: JobStatus, err_message: str = "", outbox: Sequence[Message] = ()
    ) -> HarvestJob:
        """Conditional write Running -> status. Raises InvalidTransition if the job is not Running."""


class JobPlans(Protocol):
    """A job's plan and its chunks: what the worker harvests, and how far it got."""

    def save_plan(
        self,
        job_id: str,
        plan: Mapping[str, Any],
        chunks: Sequence[Sequence[DownloadTask]],
        segments_total: int,
        outbox: Sequence[Message],
    ) -> bool:
        """Store the plan and its chunks and queue `outbox`, once: False if the job was already planned.

        `chunks` may make each chunk as it is read (engine.plan.Chunks); each is read once. A plan
        marked `tasks_in_chunks` has no task list of its own: get_plan reads it back from the chunks.
        """

    def get_plan(self, job_id: str, with_tasks: bool = True) -> dict[str, Any]:
        """The stored plan ("tasks" left out unless `with_tasks`). Raises JobNotFound when there is none."""

    def get_chunk(self, job_id: str, index: int) -> ChunkRecord:
        """Raises JobNotFound when the chunk does not exist."""

    def complete_chunk(
        self, job_id: str, index: int, segments: int, nbytes: int, outbox_if_last: Sequence[Message]
    ) -> bool:
        """Mark a chunk done once; the write that completes the last chunk also queues `outbox_if_last`.

        Returns True only for the call that completed the job's last chunk.
        """

    def add_progress(self, job_id: str, segments: int, nbytes: int) -> None:
        """Advance the live progress counters (best effort; used for progress bars)."""


class CallbackLedger(Protocol):
    """Who delivers an ended job's CallbackURL, and how it went: once per job, never lost."""

    def claim_callback(self, job_id: str, stale_after: float) -> CallbackClaim:
        """Take the job's CallbackURL delivery: TAKEN once per ended job with a CallbackURL.

        A claim older than `stale_after` seconds with no outcome recorded (its deliverer died) may be
        taken again, so a crash costs a late callback, never a lost one. Raises JobNotFound.
        """

    def record_callback(self, job_id: str, outcome: str) -> None:
        """Remember how delivering the CallbackURL went."""


class RunningJobs(Protocol):
    """Running jobs by their last update: where the sweeper and operators look for stalled work."""

    def running_jobs(self, updated_before: float) -> builtins.list[HarvestJob]:
        """Running jobs whose last update is older than `updated_before` (for the sweeper)."""


class Outbox(Protocol):
    """Messages committed with job changes and not yet published: the relay's side of the outbox."""

    def pending_outbox(self, limit: int) -> builtins.list[tuple[int, Message]]:
        """Messages committed but not yet published, oldest first."""

    def delete_outbox(self, ids: Sequence[int]) -> None:
        """Forget published outbox rows."""


class PlannedJobs(JobRecords, JobPlans, Protocol):
    """A job with its plan and chunks: enough to tell which steps of a Running job are still to do."""


class HarvestStore(PlannedJobs, CallbackLedger, RunningJobs, Protocol):
    """What the harvest steps and the sweeper use (HarvestDeps.store): every concern but the outbox,
    which they fill through their writes and only the relay reads."""


class JobStore(HarvestStore, Outbox, Protocol):
    """Every concern at once, as the SQL adapter keeps them: jobs, plans and chunks, callback claims,
    and the outbox written in the same transactions. Wiring (composition.py) holds this; consumers
    take the narrow port they use."""


class Notifier(Protocol):
    """Delivers a job's CallbackURL notification; returns how it went (delivered | failed | refused)."""

    def notify(self, url: str, payload: dict[str, Any]) -> str: ...


class DestinationLike(Protocol):
    """Where the asset goes: a bucket and a key prefix (harvest.domain.destination satisfies it)."""

    @property
    def bucket(self) -> str: ...

    @property
    def prefix(self) -> str: ...


# --- the API's guards (in-process in harvest.api.ratelimit, service-wide in harvest.adapters.sql.guards)


class Limiter(Protocol):
    """Raises RequestLimitExceeded when `secret_id` has used up `action`'s rate."""

    def acquire(self, secret_id: str, action: str) -> None: ...


class SignatureLedger(Protocol):
    """Remembers signatures within their validity; False for one seen before (a replay)."""

    def check_and_remember(self, sig: str, timestamp: int, now: float) -> bool: ...


class CredentialStore(Protocol):
    """Temporary keys (`harvest keys issue`), kept in the job database."""

    def add(self, key: TemporaryKey) -> None: ...

    def get(self, secret_id: str) -> TemporaryKey | None:
        """The key, expired or not; None when no such SecretId was issued (or it was revoked)."""

    def revoke(self, secret_id: str) -> bool:
        """Forget the key at once; False when there was no such key."""


@dataclass(frozen=True)
class Delivery:
    """A message handed to a consumer, with what the queue knows about it."""

    id: int
    message: Message
    attempts: int  # including this delivery
    extra: dict[str, Any] = field(default_factory=dict)


class Relay(Protocol):
    """Publishes committed outbox rows to the Queue (at least once); returns how many it published."""

    def flush(self, limit: int = 500) -> int: ...


class Queue(Protocol):
    """Where messages go. CKafka in the cloud, a SQL table on one machine."""

    def publish(self, messages: Sequence[Message]) -> None: ...


class ConsumableQueue(Queue, Protocol):
    """A queue this process also consumes from (the SQL queue behind `harvest serve`)."""

    def receive(self, max_messages: int, visibility_timeout: float) -> list[Delivery]:
        """Lease up to `max_messages` visible messages; they reappear after the timeout unless acked."""

    def ack(self, delivery_id: int) -> None: ...

    def nack(self, delivery_id: int, error: str, delay: float) -> bool:
        """Give a message back for redelivery after `delay`. True if it was dead-lettered instead."""

    def dead_letters(self) -> list[tuple[Delivery, str]]: ...


class LeaseQueue(ConsumableQueue, Protocol):
    """A consumable queue that leases by topic and lets a consumer hold its lease while it works
    (the local queue pump's needs)."""

    def receive(
        self, max_messages: int, visibility_timeout: float, topics: Sequence[str] | None = None
    ) -> list[Delivery]: ...

    def extend(self, delivery_id: int, visibility_timeout: float) -> None:
        """Push the lease of a message still in hand `visibility_timeout` seconds into the future."""

    def release(self, delivery_id: int) -> None:
        """Give a leased message back at once without spending an attempt: its consumer stopped
        (at a deadline, or shutting down) before it could finish, which is not the message's fault."""

    def pop_dead_letters(self) -> list[tuple[Delivery, str]]:
        """Dead letters not yet reported, each handed out once."""


class ObjectStore(Protocol):
    """COS buckets (or the local-disk stand-in). Keys never start with '/'."""

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None: ...

    def put_stream(
        self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str, durable: bool = True
    ) -> int:
        """Write an object from `chunks` in bounded memory; the bytes written.

        The object appears only whole: an exception from `chunks` leaves no object (nor a partial
        one) behind and is passed on untouched. With `durable=False` the store may delay making it
        durable until `sync` (a chunk syncs once for all its segments).
        """

    def sync(self, bucket: str, keys: Sequence[str]) -> None:
        """Make the objects `keys`, written with durable=False, durable (a no-op where every put is)."""

    def size(self, bucket: str, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist."""

    def get(self, bucket: str, key: str) -> bytes: ...

    def list(self, bucket: str, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every object under prefix, sorted by key."""


@dataclass(frozen=True)
class FetchedPlaylist:
    """A playlist's text and the URL it finally came from (after redirects)."""

    text: str
    url: str  # relative URIs inside the playlist resolve against this one (RFC 3986 §5.1.3)


class Origin(Protocol):
    """The live origin over HTTP, with the retry policy applied inside."""

    def get_text(self, url: str, headers: Mapping[str, str]) -> str:
        """A playlist. Raises PlaylistError naming the URL after the last retry."""

    def get_playlist(self, url: str, headers: Mapping[str, str]) -> FetchedPlaylist:
        """A playlist with its final URL. Raises PlaylistError naming the URL after the last retry."""

    def get_bytes(
        self, url: str, headers: Mapping[str, str], byte_range: tuple[int, int] | None = None
    ) -> bytes:
        """A segment, or the (offset, length) slice of it. Raises SegmentFetchError after the last retry."""

    def stream(
        self,
        url: str,
        headers: Mapping[str, str],
        byte_range: tuple[int, int] | None,
        sink: Callable[[Iterator[bytes]], T],
    ) -> T:
        """Hand the segment's body (or slice) to `sink` chunk by chunk; retried as get_bytes is.

        A failed attempt raises inside the iteration: `sink` lets it through and is called afresh.
        """


# --- operating the service: metrics, dead letters, queue state --------------------------------------


class Metrics(Protocol):
    """Where the service reports what it does (Prometheus on `harvest serve`, a log line on SCF).

    Label values are always from small fixed sets (an action name, a status, an error kind): never
    a job ID, a URL or anything a client chose, so the number of series stays bounded.
    """

    def job_created(self) -> None: ...

    def job_finished(self, status: str) -> None:
        """A job reached Completed or Failed."""

    def harvested(self, segments: int, nbytes: int, seconds: float | None = None) -> None:
        """A chunk is done: its segments, the bytes fetched for it, and how long it took (when known)."""

    def origin_error(self, resource: str, kind: str, retried: bool) -> None:
        """One failed origin request (resource: playlist | segment); `retried` when another try follows."""

    def dead_lettered(self, topic: str) -> None: ...

    def callback(self, outcome: str) -> None:
        """How a CallbackURL delivery ended: delivered | failed | refused."""

    def api_request(self, action: str, code: str, seconds: float) -> None:
        """One API request: its action (or 'other'), its error code (or 'OK') and how long it took."""


@dataclass(frozen=True)
class DeadLetter:
    """A queue message that used up its attempts, with what went wrong the last time."""

    id: int
    topic: str
    job_id: str
    step: str  # "chunk 3", "plan step", "finalize step"
    attempts: int
    error: str
    created_at: float


@dataclass(frozen=True)
class TopicState:
    """One queue topic as an operator sees it: waiting, in hand, dead, and the oldest waiting message."""

    topic: str
    ready: int
    leased: int
    dead: int
    oldest_age: float  # seconds since the oldest ready or leased message was queued; 0 when none


class Operations(Protocol):
    """What an operator (and /metrics) asks of the job table and of a queue the service keeps itself.

    The SQL adapter answers all of it; with CKafka the queue lives in CKafka, so dead letters and
    topic depths come from CKafka's console instead (docs/operations.md says how).
    """

    def dead_letters(self, job_id: str | None = None) -> builtins.list[DeadLetter]:
        """Dead messages, oldest first, optionally of one job."""

    def replay(self, ids: Sequence[int] | None) -> builtins.list[DeadLetter]:
        """Make these dead messages (all of them when `ids` is None) deliverable again, with fresh
        attempts. Returns those replayed; IDs that are not dead letters are skipped."""

    def last_errors(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The last error recorded on any queued or dead message of each job (jobs without one left out)."""

    def topics(self, now: float) -> builtins.list[TopicState]: ...

    def job_counts(self) -> dict[tuple[str, str], int]:
        """Jobs per (status, phase)."""

    def ping(self) -> None:
        """Raise if the database cannot be reached."""


class LiveEventLedger(Protocol):
    """Live-event notifications already turned into jobs, kept after the job is deleted, so a
    replayed notification creates nothing; shared by every instance (it lives in the database)."""

    def seen(self, event_key: str) -> tuple[str, float] | None:
        """(job ID, event time) recorded for this key, or None."""
        ...

    def record(self, event_key: str, job_id: str, event_time: float) -> None:
        """Remember the key (a second record of the same key changes nothing)."""
        ...
