"""The one way a test waits for something another thread or process does: `eventually`.

Tests wait for jobs to end, callbacks to arrive and servers to count connections. Each wait polls a
condition with a timeout, and on timeout fails the test naming what it waited for: a wait that
runs out is a failure, never a silent fall-through to assertions on whatever state was left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    condition: Callable[[], T | None],
    timeout: float,
    what: str | Callable[[], str],
    *,
    interval: float = 0.05,
) -> T:
    """Poll `condition` until it returns a truthy value, and return that value.

    After `timeout` seconds without one, raise AssertionError naming `what` and the last value seen
    (a callable `what` is asked then, so it can add a log tail taken at the moment of failure). The
    condition is asked once more at the deadline, so a slow poll never fails a condition that holds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {described} (last: {value!r})")
        time.sleep(interval)
