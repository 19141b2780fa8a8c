"""Ports: what the domain needs from the outside world. Adapters in `harvest.adapters` implement them.

Every port is a typing.Protocol so adapters need not inherit, and the contract tests in
tests/contract run the same cases against each adapter.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from harvest.domain.job import HarvestJob, JobStatus, Message


@dataclass(frozen=True)
class ChunkRecord:
    """One unit of worker work: a list of download tasks that fits well inside one invocation."""

    job_id: str
    index: int
    tasks: list[dict[str, Any]]  # engine-defined download tasks (url, key, byte range, size)
    done: bool = False
    segments: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class JobPage:
    jobs: list[HarvestJob]
    total: int


class JobStore(Protocol):
    """Jobs, their plan and chunks, and the outbox of messages written in the same transactions."""

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

    def save_plan(
        self,
        job_id: str,
        plan: Mapping[str, Any],
        chunks: Sequence[Sequence[Mapping[str, Any]]],
        segments_total: int,
        outbox: Sequence[Message],
    ) -> bool:
        """Store the plan and its chunks and queue `outbox`, once: False if the job was already planned."""

    def get_plan(self, job_id: str) -> dict[str, Any]:
        """The stored plan. Raises JobNotFound when there is none."""

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

    def record_callback(self, job_id: str, outcome: str) -> None:
        """Remember how delivering the CallbackURL went."""

    def running_jobs(self, updated_before: float) -> builtins.list[HarvestJob]:
        """Running jobs whose last update is older than `updated_before` (for the sweeper)."""

    def pending_outbox(self, limit: int) -> builtins.list[tuple[int, Message]]:
        """Messages committed but not yet published, oldest first."""

    def delete_outbox(self, ids: Sequence[int]) -> None:
        """Forget published outbox rows."""


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


class ObjectStore(Protocol):
    """COS buckets (or the local-disk stand-in). Keys never start with '/'."""

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None: ...

    def size(self, bucket: str, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist."""

    def get(self, bucket: str, key: str) -> bytes: ...

    def list(self, bucket: str, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every object under prefix, sorted by key."""


class Origin(Protocol):
    """The live origin over HTTP, with the retry policy applied inside."""

    def get_text(self, url: str, headers: Mapping[str, str]) -> str:
        """A playlist. Raises PlaylistError naming the URL after the last retry."""

    def get_bytes(
        self, url: str, headers: Mapping[str, str], byte_range: tuple[int, int] | None = None
    ) -> bytes:
        """A segment, or the (offset, length) slice of it. Raises SegmentFetchError after the last retry."""


class LiveEventLedger(Protocol):
    """Live-event notifications already turned into jobs, kept after the job is deleted, so a
    replayed notification creates nothing; shared by every instance (it lives in the database)."""

    def seen(self, event_key: str) -> tuple[str, float] | None:
        """(job ID, event time) recorded for this key, or None."""
        ...

    def record(self, event_key: str, job_id: str, event_time: float) -> None:
        """Remember the key (a second record of the same key changes nothing)."""
        ...
