"""Playlists fetched a few ahead of the one being read, handed over in order.

Why: planning read a master's renditions one after another, each waiting its own round trip to the
origin: four round trips for the benchmark's job (a master and 3 renditions, about 20 ms each from
an origin 20 ms away), and about half a second for 6 renditions on an origin 80 ms away before the
first segment was asked for. Parsing stays one playlist at a time (a parsed 24 h playlist is what
costs memory); only the texts of up to AHEAD fetched playlists wait, and not even that when the
first text is large: the renditions of one channel list the same segments, so their playlists are
about the size of the first, and AHEAD of them must fit in BUDGET_CHARS.

A fetch that fails raises when its turn comes, as it would have one after another; the ones after it
are dropped (a fetch under way ends on its own thread, with nobody waiting for it).
"""

from __future__ import annotations

import contextvars
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")

AHEAD = 4  # fetches under way while one is read
BUDGET_CHARS = 32 * 1024 * 1024  # texts that may wait at once: 4 x 8 MB (24 h of 2 s segments is ~6 MB)


def in_order(fetches: Sequence[Callable[[], T]], size: Callable[[T], int]) -> Iterator[T]:
    """Each fetch's result, in order: the first alone, then the rest up to AHEAD at once."""
    if not fetches:
        return
    first = fetches[0]()
    rest = iter(fetches[1:])
    yield first
    if size(first) * AHEAD > BUDGET_CHARS:
        for fetch in rest:
            yield fetch()
        return
    pending = deque(_started(fetch) for fetch in itertools.islice(rest, AHEAD))
    while pending:
        result = pending.popleft().result()
        following = next(rest, None)
        if following is not None:
            pending.append(_started(following))
        yield result


def _started(fetch: Callable[[], T]) -> Future[T]:
    """`fetch` running on a thread of its own, in a copy of the caller's context (its logs keep the
    job's id). A daemon thread, not a ThreadPoolExecutor's: the executor's threads are joined at
    interpreter exit, so a fetch left behind by a failed plan, retrying against an origin that no
    longer answers, would have held a stopping process for its whole retry budget."""
    future: Future[T] = Future()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            future.set_result(context.run(fetch))
        except BaseException as exc:  # noqa: BLE001 (raised to the reader, in its turn)
            future.set_exception(exc)

    threading.Thread(target=run, name="playlist-prefetch", daemon=True).start()
    return future
