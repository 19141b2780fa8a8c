"""The queue pump of `harvest serve` on a real SQL queue: it outlives database errors, and callback
deliveries have consumers of their own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.support.polling import eventually

from harvest.adapters.relay import OutboxRelay
from harvest.adapters.sql import Database, SqlJobStore
from harvest.adapters.sql.queue import SqlQueue
from harvest.domain.job import TOPIC_CALLBACK, TOPIC_WORK, Step, callback_message, plan_message
from harvest.errors import Unavailable
from harvest.handlers.batch import ShouldStop
from harvest.local.pump import PumpConfig, QueuePump
from harvest.ports import Delivery
from harvest.usecases.harvest import Interrupted


class FlakyQueue(SqlQueue):
    """A SqlQueue whose first `failures` acks and nacks raise Unavailable, as during a database restart."""

    def __init__(self, db: Database, failures: int) -> None:
        super().__init__(db, max_attempts=3)
        self.failures = failures
        self.refused: list[str] = []

    def _maybe_fail(self, what: str) -> None:
        if len(self.refused) < self.failures:
            self.refused.append(what)
            raise Unavailable("PostgreSQL is unavailable: connection refused")

    def ack(self, delivery_id: int) -> None:
        self._maybe_fail("ack")
        super().ack(delivery_id)

    def nack(self, delivery_id: int, error: str, delay: float) -> bool:
        self._maybe_fail("nack")
        return super().nack(delivery_id, error, delay)


class CountingQueue(SqlQueue):
    """A SqlQueue that records the attempt number of every delivery it hands out."""

    def __init__(self, db: Database, max_attempts: int) -> None:
        super().__init__(db, max_attempts=max_attempts)
        self.attempts: list[int] = []

    def receive(
        self, max_messages: int, visibility_timeout: float, topics: Sequence[str] | None = None
    ) -> list[Delivery]:
        deliveries = super().receive(max_messages, visibility_timeout, topics)
        self.attempts += [delivery.attempts for delivery in deliveries]
        return deliveries


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database.connect(f"sqlite:///{tmp_path / 'pump.db'}")
    yield db
    db.close()


def start_pump(queue: SqlQueue, db: Database, handlers: Mapping[str, Any], consumers: int) -> QueuePump:
    config = PumpConfig(consumers=consumers, callback_consumers=1, lease_seconds=5, retry_base_delay=0.01)
    pump = QueuePump(queue, OutboxRelay(SqlJobStore(db), queue), handlers, lambda d, e: None, config)
    pump.start()
    return pump


def recording(handled: list[str]) -> Callable[[Step, ShouldStop], None]:
    def handle(step: Step, should_stop: ShouldStop) -> None:
        handled.append(step.job_id)

    return handle


def test_acks_the_database_refuses_are_retried_and_the_consumer_lives_on(database: Database) -> None:
    # GIVEN one consumer on a queue whose first three acks fail as if the database were restarting
    queue = FlakyQueue(database, failures=3)
    handled: list[str] = []
    pump = start_pump(queue, database, {TOPIC_WORK: recording(handled)}, 1)
    try:
        # WHEN two messages are published one after the other
        queue.publish([plan_message("first")])
        eventually(lambda: queue.pending_count() == 0, 20, "the first message to be acked")
        queue.publish([plan_message("second")])
        eventually(lambda: queue.pending_count() == 0, 20, "the second message to be acked")
    finally:
        pump.stop(5)
    # THEN the first was handled once and acked once the database answered; the same consumer went on
    assert queue.refused == ["ack", "ack", "ack"]
    assert handled == ["first", "second"]
    assert queue.counts()["dead"] == 0


def test_a_handler_blocked_on_a_callback_holds_up_no_job_message(database: Database) -> None:
    # GIVEN one job consumer, and a callback handler that blocks until released
    queue = FlakyQueue(database, failures=0)
    started, release = threading.Event(), threading.Event()
    handled: list[str] = []

    def callback(step: Step, should_stop: ShouldStop) -> None:
        started.set()
        release.wait(20)

    pump = start_pump(
        queue,
        database,
        {TOPIC_CALLBACK: callback, TOPIC_WORK: recording(handled)},
        consumers=1,
    )
    try:
        # WHEN a callback is being delivered (and blocks) and a job's plan message is queued
        queue.publish([callback_message("slow-receiver")])
        eventually(started.is_set, 20, "the callback delivery to start")
        queue.publish([plan_message("other-job")])
        # THEN the plan message is handled while the callback still blocks
        eventually(lambda: handled == ["other-job"], 20, "the plan message")
        assert not release.is_set()
        assert queue.counts()["leased"] == 1
    finally:
        release.set()
        pump.stop(5)


def test_a_record_stopped_by_shutdown_is_released_without_spending_an_attempt(database: Database) -> None:
    # GIVEN a queue allowing one attempt, and a chunk handler that runs until told to stop
    queue = CountingQueue(database, max_attempts=1)
    started = threading.Event()

    def long_chunk(step: Step, should_stop: ShouldStop) -> None:
        started.set()
        while not should_stop():
            time.sleep(0.01)
        raise Interrupted("stopped before v0/7.ts")

    pump = start_pump(queue, database, {TOPIC_WORK: long_chunk}, consumers=1)
    queue.publish([plan_message("interrupted")])
    eventually(started.is_set, 20, "the record to start")
    # WHEN the pump stops while the record runs
    pump.stop(5)
    # THEN the message is ready again, not dead, and its one attempt is still to come
    assert queue.counts() == {"ready": 1, "leased": 0, "dead": 0}
    # AND a pump started afterwards does it, on attempt 1
    handled: list[str] = []
    pump = start_pump(queue, database, {TOPIC_WORK: recording(handled)}, consumers=1)
    try:
        eventually(lambda: queue.pending_count() == 0, 20, "the released message to be done")
    finally:
        pump.stop(5)
    assert handled == ["interrupted"]
    assert queue.attempts == [1, 1]
    assert queue.counts()["dead"] == 0


def test_a_failing_record_is_given_back_with_its_error_and_dead_lettered_after_its_attempts(
    database: Database,
) -> None:
    # GIVEN a queue allowing two attempts and a handler that always fails
    queue = SqlQueue(database, max_attempts=2)
    calls: list[str] = []

    def broken(step: Step, should_stop: ShouldStop) -> None:
        calls.append(step.job_id)
        raise OSError(28, "No space left on device")

    pump = start_pump(queue, database, {TOPIC_WORK: broken}, consumers=1)
    try:
        # WHEN its message is published
        queue.publish([plan_message("full-disk")])
        eventually(lambda: queue.counts()["dead"] == 1, 20, "the dead letter")
    finally:
        pump.stop(5)
    # THEN it ran once per attempt, and the dead letter carries the error itself
    assert calls == ["full-disk", "full-disk"]
    ((delivery, error),) = queue.dead_letters()
    assert delivery.message == plan_message("full-disk")
    assert error == "[Errno 28] No space left on device"
