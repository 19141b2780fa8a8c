"""The record loop of the queue functions (worker, finalizer) and of `harvest serve`'s queue pump.

Modelled on Powertools for AWS Lambda's BatchProcessor: a trigger's batch is read by a parser
injected into the processor (triggers.py: SCF's CKafka event, the local pump's deliveries), each
record goes to a record handler that runs one step or raises, and the outcome of every record is
kept in a `BatchResult`:

- **done**: the step ran (or was a no-op on a repeat: every step is idempotent);
- **failed**: the step raised. The exception is kept, and logged once at error level with its
  traceback, the record's ref and its job ID. Its neighbours still run;
- **unreadable**: no step this service knows. Logged at error level and reported, never run, so it
  cannot block a CKafka partition; the local pump dead-letters it after its attempts;
- **left**: not started, or interrupted part way (`Interrupted`), because the invocation's deadline
  came or the process is stopping; once one is left, so are the records after it. Not a failure:
  the record is left for redelivery.

Before each record the processor checks the time left: SCF's context gives `time_limit_in_ms` (no
remaining-time call), so the deadline is the invocation's start plus that limit less a margin
(`DEADLINE_MARGIN`, for downloads in flight to land and the function to return). Past it, this
record and the rest are left. A running chunk watches the same deadline between downloads.

A step that meets an outage of the database or the object store (`Unavailable`) is run again in
place with backoff (`through_outages`) until the dependency is back or the deadline nears, so a
database restart costs the job the restart's length, not its queue attempts; a dependency still
down at the deadline leaves the record for redelivery, as the deadline leaves any other.

How a result goes back to the trigger is the caller's: SCF's CKafka trigger has no partial-batch
response, so `process_trigger_batch` raises `BatchFailed` when any record failed or was left, and
SCF redelivers the whole batch (the records done are no-ops then). The local pump settles each
delivery on its own (local/pump.py).
"""

from __future__ import annotations

import enum
import logging
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from harvest.domain.job import Step
from harvest.errors import Unavailable
from harvest.logs import log_context
from harvest.ports import Handler
from harvest.triggers import TriggerRecord, parse_ckafka_event
from harvest.usecases.harvest import Interrupted

log = logging.getLogger(__name__)

B = TypeVar("B")  # what a trigger hands over: an event mapping, a list of deliveries

ShouldStop = Callable[[], bool]
# One step of one record: runs it or raises; long steps (a chunk) poll `should_stop` and raise
# Interrupted once it turns true.
RecordHandler = Callable[[Step, ShouldStop], None]

OUTAGE_FIRST_WAIT = 0.5
OUTAGE_MAX_WAIT = 5.0  # a dependency that comes back is used again within this long
DEADLINE_MARGIN = 60.0  # seconds of the time limit kept for downloads in flight and the return
DEFAULT_TIME_LIMIT = 900.0  # SCF's longest, when a context says nothing


def _never() -> bool:
    return False


def deadline_from(
    context: Mapping[str, Any] | None,
    margin: float = DEADLINE_MARGIN,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """A deadline on `clock`: now plus the context's `time_limit_in_ms` less `margin` (at least half
    the limit, so a short limit still leaves time to work)."""
    limit_ms = context.get("time_limit_in_ms") if isinstance(context, Mapping) else None
    limit = DEFAULT_TIME_LIMIT
    if isinstance(limit_ms, (int, float)) and not isinstance(limit_ms, bool) and limit_ms > 0:
        limit = float(limit_ms) / 1000.0
    return clock() + max(limit - margin, limit * 0.5)


def through_outages(
    step: Callable[[], object],
    deadline: float,
    stopping: ShouldStop = _never,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run `step`; while it raises Unavailable, wait (0.5 s doubling to 5 s) and run it again.

    Gives up, re-raising, once the next wait would pass `deadline` (on `clock`) or `stopping()`.
    """
    wait = OUTAGE_FIRST_WAIT
    while True:
        try:
            step()
            return
        except Unavailable as exc:
            if stopping() or clock() + wait > deadline:
                raise
            log.warning("%s; running the step again in %.1f s", exc.message, wait)
            sleep(wait)
            wait = min(OUTAGE_MAX_WAIT, wait * 2)


class Outcome(enum.Enum):
    DONE = "done"
    FAILED = "failed"  # raised: redelivered, and retried until the trigger gives up
    UNREADABLE = "unreadable"  # no known step: reported for dead-lettering, never run
    LEFT = "left"  # not started or interrupted at the deadline or shutdown: redelivered, not a failure


@dataclass(frozen=True)
class RecordResult:
    record: TriggerRecord
    outcome: Outcome
    error: str = ""  # why it failed, could not be read, or was left
    exception: BaseException | None = None  # FAILED: the exception itself, its __traceback__ included
    traceback: str = ""  # FAILED: the traceback as logged


@dataclass(frozen=True)
class BatchResult:
    records: tuple[RecordResult, ...]
    left_because: str = ""  # why records were left for redelivery, when some were

    def of(self, outcome: Outcome) -> list[RecordResult]:
        return [result for result in self.records if result.outcome is outcome]

    @property
    def must_redeliver(self) -> bool:
        """Some record failed or was left: the trigger has to deliver it again."""
        return any(result.outcome in (Outcome.FAILED, Outcome.LEFT) for result in self.records)

    def response(self) -> dict[str, Any]:
        """What a function returns for a batch that needs no redelivery (SCF logs it)."""
        unreadable = self.of(Outcome.UNREADABLE)
        return {
            "processed": len(self.of(Outcome.DONE)),
            "skipped": len(unreadable),
            "unreadable": [f"{result.record.ref}: {result.error}" for result in unreadable],
        }

    def describe(self) -> str:
        """One line on what must be redelivered and why."""
        parts = [f"{r.record.ref}: {r.error}" for r in self.of(Outcome.FAILED)]
        left = self.of(Outcome.LEFT)
        if left:
            parts.append(f"{len(left)} left for redelivery ({self.left_because})")
        return f"{len(self.records)} records: " + "; ".join(parts) if parts else "nothing to redeliver"


class BatchFailed(Exception):
    """Some records of the batch must be delivered again; SCF redelivers a batch whose handler raises."""

    def __init__(self, result: BatchResult) -> None:
        super().__init__(result.describe())
        self.result = result


class BatchProcessor(Generic[B]):
    """Reads a batch with `parse`, runs `handle` on each record's step, and says how each went."""

    def __init__(
        self,
        parse: Callable[[B], Iterable[TriggerRecord]],
        handle: RecordHandler,
        stopping: ShouldStop = _never,
        margin: float = DEADLINE_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._parse = parse
        self._handle = handle
        self._stopping = stopping
        self._margin = margin
        self._clock = clock
        self._sleep = sleep

    def process(self, batch: B, context: Mapping[str, Any] | None = None) -> BatchResult:
        """Every record of `batch`, within the time SCF's `context` (time_limit_in_ms) allows."""
        deadline = deadline_from(context, self._margin, self._clock)
        request_id = str(context.get("request_id") or "") if isinstance(context, Mapping) else ""
        results: list[RecordResult] = []
        left_because = ""
        with log_context(request_id=request_id):
            for record in self._parse(batch):
                left_because = left_because or self._halt(deadline)
                if left_because:
                    results.append(RecordResult(record, Outcome.LEFT, left_because))
                    continue
                result = self._one(record, deadline)
                if result.outcome is Outcome.LEFT:
                    left_because = result.error
                results.append(result)
            outcome = BatchResult(tuple(results), left_because)
            left = outcome.of(Outcome.LEFT)
            if left:
                log.warning(
                    "%d of %d records left for redelivery (%s): %s",
                    len(left),
                    len(results),
                    left_because,
                    ", ".join(result.record.ref for result in left[:10])
                    + (", ..." if len(left) > 10 else ""),
                )
        return outcome

    def _halt(self, deadline: float) -> str:
        """Why no record may start now, or "" when one may."""
        if self._stopping():
            return "the process is stopping"
        if self._clock() >= deadline:
            return f"the invocation's deadline is near: less than {self._margin:.0f} s of its time limit left"
        return ""

    def _one(self, record: TriggerRecord, deadline: float) -> RecordResult:
        if record.step is None:
            log.error("skipping %s: %s", record.ref, record.error)
            return RecordResult(record, Outcome.UNREADABLE, record.error)
        step = record.step

        def should_stop() -> bool:
            return self._stopping() or self._clock() >= deadline

        with log_context(job_id=record.job_id):
            try:
                run = partial(self._handle, step, should_stop)
                through_outages(run, deadline, self._stopping, self._sleep, self._clock)
            except Interrupted as exc:
                return self._left(record, f"{step.describe()} interrupted: {self._why_stopped()}", str(exc))
            except Unavailable as exc:  # still down when the time to wait it out ran out
                return self._left(record, f"{exc.message}, still when {self._why_stopped()}", "")
            # Any step's error is kept, with its traceback, in the result and logged by _failed;
            # the neighbours go on (Powertools' partial batch) and the queue retries this record.
            except Exception as exc:  # noqa: BLE001
                return self._failed(record, exc)
        return RecordResult(record, Outcome.DONE)

    def _why_stopped(self) -> str:
        return "the process is stopping" if self._stopping() else "the invocation's deadline came"

    def _left(self, record: TriggerRecord, why: str, detail: str) -> RecordResult:
        log.warning("%s left for redelivery: %s%s", record.ref, why, f" ({detail})" if detail else "")
        return RecordResult(record, Outcome.LEFT, why)

    def _failed(self, record: TriggerRecord, exc: Exception) -> RecordResult:
        log.error("record %s failed: %s: %s", record.ref, type(exc).__name__, exc, exc_info=exc)
        error = str(exc) or type(exc).__name__
        text = "".join(traceback.format_exception(exc))
        return RecordResult(record, Outcome.FAILED, error, exc, text)


def process_trigger_batch(
    event: Mapping[str, Any], context: Mapping[str, Any] | None, processor: BatchProcessor[Mapping[str, Any]]
) -> dict[str, Any]:
    """A CKafka-triggered function's answer: the summary, or BatchFailed so that SCF redelivers the
    batch (its trigger has no partial-batch response; the records done are no-ops the next time)."""
    result = processor.process(event, context)
    if result.must_redeliver:
        raise BatchFailed(result)
    return result.response()


def ckafka_function(handle: RecordHandler, clock: Callable[[], float] = time.monotonic) -> Handler:
    """An SCF function triggered by CKafka: each batch through the record loop, one step at a time."""
    processor = BatchProcessor(parse_ckafka_event, handle, clock=clock)

    def main_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        return process_trigger_batch(event, context, processor)

    return main_handler
