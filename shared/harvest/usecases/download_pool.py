"""The download threads of one process, shared by every chunk it runs at once.

Why one pool per process and not threads per chunk: `harvest serve` runs a chunk per consumer (4 by
default), and with HARVEST_DOWNLOAD_CONCURRENCY threads each that was 64 transfers on 2 cores. The
benchmark measured the same bytes costing about a third more CPU that way than with 16 (thread
switches handing the GIL around), and a semaphore capping the transfers while keeping 64 threads
did not win it back: the threads themselves were the cost. With one pool, a chunk alone (as on SCF,
one chunk per instance) still gets every thread, several chunks share them, and a chunk that is
syncing its objects or recording itself as done leaves the threads to the other chunks instead
of idling its own (bench/README.md, round 3).

A batch is one chunk's work. Its items are started oldest batch first: every free thread takes
the next item of the first batch still holding some, and moves to the next batch only once all of
the first one's have started. So the chunks of a process end one after another, and each one's sync
and bookkeeping overlap the other chunks' downloads. (Taking turns between batches made them all end
at once, and the pool idled while every consumer synced: 2.77 against 2.15 s for the benchmark's
window, bench/README.md, round 3.) The first exception of a batch stops its new items (the ones under
way finish) and is handed to the batch's owner.

At most `limit.limit` items are under way at once: the pool's size unless the limit found fewer
pay (download_limit). Threads are started as work arrives, up to that limit, and end after
IDLE_SECONDS without any or when the limit goes down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from harvest.usecases.download_limit import DownloadLimit

T = TypeVar("T")
log = logging.getLogger(__name__)

IDLE_SECONDS = 30.0  # a thread with nothing to do for this long ends (the next batch starts it again)


# handles an item and says how many bytes it moved (what the pool's adaptive limit measures)
Handler = Callable[[T], "int | None"]


class Batch(Generic[T]):
    """Items handled by the pool's threads; `wait` returns once none is under way and none will start.

    Its counters belong to the pool and change only under the pool's lock.
    """

    def __init__(self, items: Iterator[T], handle: Handler[T]) -> None:
        self.items = items
        self.handle = handle
        self.under_way = 0
        self.closed = False  # no item will start: all taken, or one failed
        self.failure: BaseException | None = None
        self.done = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


class DownloadPool:
    """`threads` threads at most, running at most `limit.limit` items at once (adaptive unless
    `adaptive` is false: see download_limit)."""

    def __init__(
        self,
        threads: int,
        name: str = "fetch",
        adaptive: bool = True,
        limit: DownloadLimit | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError(f"a download pool needs at least one thread, not {threads}")
        self._size = threads
        self._name = name
        self.limit = limit or DownloadLimit(threads, adaptive)
        self._lock = threading.Condition()
        self._batches: deque[Batch[Any]] = deque()  # with items still to start, oldest first
        self._threads = 0
        self._under_way = 0  # items under way, every batch
        self._started = 0  # names threads fetch-0, fetch-1, ... for logs and profiles

    @property
    def size(self) -> int:
        return self._size

    @property
    def batches_waiting(self) -> int:
        """Batches with items not yet started (a failed or finished batch is not one)."""
        with self._lock:
            return len(self._batches)

    def submit(self, items: Iterator[T], handle: Handler[T]) -> Batch[T]:
        """Start handling `items` with `handle`, each on one of the pool's threads."""
        batch: Batch[T] = Batch(items, handle)
        with self._lock:
            self._batches.append(batch)
            self._start_threads()
            self._lock.notify_all()
        return batch

    def _start_threads(self) -> None:
        """Threads up to the limit: a thread beyond it would only wait. Called with the lock held."""
        while self._threads < self.limit.limit:
            self._threads += 1
            name = f"{self._name}-{self._started}"
            self._started += 1
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def _next(self) -> tuple[Batch[Any], Any] | None:
        """The next item to start and its batch, oldest batch first; None after IDLE_SECONDS without
        one (the thread then ends). Called with the lock held."""
        while True:
            while self._batches and self._under_way < self.limit.limit:
                batch = self._batches[0]
                item = _END
                if batch.failure is None:
                    try:
                        item = next(batch.items, _END)
                    except Exception as exc:  # noqa: BLE001 (the batch's failure: its owner re-raises it)
                        batch.failure = exc
                if item is _END:
                    self._close(batch)
                    continue
                batch.under_way += 1
                self._under_way += 1
                return batch, item
            if not self._batches:
                self.limit.ran_dry()
            if self._threads > self.limit.limit:
                self._threads -= 1  # the limit went down: this thread is one too many
                return None
            if not self._lock.wait(IDLE_SECONDS) and not self._batches:
                self._threads -= 1
                return None

    def _close(self, batch: Batch[Any]) -> None:
        """No item of `batch` starts any more; it is done once the ones under way have ended.
        Called with the lock held."""
        if not batch.closed:
            batch.closed = True
            self._batches.remove(batch)
        if batch.under_way == 0:
            batch.done.set()

    def _work(self) -> None:
        while True:
            with self._lock:
                taken = self._next()
            if taken is None:
                return
            batch, item = taken
            failure: BaseException | None = None
            moved: int | None = 0
            try:
                moved = batch.handle(item)
            except BaseException as exc:  # noqa: BLE001 (handed to the batch's owner, which re-raises it)
                failure = exc
            with self._lock:
                before = self.limit.limit
                self.limit.ended(time.monotonic(), moved or 0)
                if self.limit.limit != before:
                    log.debug("download limit %d -> %d", before, self.limit.limit)
                if self.limit.limit > before:
                    self._start_threads()
                    self._lock.notify_all()
                batch.under_way -= 1
                self._under_way -= 1
                if failure is not None and batch.failure is None:
                    batch.failure = failure
                if batch.closed or batch.failure is not None:
                    self._close(batch)


_END = object()
