"""ports.Operations on SQL: what operators and /metrics read from the job table and the SQL queue.

Read-mostly queries over the tables `SqlJobStore` and `SqlQueue` write; the one write, `replay`,
hands a dead message back to the queue exactly as a fresh publish would (state ready, no attempts
used, visible now), keeping its last error for the record. The same statements run on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable, Sequence

from harvest.adapters.sql.db import Database, Row, placeholders
from harvest.adapters.sql.queue import DEAD, LEASED, READY
from harvest.domain.job import describe_message
from harvest.ports import DeadLetter, TopicState

_DEAD_COLUMNS = "id, topic, key, body, attempts, last_error, created_at"


def _dead_letter(row: Row) -> DeadLetter:
    try:
        body = json.loads(row["body"])
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    job_id = body.get("job_id")
    return DeadLetter(
        id=int(row["id"]),
        topic=str(row["topic"]),
        job_id=job_id if isinstance(job_id, str) else str(row["key"]),
        step=describe_message(body),
        attempts=int(row["attempts"]),
        error=str(row["last_error"]),
        created_at=float(row["created_at"]),
    )


class SqlOperations:
    """ports.Operations for the SQL job table and queue (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def dead_letters(self, job_id: str | None = None) -> builtins.list[DeadLetter]:
        # Messages are keyed by their job's ID (the CKafka partition key), so one job's are found by key.
        where, params = ("state = ?", [DEAD]) if job_id is None else ("state = ? AND key = ?", [DEAD, job_id])
        with self._db.transaction(write=False) as tx:
            rows = tx.execute(f"SELECT {_DEAD_COLUMNS} FROM queue_messages WHERE {where} ORDER BY id", params)
        return [_dead_letter(row) for row in rows]

    def replay(self, ids: Sequence[int] | None) -> builtins.list[DeadLetter]:
        with self._db.transaction() as tx:
            if ids is None:
                rows = tx.execute(
                    f"SELECT {_DEAD_COLUMNS} FROM queue_messages WHERE state = ?"
                    f" ORDER BY id{self._db.skip_locked}",
                    (DEAD,),
                )
            elif not ids:
                return []
            else:
                rows = tx.execute(
                    f"SELECT {_DEAD_COLUMNS} FROM queue_messages WHERE state = ?"
                    f" AND id IN ({placeholders(len(ids))}) ORDER BY id{self._db.skip_locked}",
                    (DEAD, *ids),
                )
            found = [row["id"] for row in rows]
            if found:
                tx.execute(
                    "UPDATE queue_messages SET state = ?, attempts = 0, reported = 0, visible_at = ?"
                    f" WHERE id IN ({placeholders(len(found))}) AND state = ?",
                    (READY, self._clock(), *found, DEAD),
                )
        return [_dead_letter(row) for row in rows]

    def last_errors(self, job_ids: Sequence[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        with self._db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT key, last_error FROM queue_messages WHERE last_error <> ''"
                f" AND key IN ({placeholders(len(job_ids))}) ORDER BY id",
                list(job_ids),
            )
        # Ordered by id, so the newest message's error wins.
        return {str(row["key"]): str(row["last_error"]) for row in rows}

    def topics(self, now: float) -> builtins.list[TopicState]:
        with self._db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT topic, state, COUNT(*) AS n, MIN(created_at) AS oldest FROM queue_messages"
                " GROUP BY topic, state"
            )
        by_topic: dict[str, dict[str, tuple[int, float | None]]] = {}
        for row in rows:
            oldest = row["oldest"]
            by_topic.setdefault(str(row["topic"]), {})[str(row["state"])] = (
                int(row["n"]),
                float(oldest) if oldest is not None else None,
            )
        states = []
        for topic, counts in sorted(by_topic.items()):
            waiting = [
                oldest for state, (_, oldest) in counts.items() if state != DEAD and oldest is not None
            ]
            states.append(
                TopicState(
                    topic=topic,
                    ready=counts.get(READY, (0, None))[0],
                    leased=counts.get(LEASED, (0, None))[0],
                    dead=counts.get(DEAD, (0, None))[0],
                    oldest_age=max(0.0, now - min(waiting)) if waiting else 0.0,
                )
            )
        return states

    def job_counts(self) -> dict[tuple[str, str], int]:
        with self._db.transaction(write=False) as tx:
            rows = tx.execute("SELECT status, phase, COUNT(*) AS n FROM jobs GROUP BY status, phase")
        return {(str(row["status"]), str(row["phase"])): int(row["n"]) for row in rows}

    def ping(self) -> None:
        with self._db.transaction(write=False) as tx:
            tx.execute("SELECT 1 AS one")
