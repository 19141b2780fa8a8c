"""The API's guards: 20 requests/s per (SecretId, Action), and replay protection.

Rate limit: token buckets holding up to `rate` tokens (burst = one second's worth), refilled
continuously. Keys are authenticated SecretIds and known actions only, so there are few buckets.

Replay protection: a signed request that changes something (REPLAY_PROTECTED_ACTIONS) is accepted
once; the same signature again within the signature's validity is refused. Reads are not guarded:
a client polling Describe twice a second (`harvest wait`) sends byte-identical signed requests
within one second, and repeating a read changes nothing.

Where they hold: `RateLimiter` and `harvest.api.tc3.ReplayCache` live in one process, which is the
whole service on the embedded default (`harvest serve`). With PostgreSQL configured the composition
root uses the database-backed ones (harvest.adapters.sql.guards), so N warm SCF instances still
allow 20 requests/s in all and catch a replay sent to another instance.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from harvest.errors import RequestLimitExceeded

REPLAY_PROTECTED_ACTIONS = frozenset(
    {
        "CreateStreamPackageHarvestJob",
        "DeleteStreamPackageHarvestJob",
        "DeleteStreamPackageHarvestJobs",
        "CancelStreamPackageHarvestJob",
    }
)


def limit_exceeded(action: str, rate: float) -> RequestLimitExceeded:
    return RequestLimitExceeded(
        f"{action} is limited to {rate:g} requests per second per SecretId; slow down and retry"
    )


class RateLimiter:
    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        """`rate` requests per second per key; 0 disables limiting."""
        self._rate = rate
        self._burst = max(rate, 1.0)
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def try_acquire(self, secret_id: str, action: str) -> bool:
        if not self.enabled:
            return True
        key = (secret_id, action)
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            return allowed

    def acquire(self, secret_id: str, action: str) -> None:
        """Take a token or raise RequestLimitExceeded."""
        if not self.try_acquire(secret_id, action):
            raise limit_exceeded(action, self._rate)
