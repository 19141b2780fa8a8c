"""Faults the test origin can inject: errors, cut bodies, stalls, missing segments, a dead origin.

Decisions are reproducible: attempt k at a request key (path, query and Range) always draws the
same number from an RNG seeded with (seed, key, k), whatever the thread interleaving. A key fails
at most `max_failures_per_path` times, so a client that retries more often than that always gets
through, except for `missing` segments, which answer 404 for ever.
"""

from __future__ import annotations

import enum
import random
import threading
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from harvest.errors import ConfigError

# What kind of request a fault may hit (the origin classifies each request as one of these).
REQUEST_KINDS = frozenset({"master", "playlist", "segment", "init", "key"})


class Fault(enum.Enum):
    ERROR = "error"  # answer 503
    CUT = "cut"  # promise the whole Content-Length, send part of it, close the connection
    STALL = "stall"  # wait stall_seconds before answering


@dataclass(frozen=True)
class FaultPlan:
    error_rate: float = 0.0
    cut_rate: float = 0.0
    stall_rate: float = 0.0
    stall_seconds: float = 30.0
    missing: AbstractSet[tuple[str, str, int]] = frozenset()  # (channel, rendition, msn) -> 404 always
    down: bool = False  # close every connection without an answer
    seed: int = 0
    max_failures_per_path: int = 3
    targets: AbstractSet[str] = frozenset({"segment"})  # request kinds faults may hit

    def __post_init__(self) -> None:
        rates = (self.error_rate, self.cut_rate, self.stall_rate)
        if any(rate < 0 for rate in rates) or sum(rates) > 1:
            raise ConfigError("fault rates must be >= 0 and add up to at most 1")
        unknown = set(self.targets) - REQUEST_KINDS
        if unknown:
            raise ConfigError(f"unknown fault targets {sorted(unknown)} (known: {sorted(REQUEST_KINDS)})")
        # Accept any iterable from callers (a set literal is natural) but keep the plan hashable.
        object.__setattr__(self, "missing", frozenset(_missing(self.missing)))
        object.__setattr__(self, "targets", frozenset(self.targets))

    def is_missing(self, channel: str, rendition: str, msn: int) -> bool:
        return (channel, rendition, msn) in self.missing


def _missing(items: Iterable[tuple[str, str, int]]) -> Iterable[tuple[str, str, int]]:
    return ((str(channel), str(rendition), int(msn)) for channel, rendition, msn in items)


class FaultInjector:
    """The per-plan state: attempts and failures seen per request key."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        self._failures: dict[str, int] = {}

    def decide(self, request_kind: str, key: str) -> Fault | None:
        plan = self.plan
        if request_kind not in plan.targets:
            return None
        with self._lock:
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
            if self._failures.get(key, 0) >= plan.max_failures_per_path:
                return None
            draw = random.Random(f"{plan.seed}|{key}|{attempt}").random()
            fault = _pick(plan, draw)
            if fault is not None:
                self._failures[key] = self._failures.get(key, 0) + 1
            return fault


def _pick(plan: FaultPlan, draw: float) -> Fault | None:
    if draw < plan.error_rate:
        return Fault.ERROR
    if draw < plan.error_rate + plan.cut_rate:
        return Fault.CUT
    if draw < plan.error_rate + plan.cut_rate + plan.stall_rate:
        return Fault.STALL
    return None
