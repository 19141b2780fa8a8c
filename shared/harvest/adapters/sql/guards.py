"""The API's rate limit and replay ledger in PostgreSQL, shared by every instance of the api function.

Each check is one statement, atomic under concurrency: the bucket's refill and take happen in the
INSERT ... ON CONFLICT DO UPDATE that holds the row's lock, and a signature is new exactly when its
INSERT ... ON CONFLICT DO NOTHING inserts a row. Times are the instances' wall clocks (NTP-synced on
SCF); a clock slightly behind never refills a bucket backwards (GREATEST(0, elapsed)).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from harvest.adapters.sql.db import Database
from harvest.api.ratelimit import limit_exceeded

_TAKE = """
INSERT INTO api_rate_limits (secret_id, action, tokens, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (secret_id, action) DO UPDATE SET
    tokens = LEAST(?, api_rate_limits.tokens + GREATEST(0, ? - api_rate_limits.updated_at) * ?) - 1,
    updated_at = GREATEST(api_rate_limits.updated_at, ?)
WHERE LEAST(?, api_rate_limits.tokens + GREATEST(0, ? - api_rate_limits.updated_at) * ?) >= 1
RETURNING tokens
"""


class SqlRateLimiter:
    """ratelimit.Limiter over table api_rate_limits (PostgreSQL)."""

    def __init__(self, db: Database, rate: float, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._rate = rate
        self._burst = max(rate, 1.0)
        self._clock = clock

    def acquire(self, secret_id: str, action: str) -> None:
        if self._rate <= 0:
            return
        now = float(self._clock())
        burst, rate = self._burst, self._rate
        with self._db.transaction() as tx:
            params = (secret_id, action, burst - 1, now, burst, now, rate, now, burst, now, rate)
            taken = tx.execute(_TAKE, params)
        if not taken:
            raise limit_exceeded(action, rate)


class SqlSignatureLedger:
    """ratelimit.SignatureLedger over table api_signatures (PostgreSQL)."""

    def __init__(self, db: Database, window: float) -> None:
        self._db = db
        self._window = window

    def check_and_remember(self, sig: str, timestamp: int, now: float) -> bool:
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM api_signatures WHERE expires_at < ?", (now,))
            tx.execute(
                "INSERT INTO api_signatures (signature, expires_at) VALUES (?, ?)"
                " ON CONFLICT (signature) DO NOTHING",
                (sig, timestamp + self._window),
            )
            return tx.rowcount == 1
