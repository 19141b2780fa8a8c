"""Retry policy as data: how many attempts, and how long to wait between them.

Backoff is capped exponential with full jitter (delay = uniform(0, min(max_delay, base * multiplier**n))),
so many workers retrying the same origin spread out instead of arriving together. A server's own
`Retry-After` (on 429 and 503) wins over the jitter, but never beyond `max_delay`: a worker invocation has
a deadline, and waiting a minute for one segment would cost more than failing and being redelivered.

Everything here is pure: the random source is injected, and nothing sleeps.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from harvest.errors import ConfigError


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` counts every try, the first included: 5 attempts wait 4 times."""

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0
    multiplier: float = 2.0
    # random.Random's methods are safe to call from several threads (the GIL guards its C state).
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"retry attempts must be >= 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ConfigError("retry delays must be >= 0")
        if self.multiplier < 1:
            raise ConfigError(f"retry multiplier must be >= 1, got {self.multiplier}")

    def backoff_cap(self, retry: int) -> float:
        """The upper bound of the jittered wait before retry number `retry` (0 = the first retry)."""
        try:
            raw = self.base_delay * self.multiplier**retry
        except OverflowError:  # a huge retry number with a large multiplier: the cap applies anyway
            raw = math.inf
        return min(self.max_delay, raw)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry`; a server's Retry-After wins, up to max_delay."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        return self.rng.uniform(0.0, self.backoff_cap(retry))

    def delays(self) -> Iterator[float]:
        """The waits between attempts: `attempts - 1` of them, without server hints."""
        for retry in range(self.attempts - 1):
            yield self.delay(retry)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date, RFC 9110 §10.2.3); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means the zone was "-0000"
        return None
    return max(0.0, when.timestamp() - now)


def after_attempts(count: int) -> str:
    """'after 1 attempt', 'after 5 attempts': the tail of every final failure message."""
    return f"after {count} attempt{'' if count == 1 else 's'}"
