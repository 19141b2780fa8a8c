"""In-memory fakes of the ports (harvest.ports), for unit tests of the use cases.

Each one keeps the promises of the adapter it stands in for, and the contract suites in
tests/contract run against it beside the real adapters (the `memory` parametrization), so a fake
that drifts from the real thing fails there before a unit test can believe it:

- `MemoryJobStore`: ports.JobStore (every concern of the job database), as SqlJobStore keeps it;
  test_jobstore_contract.py.
- `MemoryQueue`: ports.LeaseQueue, as SqlQueue keeps it (leases, nack, dead letters);
  test_queue_contract.py and test_queue_backends_contract.py.
- `MemoryObjectStore`: ports.ObjectStore, as LocalDiskStore and CosStore keep it (same key rules,
  whole objects only); test_objectstore_contract.py.

`ScriptedOrigin` (ports.Origin) answers what a test scripted per URL: a body, an HTTP status, a
delay that moves the test's clock instead of sleeping, or a hook run mid-fetch. `RecordingNotifier`
(ports.Notifier) records each callback and answers with a scripted outcome. Neither has a contract
suite: their real adapters' behaviour (retries, redirects, address checks) is the adapters' own,
tested in tests/integration; these only say what came back.
"""

from __future__ import annotations

import builtins
import copy
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harvest.adapters.objectstore import check_bucket, check_key, check_prefix
from harvest.domain.download import DownloadTask
from harvest.domain.job import CallbackClaim, HarvestJob, JobStatus, Message, Phase, check_transition
from harvest.engine.plan import TASKS_IN_CHUNKS
from harvest.errors import (
    InvalidTransition,
    JobAlreadyExists,
    JobNotDeletable,
    JobNotFound,
    PlaylistError,
    SegmentFetchError,
    StorageError,
)
from harvest.ports import ChunkRecord, Delivery, FetchedPlaylist, JobPage, T

LIVE_KEYS = ("live_segments", "live_bytes")  # as SqlJobStore: read-only keys merged into extra
_CLAIMED = "claimed"  # callback_status while a delivery is claimed with no outcome yet


def _json_copy(value: Any) -> Any:
    """`value` as it comes back from a store that keeps JSON (tuples become lists, and no aliasing)."""
    return json.loads(json.dumps(value))


@dataclass
class _Chunk:
    tasks: list[dict[str, Any]]  # as stored: the tasks' JSON
    done: bool = False
    segments: int = 0
    bytes: int = 0


@dataclass
class _JobRow:
    job: HarvestJob  # extra without the live counters
    callback_status: str = ""  # the raw value, `_CLAIMED` included
    live_segments: int = 0
    live_bytes: int = 0
    plan: dict[str, Any] | None = None
    chunks: list[_Chunk] = field(default_factory=list)


class MemoryJobStore:
    """ports.JobStore in a dict: every write under one lock, so each is as atomic as a transaction."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._rows: dict[str, _JobRow] = {}
        self._outbox: list[tuple[int, Message]] = []
        self._next_outbox_id = 1

    # --- JobRecords -------------------------------------------------------------------------------

    def create(self, job: HarvestJob, outbox: Sequence[Message]) -> None:
        with self._lock:
            if job.id in self._rows:
                raise JobAlreadyExists(f"harvest job {job.id} already exists")
            extra = {key: value for key, value in _json_copy(job.extra).items() if key not in LIVE_KEYS}
            self._rows[job.id] = _JobRow(replace(job, extra=extra), callback_status=job.callback_status)
            self._queue(outbox)

    def get(self, job_id: str) -> HarvestJob:
        with self._lock:
            return self._read(self._row(job_id))

    def list(self, channel_name: str | None, offset: int, limit: int) -> JobPage:
        with self._lock:
            jobs = [
                self._read(row)
                for row in self._rows.values()
                if channel_name is None or row.job.channel_name == channel_name
            ]
        jobs.sort(key=lambda job: (job.create_time, job.id))
        return JobPage(jobs[offset : offset + limit], len(jobs))

    def delete(self, job_ids: Sequence[str]) -> None:
        unique_ids = builtins.list(dict.fromkeys(job_ids))
        with self._lock:
            # Checked before anything is deleted: the whole request fails or none of it does.
            for job_id in unique_ids:
                self._row(job_id)
            for job_id in unique_ids:
                if self._rows[job_id].job.status is JobStatus.RUNNING:
                    raise JobNotDeletable(f"harvest job {job_id} is Running; only Completed or Failed jobs")
            for job_id in unique_ids:
                del self._rows[job_id]

    def finish(
        self, job_id: str, status: JobStatus, err_message: str = "", outbox: Sequence[Message] = ()
    ) -> HarvestJob:
        check_transition(JobStatus.RUNNING, status)
        with self._lock:
            row = self._row(job_id)
            current = row.job.status
            if current is not JobStatus.RUNNING:
                check_transition(current, status)
                raise InvalidTransition(f"harvest job {job_id} is {current.value}, not Running")
            now = self._clock()
            row.job = replace(
                row.job,
                status=status,
                err_message=err_message,
                phase=Phase.DONE,
                finished_at=now,
                updated_at=now,
            )
            self._queue(outbox)
            return self._read(row)

    # --- JobPlans ---------------------------------------------------------------------------------

    def save_plan(
        self,
        job_id: str,
        plan: Mapping[str, Any],
        chunks: Sequence[Sequence[DownloadTask]],
        segments_total: int,
        outbox: Sequence[Message],
    ) -> bool:
        with self._lock:
            row = self._row(job_id)
            if row.job.status is not JobStatus.RUNNING or row.job.phase is not Phase.QUEUED:
                return False  # planned already, or no longer Running
            stored = [_Chunk([task.to_json() for task in tasks]) for tasks in chunks]
            extra = dict(row.job.extra)
            if plan.get("warnings"):
                extra["warnings"] = _json_copy(builtins.list(plan["warnings"]))
            row.job = replace(
                row.job,
                phase=Phase.HARVESTING if stored else Phase.FINALIZING,
                chunks_total=len(stored),
                segments_total=segments_total,
                updated_at=self._clock(),
                extra=extra,
            )
            row.plan = _json_copy(dict(plan))
            row.chunks = stored
            self._queue(outbox)
            return True

    def get_plan(self, job_id: str, with_tasks: bool = True) -> dict[str, Any]:
        with self._lock:
            row = self._rows.get(job_id)
            if row is None or row.plan is None:
                raise JobNotFound(f"harvest job {job_id} has no plan")
            result: dict[str, Any] = copy.deepcopy(row.plan)
            if not with_tasks:
                result.pop("tasks", None)
            elif result.get(TASKS_IN_CHUNKS):
                # As the SQL adapter does: the tasks are stored once, in the chunks.
                result["tasks"] = [copy.deepcopy(task) for chunk in row.chunks for task in chunk.tasks]
            return result

    def get_chunk(self, job_id: str, index: int) -> ChunkRecord:
        with self._lock:
            chunk = self._chunk(job_id, index)
            tasks = [DownloadTask.from_json(task) for task in chunk.tasks]
            return ChunkRecord(job_id, index, tasks, chunk.done, chunk.segments, chunk.bytes)

    def complete_chunk(
        self, job_id: str, index: int, segments: int, nbytes: int, outbox_if_last: Sequence[Message]
    ) -> bool:
        with self._lock:
            chunk = self._chunk(job_id, index)
            if chunk.done:
                return False  # a repeated delivery: this chunk was counted already
            chunk.done, chunk.segments, chunk.bytes = True, segments, nbytes
            row = self._rows[job_id]
            job = row.job
            running = job.status is JobStatus.RUNNING
            finalizing = job.chunks_done + 1 >= job.chunks_total and running and job.phase is Phase.HARVESTING
            row.job = job = replace(
                job,
                chunks_done=job.chunks_done + 1,
                segments_done=job.segments_done + segments,
                bytes_done=job.bytes_done + nbytes,
                updated_at=self._clock(),
                phase=Phase.FINALIZING if finalizing else job.phase,
            )
            last = job.chunks_done == job.chunks_total and running
            if last:
                self._queue(outbox_if_last)
            return last

    def add_progress(self, job_id: str, segments: int, nbytes: int) -> None:
        with self._lock:
            row = self._rows.get(job_id)
            if row is None:
                return  # as an UPDATE of no row: progress for a deleted job is dropped
            row.live_segments += segments
            row.live_bytes += nbytes
            row.job = replace(row.job, updated_at=self._clock())

    # --- CallbackLedger ---------------------------------------------------------------------------

    def claim_callback(self, job_id: str, stale_after: float) -> CallbackClaim:
        with self._lock:
            row = self._row(job_id)
            now = self._clock()
            ended = row.job.status is not JobStatus.RUNNING
            if not ended or not row.job.callback_url:
                return CallbackClaim.SETTLED
            stale = row.callback_status == _CLAIMED and row.job.updated_at < now - stale_after
            if row.callback_status == "" or stale:
                row.callback_status = _CLAIMED
                row.job = replace(row.job, updated_at=now)
                return CallbackClaim.TAKEN
            return CallbackClaim.HELD if row.callback_status == _CLAIMED else CallbackClaim.SETTLED

    def record_callback(self, job_id: str, outcome: str) -> None:
        with self._lock:
            row = self._row(job_id)
            row.callback_status = outcome
            row.job = replace(row.job, updated_at=self._clock())

    # --- RunningJobs ------------------------------------------------------------------------------

    def running_jobs(self, updated_before: float) -> builtins.list[HarvestJob]:
        with self._lock:
            jobs = [
                self._read(row)
                for row in self._rows.values()
                if row.job.status is JobStatus.RUNNING and row.job.updated_at < updated_before
            ]
        return sorted(jobs, key=lambda job: (job.updated_at, job.id))

    # --- Outbox -----------------------------------------------------------------------------------

    def pending_outbox(self, limit: int) -> builtins.list[tuple[int, Message]]:
        with self._lock:
            return [(outbox_id, _copy_message(message)) for outbox_id, message in self._outbox[:limit]]

    def delete_outbox(self, ids: Sequence[int]) -> None:
        gone = set(ids)
        with self._lock:
            self._outbox = [
                (outbox_id, message) for outbox_id, message in self._outbox if outbox_id not in gone
            ]

    # --- helpers ----------------------------------------------------------------------------------

    def _row(self, job_id: str) -> _JobRow:
        row = self._rows.get(job_id)
        if row is None:
            raise JobNotFound(f"harvest job {job_id} not found")
        return row

    def _chunk(self, job_id: str, index: int) -> _Chunk:
        row = self._rows.get(job_id)
        if row is None or not 0 <= index < len(row.chunks):
            raise JobNotFound(f"harvest job {job_id} has no chunk {index}")
        return row.chunks[index]

    @staticmethod
    def _read(row: _JobRow) -> HarvestJob:
        extra = copy.deepcopy(row.job.extra)
        # Only once add_progress has counted something, so a fresh job reads back equal to what was created.
        extra.update(
            {
                key: value
                for key, value in zip(LIVE_KEYS, (row.live_segments, row.live_bytes), strict=True)
                if value
            }
        )
        status = "" if row.callback_status == _CLAIMED else row.callback_status
        return replace(row.job, extra=extra, callback_status=status)

    def _queue(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self._outbox.append((self._next_outbox_id, _copy_message(message)))
            self._next_outbox_id += 1


def _copy_message(message: Message) -> Message:
    return Message(message.topic, _json_copy(message.body), message.key)


# --- the queue ------------------------------------------------------------------------------------

READY, LEASED, DEAD = "ready", "leased", "dead"


@dataclass
class _Queued:
    id: int
    message: Message
    visible_at: float
    attempts: int = 0
    state: str = READY
    last_error: str = ""
    reported: bool = False


class MemoryQueue:
    """ports.LeaseQueue in a list: at-least-once delivery with leases, nack delays and dead letters."""

    def __init__(self, clock: Callable[[], float], max_attempts: int = 5) -> None:
        self._clock = clock
        self._max_attempts = max_attempts
        self._lock = threading.Lock()
        self._messages: dict[int, _Queued] = {}
        self._next_id = 1

    def publish(self, messages: Sequence[Message]) -> None:
        with self._lock:
            now = self._clock()
            for message in messages:
                self._messages[self._next_id] = _Queued(self._next_id, _copy_message(message), now)
                self._next_id += 1

    def receive(
        self, max_messages: int, visibility_timeout: float, topics: Sequence[str] | None = None
    ) -> builtins.list[Delivery]:
        with self._lock:
            now = self._clock()
            self._bury_exhausted(now)
            leased: builtins.list[Delivery] = []
            for queued in self._messages.values():  # in id order: dicts keep insertion order
                if len(leased) >= max_messages:
                    break
                if queued.state == DEAD or queued.visible_at > now or queued.attempts >= self._max_attempts:
                    continue
                if topics is not None and queued.message.topic not in topics:
                    continue
                queued.state, queued.attempts = LEASED, queued.attempts + 1
                queued.visible_at = now + visibility_timeout
                leased.append(self._delivery(queued))
            return leased

    def extend(self, delivery_id: int, visibility_timeout: float) -> None:
        with self._lock:
            queued = self._messages.get(delivery_id)
            if queued is not None and queued.state == LEASED:
                queued.visible_at = self._clock() + visibility_timeout

    def release(self, delivery_id: int) -> None:
        with self._lock:
            queued = self._messages.get(delivery_id)
            if queued is not None and queued.state == LEASED:
                queued.state, queued.visible_at = READY, self._clock()
                queued.attempts = max(0, queued.attempts - 1)

    def ack(self, delivery_id: int) -> None:
        # Deletes even a message dead-lettered meanwhile: the consumer did finish the work after all.
        with self._lock:
            self._messages.pop(delivery_id, None)

    def nack(self, delivery_id: int, error: str, delay: float) -> bool:
        with self._lock:
            queued = self._messages.get(delivery_id)
            if queued is None or queued.state == DEAD:
                return False  # acked already, or dead already: nothing changed
            queued.state = DEAD if queued.attempts >= self._max_attempts else READY
            queued.visible_at, queued.last_error = self._clock() + delay, error
            return queued.state == DEAD

    def dead_letters(self) -> builtins.list[tuple[Delivery, str]]:
        with self._lock:
            return [(self._delivery(q), q.last_error) for q in self._messages.values() if q.state == DEAD]

    def pop_dead_letters(self) -> builtins.list[tuple[Delivery, str]]:
        with self._lock:
            popped = [q for q in self._messages.values() if q.state == DEAD and not q.reported]
            for queued in popped:
                queued.reported = True
            return [(self._delivery(q), q.last_error) for q in popped]

    def pending_count(self) -> int:
        """Messages not yet acked nor dead (ready or leased)."""
        counts = self.counts()
        return counts[READY] + counts[LEASED]

    def counts(self) -> dict[str, int]:
        with self._lock:
            states = [queued.state for queued in self._messages.values()]
        return {state: states.count(state) for state in (READY, LEASED, DEAD)}

    def messages(self) -> builtins.list[Message]:
        """Every message not yet acked (dead ones included), in publish order: what a test inspects."""
        with self._lock:
            return [_copy_message(queued.message) for queued in self._messages.values()]

    def _bury_exhausted(self, now: float) -> None:
        """Dead-letter messages whose last allowed lease ran out: no consumer will finish them."""
        for queued in self._messages.values():
            if queued.state == LEASED and queued.visible_at <= now and queued.attempts >= self._max_attempts:
                queued.state = DEAD
                queued.last_error = f"lease expired after {queued.attempts} attempts"

    @staticmethod
    def _delivery(queued: _Queued) -> Delivery:
        return Delivery(queued.id, _copy_message(queued.message), queued.attempts)


# --- the object store -------------------------------------------------------------------------------


class MemoryObjectStore:
    """ports.ObjectStore in a dict, with the adapters' key rules; remembers what is not yet synced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str], tuple[bytes, str]] = {}  # (bucket, key) -> (data, type)
        self.unsynced: set[tuple[str, str]] = set()  # written with durable=False, not yet synced

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        self.put_stream(bucket, key, [data], content_type)

    def put_stream(
        self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str, durable: bool = True
    ) -> int:
        where = (check_bucket(bucket), check_key(key))
        data = b"".join(chunks)  # an exception here leaves the old object (or none) in place
        with self._lock:
            self._objects[where] = (data, content_type)
            if durable:
                self.unsynced.discard(where)
            else:
                self.unsynced.add(where)
        return len(data)

    def sync(self, bucket: str, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self.unsynced.discard((check_bucket(bucket), check_key(key)))

    def size(self, bucket: str, key: str) -> int | None:
        with self._lock:
            stored = self._objects.get((check_bucket(bucket), check_key(key)))
        return None if stored is None else len(stored[0])

    def get(self, bucket: str, key: str) -> bytes:
        with self._lock:
            stored = self._objects.get((check_bucket(bucket), check_key(key)))
        if stored is None:
            raise StorageError(f"no such object {bucket}/{key}")
        return stored[0]

    def list(self, bucket: str, prefix: str) -> builtins.list[tuple[str, int]]:
        check_bucket(bucket)
        check_prefix(prefix)
        with self._lock:
            return sorted(
                (key, len(data))
                for (b, key), (data, _) in self._objects.items()
                if b == bucket and key.startswith(prefix)
            )

    def content_type(self, bucket: str, key: str) -> str:
        """The content type the object was written with (a test's view; COS keeps it too)."""
        with self._lock:
            return self._objects[(bucket, key)][1]


# --- the origin -------------------------------------------------------------------------------------


@dataclass
class Answer:
    """What the origin does for one URL: send `body` (or its byte range), or fail with `status`.

    `delay` seconds pass on the test's clock before the answer (no real sleeping); `during` runs
    once the request is under way (a test cancels a job there, or waits for another fetch).
    """

    body: bytes = b""
    status: int = 200
    delay: float = 0.0
    during: Callable[[], None] | None = None


class ScriptedOrigin:
    """ports.Origin that answers from a script, after the retry policy: a failure here is final.

    Records every request; `in_flight` counts the fetches started and not yet ended, so a test can
    tell whether a step returned with downloads still running.
    """

    def __init__(self, clock: Any = None) -> None:
        self._clock = clock  # a ManualClock (anything with advance()); None: delays are not allowed
        self._answers: dict[str, Answer] = {}
        self._lock = threading.Lock()
        self.requests: builtins.list[str] = []
        self.headers_seen: builtins.list[dict[str, str]] = []  # each request's headers, in order
        self.in_flight = 0

    def serve(self, url: str, body: bytes | str = b"", **answer: Any) -> None:
        data = body.encode() if isinstance(body, str) else body
        self._answers[url] = Answer(data, **answer)

    def get_text(self, url: str, headers: Mapping[str, str]) -> str:
        return self.get_playlist(url, headers).text

    def get_playlist(self, url: str, headers: Mapping[str, str]) -> FetchedPlaylist:
        answer = self._answer(url, headers)
        if answer.status != 200:
            raise PlaylistError(f"playlist {url}: HTTP {answer.status}")
        return FetchedPlaylist(answer.body.decode(), url)

    def get_bytes(
        self, url: str, headers: Mapping[str, str], byte_range: tuple[int, int] | None = None
    ) -> bytes:
        return self.stream(url, headers, byte_range, b"".join)

    def stream(
        self,
        url: str,
        headers: Mapping[str, str],
        byte_range: tuple[int, int] | None,
        sink: Callable[[Iterator[bytes]], T],
    ) -> T:
        with self._lock:
            self.in_flight += 1
        try:
            answer = self._answer(url, headers)
            if answer.status != 200:
                raise SegmentFetchError(f"segment {url}: HTTP {answer.status}")
            data = answer.body
            if byte_range is not None:
                data = data[byte_range[0] : byte_range[0] + byte_range[1]]
            return sink(iter([data[:1], data[1:]]) if len(data) > 1 else iter([data]))
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, url: str, headers: Mapping[str, str]) -> Answer:
        with self._lock:
            self.requests.append(url)
            self.headers_seen.append(dict(headers))
        answer = self._answers.get(url, Answer(status=404))
        if answer.delay:
            self._clock.advance(answer.delay)
        if answer.during is not None:
            answer.during()
        return answer


# --- callbacks ----------------------------------------------------------------------------------------


class RecordingNotifier:
    """ports.Notifier that records each delivery and answers `outcome` (delivered | failed | refused)."""

    def __init__(self, outcome: str = "delivered: HTTP 200 after 1 attempt") -> None:
        self.outcome = outcome
        self.sent: builtins.list[tuple[str, dict[str, Any]]] = []

    def notify(self, url: str, payload: dict[str, Any]) -> str:
        self.sent.append((url, copy.deepcopy(payload)))
        return self.outcome
