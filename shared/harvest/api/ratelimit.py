"""Token buckets per (SecretId, Action): the API's documented 20 requests/s per action.

Each bucket holds up to `rate` tokens (burst = one second's worth) and refills continuously. Keys
are authenticated SecretIds and known actions only, so the number of buckets stays small.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from harvest.errors import RequestLimitExceeded


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
            raise RequestLimitExceeded(
                f"{action} is limited to {self._rate:g} requests per second per SecretId; slow down and retry"
            )
