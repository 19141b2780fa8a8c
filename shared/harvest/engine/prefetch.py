"""Playlists fetched a few ahead of the one being read, handed over in order.

Why: planning read a master's renditions one after another, each waiting its own round trip to the
origin: four round trips for the benchmark's job (a master and 3 renditions, about 20 ms each from
an origin 20 ms away), and about half a second for 6 renditions on an origin 80 ms away before the
first segment was asked for. Parsing stays one playlist at a time (a parsed 24 h playlist is what
costs memory); only the texts of up to AHEAD fetched playlists wait, and not even that when the
first text is large: the renditions of one channel list the same segments, so their playlists are
about the size of the first, and AHEAD of them must fit in BUDGET_CHARS.

A fetch that fails raises when its turn comes, as it would have one after another; the ones after it
are dropped (a fetch under way ends on its own, with nobody waiting for it).
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

AHEAD = 4  # fetches under way while one is read
BUDGET_CHARS = 32 * 1024 * 1024  # texts that may wait at once: 4 x 8 MB (24 h of 2 s segments is ~6 MB)


def in_order(fetches: Sequence[Callable[[], T]], size: Callable[[T], int]) -> Iterator[T]:
    """Each fetch's result, in order: the first alone, then the rest up to AHEAD at once."""
    if not fetches:
        return
    first = fetches[0]()
    rest = fetches[1:]
    yield first
    if size(first) * AHEAD > BUDGET_CHARS:
        for fetch in rest:
            yield fetch()
        return
    pool = ThreadPoolExecutor(max_workers=min(AHEAD, max(1, len(rest))), thread_name_prefix="playlist")
    pending: deque[Future[T]] = deque()
    feed = iter(rest)

    def submit() -> None:
        fetch = next(feed, None)
        if fetch is not None:
            # each fetch runs in a copy of the caller's context: its logs keep the job's id
            pending.append(pool.submit(contextvars.copy_context().run, fetch))

    try:
        for _ in range(AHEAD):
            submit()
        while pending:
            result = pending.popleft().result()
            submit()
            yield result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
