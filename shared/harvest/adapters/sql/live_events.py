"""LiveEventLedger on SQL (SQLite or PostgreSQL): the `live_events` table."""

from __future__ import annotations

import time

from harvest.adapters.sql.db import Database


class SqlLiveEventLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    def seen(self, event_key: str) -> tuple[str, float] | None:
        with self._db.transaction(write=False) as tx:
            rows = tx.execute("SELECT job_id, event_time FROM live_events WHERE event_key = ?", (event_key,))
        return (str(rows[0]["job_id"]), float(rows[0]["event_time"])) if rows else None

    def record(self, event_key: str, job_id: str, event_time: float) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO live_events (event_key, job_id, event_time, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (event_key) DO NOTHING",
                (event_key, job_id, event_time, time.time()),
            )
