"""The harvest job record and its state machine.

The public status moves Running -> Completed | Failed exactly once, by a conditional write in the
JobStore. Internal progress (phase, chunk and segment counters) lives in extra fields, never in
extra public statuses.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from harvest.errors import InvalidTransition


class JobStatus(str, Enum):
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"


# The whole state machine: from each status, the statuses a conditional write may move it to.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.RUNNING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
}

DELETABLE: frozenset[JobStatus] = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})


def check_transition(current: JobStatus, target: JobStatus) -> None:
    """Raise InvalidTransition unless `current -> target` is allowed."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(f"job status cannot change from {current.value} to {target.value}")


class Phase(str, Enum):
    """Internal progress of a Running job (not part of the public API)."""

    QUEUED = "queued"  # created, plan message queued
    HARVESTING = "harvesting"  # planned; chunk messages queued
    FINALIZING = "finalizing"  # every chunk done; finalize message queued
    DONE = "done"  # Completed or Failed


@dataclass(frozen=True)
class HarvestJob:
    """One harvest job. Public fields echo what the user sent; the rest is bookkeeping."""

    id: str
    channel_name: str
    endpoint_name: str
    time_format: str
    start_time: str  # as the user sent it
    end_time: str
    start_epoch: float  # parsed window, epoch seconds
    end_epoch: float
    destination: str
    manifest: str
    callback_url: str
    channel_id: str
    region: str
    create_time: int
    status: JobStatus = JobStatus.RUNNING
    err_message: str = ""
    phase: Phase = Phase.QUEUED
    chunks_total: int = 0
    chunks_done: int = 0
    segments_total: int = 0
    segments_done: int = 0
    bytes_done: int = 0
    updated_at: float = 0.0
    finished_at: float = 0.0
    callback_status: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The HarvestJobResp model of the mdp 2020-05-27 API."""
        return {
            "ID": self.id,
            "ChannelName": self.channel_name,
            "EndpointName": self.endpoint_name,
            "TimeFormat": self.time_format,
            "StartTime": self.start_time,
            "EndTime": self.end_time,
            "Destination": self.destination,
            "Manifest": self.manifest,
            "Status": self.status.value,
            "ErrMessage": self.err_message,
            "CreateTime": self.create_time,
            "ChannelId": self.channel_id,
            "Region": self.region,
            "CallbackURL": self.callback_url,
        }

    def replace(self, **changes: Any) -> HarvestJob:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Message:
    """A queue message. Bodies stay tiny (ids only) to fit CKafka and SCF async event limits."""

    topic: str  # TOPIC_WORK, TOPIC_FINALIZE or TOPIC_CALLBACK
    body: dict[str, Any]
    key: str = ""  # partition key: the job ID keeps one job's messages in order on CKafka


TOPIC_WORK = "work"  # plan and chunk messages, consumed by the worker function
TOPIC_FINALIZE = "finalize"  # consumed by the finalizer function
# CallbackURL deliveries: their own topic, so a slow receiver never holds up a job's work. On SCF
# the finalizer function consumes them too; `harvest serve` gives them their own consumers.
TOPIC_CALLBACK = "callback"


class StepKind(enum.Enum):
    """What a queue message asks for; its body's `kind`."""

    PLAN = "plan"
    CHUNK = "chunk"
    FINALIZE = "finalize"
    CALLBACK = "callback"


class UnreadableMessage(ValueError):
    """A message body that is no step this service knows: it can never succeed."""


class MisroutedMessage(ValueError):
    """A known step delivered to a function that does not do it (a topic wired to the wrong one)."""


@dataclass(frozen=True)
class Step:
    """A message body, read: the one place that knows the body's shape (see `parse_step`)."""

    kind: StepKind
    job_id: str
    chunk: int = -1  # the chunk index of a CHUNK step; -1 otherwise

    def describe(self) -> str:
        return f"chunk {self.chunk}" if self.kind is StepKind.CHUNK else f"{self.kind.value} step"


def parse_step(body: Any) -> Step:
    """The step a message body asks for; UnreadableMessage naming what is wrong otherwise."""
    if not isinstance(body, dict):
        raise UnreadableMessage("the message body is not an object")
    job_id = body.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise UnreadableMessage("the message body has no job_id")
    try:
        kind = StepKind(body.get("kind"))
    except ValueError:
        raise UnreadableMessage(f"unknown message kind {str(body.get('kind'))[:32]!r}") from None
    if kind is not StepKind.CHUNK:
        return Step(kind, job_id)
    chunk = body.get("chunk")
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 0:
        raise UnreadableMessage("a chunk message without a chunk index")
    return Step(kind, job_id, chunk)


def describe_message(body: Any) -> str:
    """What a message asks for, in an operator's words: 'chunk 3', 'plan step', 'finalize step'."""
    try:
        return parse_step(body).describe()
    except UnreadableMessage as exc:
        return f"an unreadable message ({exc})"


def _body(kind: StepKind, job_id: str, **extra: Any) -> dict[str, Any]:
    return {"kind": kind.value, "job_id": job_id, **extra}


def plan_message(job_id: str) -> Message:
    return Message(TOPIC_WORK, _body(StepKind.PLAN, job_id), key=job_id)


def chunk_message(job_id: str, chunk: int) -> Message:
    return Message(TOPIC_WORK, _body(StepKind.CHUNK, job_id, chunk=chunk), key=job_id)


def finalize_message(job_id: str) -> Message:
    return Message(TOPIC_FINALIZE, _body(StepKind.FINALIZE, job_id), key=job_id)


class CallbackClaim(enum.Enum):
    """What claiming a job's CallbackURL delivery found."""

    TAKEN = "taken"  # the caller delivers it now
    HELD = "held"  # another deliverer holds a fresh claim: wait for its outcome, or for the claim to go stale
    SETTLED = "settled"  # nothing to deliver: an outcome is recorded, there is no CallbackURL, or no end yet


def callback_message(job_id: str) -> Message:
    return Message(TOPIC_CALLBACK, _body(StepKind.CALLBACK, job_id), key=job_id)
