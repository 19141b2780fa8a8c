"""OutboxRelay: outbox rows reach the queue at least once, in order, and are then forgotten."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from tests.support.tasks import download_task

from harvest.adapters.relay import OutboxRelay
from harvest.adapters.sql.db import Database
from harvest.adapters.sql.jobstore import SqlJobStore
from harvest.adapters.sql.queue import SqlQueue
from harvest.domain.job import HarvestJob, Message, chunk_message, plan_message
from harvest.errors import QueueError

MakeJob = Callable[..., HarvestJob]
Concurrently = Callable[[Sequence[Callable[[], Any]]], list[Any]]


class BrokenQueue:
    """A queue whose broker is down: every publish fails."""

    def publish(self, messages: Sequence[Message]) -> None:
        raise QueueError("broker unreachable")


@pytest.fixture
def store(db: Database) -> SqlJobStore:
    return SqlJobStore(db)


@pytest.fixture
def queue(db: Database) -> SqlQueue:
    return SqlQueue(db)


def test_flush_publishes_in_order_then_empties_the_outbox(
    store: SqlJobStore, queue: SqlQueue, make_job: MakeJob
) -> None:
    # GIVEN a job whose create and plan queued three messages
    store.create(make_job("j"), [plan_message("j")])
    store.save_plan(
        "j",
        {},
        [[download_task("a")], [download_task("b")]],
        2,
        [chunk_message("j", 0), chunk_message("j", 1)],
    )
    # WHEN the relay flushes
    published = OutboxRelay(store, queue).flush()
    # THEN all three are on the queue in order and the outbox is empty
    assert published == 3
    assert [d.message for d in queue.receive(10, 60)] == [
        plan_message("j"),
        chunk_message("j", 0),
        chunk_message("j", 1),
    ]
    assert store.pending_outbox(10) == []
    assert OutboxRelay(store, queue).flush() == 0


def test_flush_respects_limit_and_drain_empties(
    store: SqlJobStore, queue: SqlQueue, make_job: MakeJob
) -> None:
    for n in range(5):
        store.create(make_job(f"j{n}"), [plan_message(f"j{n}")])
    relay = OutboxRelay(store, queue)
    assert relay.flush(limit=2) == 2
    assert relay.drain(batch=2) == 3
    assert [d.message.body["job_id"] for d in queue.receive(10, 60)] == [f"j{n}" for n in range(5)]


def test_failed_publish_keeps_messages_for_the_next_flush(
    store: SqlJobStore, queue: SqlQueue, make_job: MakeJob
) -> None:
    # GIVEN a pending message and a broker that is down
    store.create(make_job("kept"), [plan_message("kept")])
    # WHEN a flush fails to publish
    with pytest.raises(QueueError):
        OutboxRelay(store, BrokenQueue()).flush()
    # THEN the message is still pending, and a later flush delivers it
    assert [m for _, m in store.pending_outbox(10)] == [plan_message("kept")]
    assert OutboxRelay(store, queue).flush() == 1
    assert [d.message for d in queue.receive(10, 60)] == [plan_message("kept")]


def test_concurrent_flushes_lose_nothing(
    store: SqlJobStore, queue: SqlQueue, make_job: MakeJob, concurrently: Concurrently
) -> None:
    # GIVEN 120 pending messages
    for n in range(120):
        store.create(make_job(f"c{n}"), [plan_message(f"c{n}")])
    relay = OutboxRelay(store, queue)
    # WHEN six relays flush small batches at once until the outbox looks empty
    outcomes = concurrently([lambda: relay.drain(batch=7) for _ in range(6)])
    # THEN every message reached the queue at least once, and the outbox is empty
    assert all(isinstance(outcome, int) for outcome in outcomes), outcomes
    received = {d.message.body["job_id"] for d in queue.receive(1000, 60)}
    assert received == {f"c{n}" for n in range(120)}
    assert store.pending_outbox(10) == []
