"""A message queue in a SQL table: at-least-once delivery with leases, retries and dead letters.

A row is `ready` until a consumer leases it; a lease hides it until `visible_at`. Ack deletes the
row; nack makes it ready again later, or dead once it has used its attempts. A consumer that dies
mid-message never acks, so its lease runs out and the message is delivered again (crash
recovery); if that lease was the message's last attempt, the next receive dead-letters it instead.

Claiming is race-free on both databases: PostgreSQL claimers lock rows with FOR UPDATE SKIP LOCKED
and pass each other; SQLite runs write transactions one at a time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence

from harvest.adapters.sql.db import Database, Row, Transaction, placeholders
from harvest.domain.job import Message
from harvest.ports import Delivery

READY, LEASED, DEAD = "ready", "leased", "dead"
_DELIVERY_COLUMNS = "id, topic, key, body, attempts, last_error"


def _delivery(row: Row) -> Delivery:
    message = Message(row["topic"], json.loads(row["body"]), row["key"])
    return Delivery(int(row["id"]), message, int(row["attempts"]))


class SqlQueue:
    """ports.ConsumableQueue on a Database, shared by every consumer thread and process."""

    def __init__(self, db: Database, max_attempts: int = 5, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._max_attempts = max_attempts
        self._clock = clock
        # Consumers in this process sleep on this instead of polling; another process's publish
        # is still seen on the next poll.
        self._published = threading.Condition()

    def publish(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        now = self._clock()
        with self._db.transaction() as tx:
            tx.executemany(
                "INSERT INTO queue_messages (topic, key, body, visible_at, attempts, max_attempts, state,"
                " created_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                [
                    (
                        message.topic,
                        message.key,
                        json.dumps(message.body),
                        now,
                        self._max_attempts,
                        READY,
                        now,
                    )
                    for message in messages
                ],
            )
        with self._published:
            self._published.notify_all()

    def wait_for_messages(self, timeout: float) -> None:
        """Sleep until this process publishes something, or `timeout` passes."""
        with self._published:
            self._published.wait(timeout)

    def receive(
        self, max_messages: int, visibility_timeout: float, topics: Sequence[str] | None = None
    ) -> list[Delivery]:
        """Lease up to `max_messages` visible messages (oldest first), optionally of some topics only."""
        now = self._clock()
        topic_filter, topic_params = "", tuple(topics or ())
        if topics is not None:
            topic_filter = f" AND topic IN ({placeholders(len(topics))})" if topics else " AND 1 = 0"
        with self._db.transaction() as tx:
            self._bury_exhausted(tx, now)
            rows = tx.execute(
                f"SELECT id FROM queue_messages WHERE state IN (?, ?) AND visible_at <= ?"
                f" AND attempts < max_attempts{topic_filter} ORDER BY id LIMIT ?{self._db.skip_locked}",
                (READY, LEASED, now, *topic_params, max_messages),
            )
            ids = [row["id"] for row in rows]
            if not ids:
                return []
            id_list = placeholders(len(ids))
            tx.execute(
                "UPDATE queue_messages SET state = ?, attempts = attempts + 1, visible_at = ?"
                f" WHERE id IN ({id_list})",
                (LEASED, now + visibility_timeout, *ids),
            )
            leased = tx.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM queue_messages WHERE id IN ({id_list}) ORDER BY id", ids
            )
        return [_delivery(row) for row in leased]

    def extend(self, delivery_id: int, visibility_timeout: float) -> None:
        """Keep a lease alive while its consumer is still working (the pump's heartbeat)."""
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE queue_messages SET visible_at = ? WHERE id = ? AND state = ?",
                (self._clock() + visibility_timeout, delivery_id, LEASED),
            )

    def release(self, delivery_id: int) -> None:
        """Make a leased message ready again at once, taking back the attempt its lease counted."""
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE queue_messages SET state = ?, visible_at = ?,"
                " attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END WHERE id = ? AND state = ?",
                (READY, self._clock(), delivery_id, LEASED),
            )
        with self._published:
            self._published.notify_all()

    def ack(self, delivery_id: int) -> None:
        # Deletes even a row dead-lettered meanwhile: the consumer did finish the work after all.
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM queue_messages WHERE id = ?", (delivery_id,))

    def nack(self, delivery_id: int, error: str, delay: float) -> bool:
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE queue_messages SET state = CASE WHEN attempts >= max_attempts THEN ? ELSE ? END,"
                " visible_at = ?, last_error = ? WHERE id = ? AND state <> ?",
                (DEAD, READY, self._clock() + delay, error, delivery_id, DEAD),
            )
            if tx.rowcount == 0:
                return False  # acked already, or dead already: nothing changed
            rows = tx.execute("SELECT state FROM queue_messages WHERE id = ?", (delivery_id,))
        return bool(rows[0]["state"] == DEAD)

    def dead_letters(self) -> list[tuple[Delivery, str]]:
        """Every dead message with its last error (read-only)."""
        with self._db.transaction(write=False) as tx:
            rows = tx.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM queue_messages WHERE state = ? ORDER BY id", (DEAD,)
            )
        return [(_delivery(row), row["last_error"]) for row in rows]

    def pop_dead_letters(self) -> list[tuple[Delivery, str]]:
        """Dead messages not returned by an earlier call, each returned once across all processes."""
        with self._db.transaction() as tx:
            rows = tx.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM queue_messages WHERE state = ? AND reported = 0"
                f" ORDER BY id{self._db.skip_locked}",
                (DEAD,),
            )
            if rows:
                ids = [row["id"] for row in rows]
                tx.execute(
                    f"UPDATE queue_messages SET reported = 1 WHERE id IN ({placeholders(len(ids))})", ids
                )
        return [(_delivery(row), row["last_error"]) for row in rows]

    def pending_count(self) -> int:
        """Messages not yet acked nor dead (ready or leased)."""
        counts = self.counts()
        return counts[READY] + counts[LEASED]

    def counts(self) -> dict[str, int]:
        """Messages per state."""
        with self._db.transaction(write=False) as tx:
            rows = tx.execute("SELECT state, COUNT(*) AS n FROM queue_messages GROUP BY state")
        found = {row["state"]: int(row["n"]) for row in rows}
        return {state: found.get(state, 0) for state in (READY, LEASED, DEAD)}

    def _bury_exhausted(self, tx: Transaction, now: float) -> None:
        """Dead-letter messages whose last allowed lease ran out: no consumer will finish them."""
        rows = tx.execute(
            "SELECT id FROM queue_messages WHERE state = ? AND visible_at <= ? AND attempts >= max_attempts"
            f"{self._db.skip_locked}",
            (LEASED, now),
        )
        ids = [row["id"] for row in rows]
        if ids:
            tx.execute(
                "UPDATE queue_messages SET state = ?,"
                " last_error = 'lease expired after ' || attempts || ' attempts'"
                f" WHERE id IN ({placeholders(len(ids))})",
                (DEAD, *ids),
            )
