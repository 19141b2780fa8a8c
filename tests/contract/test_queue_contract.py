"""SqlQueue against ports.LeaseQueue, on SQLite and PostgreSQL (see conftest's `db` fixture): leases,
redelivery, nack and dead letters. What every backend, CKafka included, promises about publishing
and consuming is in test_queue_backends_contract.py."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from harvest.adapters.sql.db import Database
from harvest.adapters.sql.queue import SqlQueue
from harvest.domain.job import TOPIC_FINALIZE, Message, chunk_message, finalize_message, plan_message

Concurrently = Callable[[Sequence[Callable[[], Any]]], list[Any]]
LEASE = 60.0


@pytest.fixture
def queue(db: Database, clock: Any) -> SqlQueue:
    return SqlQueue(db, max_attempts=3, clock=clock)


def test_published_messages_are_received_in_order_and_acked_away(queue: SqlQueue) -> None:
    # GIVEN three published messages
    messages = [plan_message("a"), chunk_message("a", 0), finalize_message("a")]
    queue.publish(messages)
    # WHEN a consumer receives them
    deliveries = queue.receive(10, LEASE)
    # THEN they arrive in order, whole, on their first attempt
    assert [delivery.message for delivery in deliveries] == messages
    assert [delivery.attempts for delivery in deliveries] == [1, 1, 1]
    assert deliveries[2].message.topic == TOPIC_FINALIZE
    # AND once acked they are gone for good
    for delivery in deliveries:
        queue.ack(delivery.id)
    assert queue.pending_count() == 0
    assert queue.receive(10, LEASE) == []


def test_receive_respects_max_messages_and_topics(queue: SqlQueue) -> None:
    queue.publish([plan_message("a"), finalize_message("a"), plan_message("b")])
    first = queue.receive(1, LEASE)
    finalizes = queue.receive(10, LEASE, topics=[TOPIC_FINALIZE])
    rest = queue.receive(10, LEASE)
    assert [d.message for d in first] == [plan_message("a")]
    assert [d.message for d in finalizes] == [finalize_message("a")]
    assert [d.message for d in rest] == [plan_message("b")]


def test_unacked_message_is_redelivered_after_its_lease(queue: SqlQueue, clock: Any) -> None:
    # GIVEN a message leased by a consumer that then crashed (never acked)
    queue.publish([plan_message("crash")])
    (leased,) = queue.receive(1, LEASE)
    # WHEN another consumer looks before the lease ends, and again after
    clock.advance(LEASE - 1)
    during = queue.receive(1, LEASE)
    clock.advance(2)
    after = queue.receive(1, LEASE)
    # THEN it was hidden during the lease and delivered again afterwards, as attempt 2
    assert during == []
    assert [(d.id, d.message, d.attempts) for d in after] == [(leased.id, plan_message("crash"), 2)]


def test_a_released_message_is_redelivered_at_once_without_spending_an_attempt(queue: SqlQueue) -> None:
    # GIVEN a message on its last attempt (max_attempts=3), leased by a consumer that must stop
    queue.publish([chunk_message("left", 0)])
    for _ in range(2):
        (leased,) = queue.receive(1, LEASE)
        queue.nack(leased.id, "failed", 0.0)
    (last,) = queue.receive(1, LEASE)
    assert last.attempts == 3
    # WHEN it is released before its lease ends (a deadline or a shutdown, not a failure)
    queue.release(last.id)
    # THEN the next consumer gets it at once, on that same third attempt, and it is not dead
    (again,) = queue.receive(1, LEASE)
    assert (again.id, again.attempts) == (last.id, 3)
    assert queue.counts()["dead"] == 0
    # AND releasing a message no longer leased (acked meanwhile) changes nothing
    queue.ack(again.id)
    queue.release(again.id)
    assert queue.pending_count() == 0


def test_extended_lease_keeps_a_working_consumer_exclusive(queue: SqlQueue, clock: Any) -> None:
    # GIVEN a message whose consumer is still working when its first lease would end
    queue.publish([chunk_message("long", 0)])
    (leased,) = queue.receive(1, LEASE)
    clock.advance(LEASE - 1)
    queue.extend(leased.id, LEASE)
    # WHEN another consumer looks after the original lease has passed, then after the extension
    clock.advance(2)
    during = queue.receive(1, LEASE)
    clock.advance(LEASE)
    after = queue.receive(1, LEASE)
    # THEN the heartbeat hid it until the extended lease ran out
    assert during == []
    assert [d.id for d in after] == [leased.id]


def test_nack_delays_redelivery_and_counts_attempts(queue: SqlQueue, clock: Any) -> None:
    # GIVEN a message whose first attempt failed
    queue.publish([chunk_message("j", 4)])
    (first,) = queue.receive(1, LEASE)
    dead = queue.nack(first.id, "origin 503", delay=10)
    # WHEN consumers look before and after the delay
    early = queue.receive(1, LEASE)
    clock.advance(10)
    (second,) = queue.receive(1, LEASE)
    # THEN it came back only after the delay, as attempt 2
    assert (dead, early, second.id, second.attempts) == (False, [], first.id, 2)


def test_message_is_dead_lettered_after_max_attempts(queue: SqlQueue) -> None:
    # GIVEN a message that fails on every attempt (max_attempts=3)
    queue.publish([chunk_message("j", 0)])
    outcomes = []
    for _ in range(3):
        (delivery,) = queue.receive(1, LEASE)
        outcomes.append((delivery.attempts, queue.nack(delivery.id, f"boom {delivery.attempts}", delay=0)))
    # THEN the third nack dead-letters it, with its last error, and it is never delivered again
    assert outcomes == [(1, False), (2, False), (3, True)]
    assert queue.receive(1, LEASE) == []
    ((dead, error),) = queue.dead_letters()
    assert (dead.message, dead.attempts, error) == (chunk_message("j", 0), 3, "boom 3")
    assert queue.counts() == {"ready": 0, "leased": 0, "dead": 1}


def test_lease_expiring_on_the_last_attempt_dead_letters_once(queue: SqlQueue, clock: Any) -> None:
    # GIVEN a message whose consumers crashed on all three attempts
    queue.publish([plan_message("poison")])
    for _ in range(3):
        assert len(queue.receive(1, LEASE)) == 1
        clock.advance(LEASE + 1)
    # WHEN the next receive runs
    redelivered = queue.receive(1, LEASE)
    # THEN the message is dead, not delivered a fourth time, and reported exactly once
    assert redelivered == []
    popped = queue.pop_dead_letters()
    assert [(d.message, d.attempts, error) for d, error in popped] == [
        (plan_message("poison"), 3, "lease expired after 3 attempts")
    ]
    assert queue.pop_dead_letters() == []
    assert [d.message for d, _ in queue.dead_letters()] == [plan_message("poison")]


def test_ack_and_nack_of_unknown_ids_change_nothing(queue: SqlQueue) -> None:
    queue.publish([plan_message("x")])
    queue.ack(999_999)
    assert queue.nack(999_999, "gone", 0) is False
    assert queue.pending_count() == 1


def test_two_consumers_never_get_the_same_message(db_url: str, clock: Any) -> None:
    # GIVEN 300 messages and two independent Database handles (two "processes"), four threads each
    first, second = Database.connect(db_url), Database.connect(db_url)
    queues = [SqlQueue(first, clock=clock), SqlQueue(second, clock=clock)]
    queues[0].publish([chunk_message("many", n) for n in range(300)])
    received: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def consume(queue: SqlQueue) -> None:
        barrier.wait()
        while deliveries := queue.receive(5, LEASE):
            for delivery in deliveries:
                with lock:
                    received.append(delivery.message.body["chunk"])
                queue.ack(delivery.id)

    threads = [threading.Thread(target=consume, args=(queues[n % 2],)) for n in range(8)]
    # WHEN they all consume at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN every message was received exactly once
    assert sorted(received) == list(range(300))
    assert queues[1].pending_count() == 0
    first.close()
    second.close()


def test_restart_keeps_queued_and_leased_work(db_url: str, clock: Any) -> None:
    # GIVEN two messages, one leased by a consumer when the process stopped
    before = Database.connect(db_url)
    SqlQueue(before, clock=clock).publish([plan_message("r1"), plan_message("r2")])
    assert len(SqlQueue(before, clock=clock).receive(1, LEASE)) == 1
    before.close()
    # WHEN the process starts again and the old lease has run out
    after = Database.connect(db_url)
    clock.advance(LEASE + 1)
    deliveries = SqlQueue(after, clock=clock).receive(10, LEASE)
    # THEN both messages are delivered
    assert sorted(d.message.body["job_id"] for d in deliveries) == ["r1", "r2"]
    after.close()


def test_publish_of_nothing_is_a_no_op(queue: SqlQueue) -> None:
    queue.publish([])
    queue.publish([Message("work", {"kind": "plan", "job_id": "only"}, "only")])
    assert queue.pending_count() == 1
