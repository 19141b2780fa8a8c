"""The queue pump of `harvest serve` on a real SQL queue: it outlives database errors, and callback
deliveries have consumers of their own."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.support.polling import eventually

from harvest.adapters.relay import OutboxRelay
from harvest.adapters.sql import Database, SqlJobStore
from harvest.adapters.sql.queue import SqlQueue
from harvest.domain.job import TOPIC_CALLBACK, TOPIC_WORK, callback_message, plan_message
from harvest.errors import Unavailable
from harvest.local.pump import PumpConfig, QueuePump
from harvest.triggers import parse_ckafka_event


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


def job_ids(event: Mapping[str, Any]) -> list[str]:
    return [record.message.body["job_id"] for record in parse_ckafka_event(event) if record.message]


def test_acks_the_database_refuses_are_retried_and_the_consumer_lives_on(database: Database) -> None:
    # GIVEN one consumer on a queue whose first three acks fail as if the database were restarting
    queue = FlakyQueue(database, failures=3)
    handled: list[str] = []
    pump = start_pump(queue, database, {TOPIC_WORK: lambda event, context: handled.extend(job_ids(event))}, 1)
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

    def callback(event: Mapping[str, Any], context: Any) -> None:
        started.set()
        release.wait(20)

    pump = start_pump(
        queue,
        database,
        {TOPIC_CALLBACK: callback, TOPIC_WORK: lambda event, context: handled.extend(job_ids(event))},
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
