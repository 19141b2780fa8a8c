"""The queue pump of `harvest serve`: SCF's CKafka trigger, on one machine.

N consumer threads lease messages from the SQL queue and run them through the same record loop
as the SCF functions (handlers/batch.py), with the worker's or finalizer's record handler and a
parser for deliveries (triggers.parse_deliveries). Each delivery is settled by its record's outcome:
done is acked; failed or unreadable is given back for redelivery with backoff, until the queue
dead-letters it, and then the job fails with a message that says which step could not be done;
left (the deadline SCF's time limit would set, or the pump stopping, came first) is released at
once without spending an attempt. While a record runs, its lease is extended, so a long chunk is
never handed to a second consumer, while a crashed process's leases expire quickly and its work
resumes elsewhere.

The queue lives in the database, so the pump must outlive the database's outages: a consumer
never dies of an error, and an ack or nack that meets one is retried with backoff until it lands
(or the process stops, and the lease runs out instead). A message is acked only after its handler
returned, that is after its work committed.

CallbackURL deliveries have consumers of their own (`callback_consumers`), so a receiver that is
slow to answer holds up only other callbacks, never a job's plan, chunks or finalize.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from harvest.domain.job import TOPIC_CALLBACK, TOPIC_FINALIZE, TOPIC_WORK
from harvest.handlers.batch import BatchProcessor, BatchResult, Outcome, RecordHandler
from harvest.ports import Delivery, LeaseQueue, Relay
from harvest.triggers import delivery_ref, parse_deliveries

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class PumpConfig:
    consumers: int = 4  # plan, chunk and finalize messages
    callback_consumers: int = 2  # CallbackURL deliveries only
    lease_seconds: float = 60.0  # extended every lease/3 while a handler runs
    idle_sleep: float = 0.25  # with no message: a publish in this process wakes consumers at once
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    housekeeping_every: float = 2.0  # outbox flush and dead-letter sweep
    handler_time_limit_ms: int = 900_000  # what SCF's context would say
    settle_max_wait: float = 2.0  # longest wait between tries of an ack or nack the database refused


class QueuePump:
    def __init__(
        self,
        queue: LeaseQueue,
        relay: Relay,
        handlers: Mapping[str, RecordHandler],
        on_dead_letter: Callable[[Delivery, str], None],
        config: PumpConfig = PumpConfig(),
    ) -> None:
        self._queue = queue
        self._relay = relay
        self._on_dead_letter = on_dead_letter
        self._config = config
        self._stop = threading.Event()
        self._processors = {
            topic: BatchProcessor(parse_deliveries, handle, self._stop.is_set)
            for topic, handle in handlers.items()
        }
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._busy_lock = threading.Lock()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        job_topics = (TOPIC_WORK, TOPIC_FINALIZE)
        self._threads = [
            threading.Thread(target=self._consume, args=(job_topics,), name=f"pump-{i}", daemon=True)
            for i in range(self._config.consumers)
        ]
        self._threads += [
            threading.Thread(target=self._consume, args=([TOPIC_CALLBACK],), name=f"pump-cb-{i}", daemon=True)
            for i in range(self._config.callback_consumers)
        ]
        self._threads.append(
            threading.Thread(target=self._housekeeping, name="pump-housekeeping", daemon=True)
        )
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop leasing new messages and wait for the ones in hand (their leases expire otherwise)."""
        self._stop.set()
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))

    def idle(self) -> bool:
        with self._busy_lock:
            return self._busy == 0

    # --- loops ----------------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        while not self._stop.wait(self._config.housekeeping_every):
            try:
                self._relay.flush()
                for delivery, error in self._queue.pop_dead_letters():
                    self._dead(delivery, error)
            # Any failure (a database outage, mostly): this thread must outlive it, and the next
            # round does the same work again.
            except Exception as exc:  # noqa: BLE001
                log.warning("pump housekeeping failed (%s: %s); will try again", type(exc).__name__, exc)

    def _consume(self, topics: Sequence[str]) -> None:
        while not self._stop.is_set():
            try:
                self._consume_once(topics)
            # Never let a consumer thread die: the process would stay up with nobody consuming.
            except Exception:
                log.exception("queue consumer failed; backing off")
                self._stop.wait(1.0)

    def _consume_once(self, topics: Sequence[str]) -> None:
        try:
            deliveries = self._queue.receive(1, self._config.lease_seconds, topics)
        # Any failure to receive (the queue's database away): back off and ask again.
        except Exception as exc:  # noqa: BLE001
            log.warning("queue receive failed (%s: %s); backing off", type(exc).__name__, exc)
            self._stop.wait(1.0)
            return
        if not deliveries:
            waiter = getattr(self._queue, "wait_for_messages", None)
            if waiter is not None:
                waiter(self._config.idle_sleep)
            else:
                self._stop.wait(self._config.idle_sleep)
            return
        for delivery in deliveries:
            self._deliver(delivery)

    def _settle(self, what: str, operation: Callable[[], T]) -> T | None:
        """Run an ack or nack until it lands; None if the process stops first (the lease then expires)."""
        wait = 0.25
        while True:
            try:
                return operation()
            # Any failure: an ack or nack must land eventually, whatever kept it from the queue.
            except Exception as exc:  # noqa: BLE001
                if self._stop.is_set():
                    log.warning("could not %s before stopping (%s); its lease will expire", what, exc)
                    return None
                log.warning("could not %s (%s); trying again in %.1f s", what, exc, wait)
                self._stop.wait(wait)
                wait = min(self._config.settle_max_wait, wait * 2)

    def _deliver(self, delivery: Delivery) -> None:
        processor = self._processors.get(delivery.message.topic)
        if processor is None:
            self._nack(delivery, f"no handler for topic {delivery.message.topic!r}")
            return
        with self._busy_lock:
            self._busy += 1
        done = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(delivery.id, done), daemon=True)
        heartbeat.start()
        try:
            result = processor.process([delivery], self._context(delivery))
        # The record loop keeps every record's error, so an exception here is a bug in the loop
        # itself: the message is retried (nacked with the error) and the pump goes on.
        except Exception as exc:
            done.set()
            log.exception("the record loop failed on message %s", delivery.id)
            self._nack(delivery, str(exc) or type(exc).__name__)
        else:
            done.set()
            self._settle_batch(result, [delivery])
        finally:
            heartbeat.join()
            with self._busy_lock:
                self._busy -= 1

    def _settle_batch(self, result: BatchResult, deliveries: Sequence[Delivery]) -> None:
        by_ref = {delivery_ref(delivery): delivery for delivery in deliveries}
        for record in result.records:
            delivery = by_ref[record.record.ref]
            if record.outcome is Outcome.DONE:
                self._settle(f"ack message {delivery.id}", partial(self._queue.ack, delivery.id))
            elif record.outcome is Outcome.LEFT:
                # Stopped by the deadline or a shutdown, not by the message: no attempt spent.
                self._settle(f"release message {delivery.id}", partial(self._queue.release, delivery.id))
            else:
                # Failed, or unreadable (never acked in silence): retried, then a dead letter.
                self._nack(delivery, record.error)

    def _heartbeat(self, delivery_id: int, done: threading.Event) -> None:
        interval = self._config.lease_seconds / 3
        while not done.wait(interval):
            try:
                self._queue.extend(delivery_id, self._config.lease_seconds)
            # Any failure (an outage, mostly): the next beat tries again, the lease has slack.
            except Exception as exc:  # noqa: BLE001
                log.warning("could not extend the lease of message %s (%s)", delivery_id, exc)

    def _nack(self, delivery: Delivery, error: str) -> None:
        delay = min(
            self._config.retry_max_delay, self._config.retry_base_delay * 2 ** max(0, delivery.attempts - 1)
        )
        if self._stop.is_set():
            delay = 0.0  # interrupted by shutdown: the next process should pick it up at once
        if self._settle(f"nack message {delivery.id}", lambda: self._queue.nack(delivery.id, error, delay)):
            self._dead(delivery, error)

    def _dead(self, delivery: Delivery, error: str) -> None:
        log.error("message %s dead-lettered after %d attempts: %s", delivery.id, delivery.attempts, error)
        try:
            self._on_dead_letter(delivery, error)
        except Exception:
            log.exception("dead-letter handling failed for message %s", delivery.id)

    def _context(self, delivery: Delivery) -> dict[str, Any]:
        topic = delivery.message.topic
        return {
            "request_id": f"local-{delivery.id}-{delivery.attempts}",
            "function_name": "worker" if topic == TOPIC_WORK else "finalizer",
            "time_limit_in_ms": self._config.handler_time_limit_ms,
            "memory_limit_in_mb": 1024,
            "namespace": "local",
        }
