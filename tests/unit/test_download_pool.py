"""The process's download pool: chunks share its threads, take turns, and fail alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from tests.support.polling import eventually

from harvest.usecases import download_pool
from harvest.usecases.download_limit import DownloadLimit
from harvest.usecases.download_pool import DownloadPool


class Gauge:
    """How many handlers run at once, and the most seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def around(self, work: Callable[[], object]) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            work()
        finally:
            with self._lock:
                self.now -= 1


def test_batches_under_way_together_share_the_pools_threads() -> None:
    # GIVEN a pool of 3 threads and two batches of 12 slow items each, submitted together
    pool = DownloadPool(3)
    gauge = Gauge()
    handled: list[str] = []

    together = threading.Barrier(3, timeout=10)  # items meet in threes: fails if fewer run at once

    def handle(item: str) -> None:
        gauge.around(together.wait)
        handled.append(item)

    first = pool.submit(iter([f"a{i}" for i in range(12)]), handle)
    second = pool.submit(iter([f"b{i}" for i in range(12)]), handle)
    # THEN both finish, every item handled once, never more than 3 at once across the two
    assert first.wait(10)
    assert second.wait(10)
    assert sorted(handled) == sorted([f"a{i}" for i in range(12)] + [f"b{i}" for i in range(12)])
    assert gauge.most == 3
    assert first.failure is None
    assert second.failure is None


def test_a_batch_alone_gets_every_thread() -> None:
    pool = DownloadPool(4)
    gauge = Gauge()
    together = threading.Barrier(4, timeout=10)
    batch = pool.submit(iter(range(16)), lambda _: gauge.around(together.wait))
    assert batch.wait(10)
    assert batch.failure is None  # a BrokenBarrierError here: fewer than 4 ran at once
    assert gauge.most == 4


def test_the_oldest_batch_goes_first_so_chunks_end_one_after_another() -> None:
    # GIVEN two threads, and two batches submitted while both threads are busy with a gate
    pool = DownloadPool(2)
    taken: list[str] = []  # the order items are taken in (the pool takes them under its lock)
    busy, gate = threading.Barrier(3), threading.Event()

    def items(name: str) -> Iterator[str]:
        for i in range(8):
            taken.append(f"{name}{i}")
            yield f"{name}{i}"

    def handle(item: str) -> None:
        if item in ("a0", "a1"):
            busy.wait(10)
            gate.wait(10)

    first = pool.submit(items("a"), handle)
    busy.wait(10)  # both threads hold an item of the first batch
    second = pool.submit(items("b"), handle)
    gate.set()
    assert first.wait(10)
    assert second.wait(10)
    # THEN every item of the first batch started before any of the second: it ended first, and its
    # owner's work after it (a sync) overlapped the second's downloads
    assert taken == [f"a{i}" for i in range(8)] + [f"b{i}" for i in range(8)]


def test_threads_move_to_the_next_batch_as_soon_as_the_first_has_none_left_to_start() -> None:
    # GIVEN 4 threads, a batch of 1 slow item and a batch of 6
    pool = DownloadPool(4)
    gauge = Gauge()
    release = threading.Event()
    together = threading.Barrier(3, timeout=10)  # the other 3 threads all work on the second batch
    slow = pool.submit(iter([0]), lambda _: gauge.around(lambda: release.wait(10)))
    fast = pool.submit(iter(range(6)), lambda _: gauge.around(together.wait))
    # THEN the second batch finishes while the first's one item is still under way
    assert fast.wait(10)
    assert fast.failure is None
    assert not slow.wait(0)
    release.set()
    assert slow.wait(10)
    assert gauge.most == 4


def test_a_failure_stops_its_own_batch_only_and_is_handed_to_its_owner() -> None:
    pool = DownloadPool(2)
    started: list[int] = []

    def failing(item: int) -> None:
        started.append(item)
        if item == 2:
            raise ValueError("segment 2 is broken")
        if item > 2:
            # held until the failure is on record, so how many items start after it does not
            # depend on how fast this machine runs the trivial ones (CI once saw 8 on a slow run)
            deadline = time.monotonic() + 5
            while broken.failure is None and time.monotonic() < deadline:
                time.sleep(0.001)

    other_done: list[int] = []
    broken = pool.submit(iter(range(100)), failing)
    healthy = pool.submit(iter(range(30)), other_done.append)
    assert broken.wait(10)
    assert healthy.wait(10)
    # THEN the first error is the batch's failure, and only the items already taken ran after it
    assert isinstance(broken.failure, ValueError)
    assert str(broken.failure) == "segment 2 is broken"
    # (item 3 at most: taken by the other thread while item 2 was failing)
    assert max(started) <= 3
    # AND the other batch was not touched
    assert healthy.failure is None
    assert sorted(other_done) == list(range(30))


def test_an_iterator_that_raises_fails_its_batch_instead_of_hanging_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise RuntimeError("plan unreadable")

    batch = DownloadPool(2).submit(items(), lambda _: None)
    assert batch.wait(10)
    assert isinstance(batch.failure, RuntimeError)


def test_an_empty_batch_is_done_at_once() -> None:
    batch = DownloadPool(2).submit(iter([0] * 0), lambda _: None)
    assert batch.wait(10)
    assert batch.failure is None


def test_idle_threads_end_and_come_back_with_the_next_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download_pool, "IDLE_SECONDS", 0.05)
    pool = DownloadPool(3, name="idle-test")

    def pool_threads() -> int:
        return sum(1 for t in threading.enumerate() if t.name.startswith("idle-test-"))

    assert pool.submit(iter(range(6)), lambda _: time.sleep(0.01)).wait(10)
    eventually(lambda: pool_threads() == 0, 5.0, lambda: f"{pool_threads()} pool threads still alive")
    assert pool.submit(iter(range(6)), lambda _: None).wait(10)


def test_a_pool_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        DownloadPool(0)


class SteppedLimit(DownloadLimit):
    """A limit that drops to 2 after the first `after` downloads, and records what it was told."""

    def __init__(self, most: int, after: int) -> None:
        super().__init__(most)
        self.after = after
        self.told: list[int] = []

    def ended(self, now: float, nbytes: int) -> None:
        self.told.append(nbytes)
        if len(self.told) == self.after:
            self.limit = 2


def test_the_pool_tells_its_limit_what_each_download_moved_and_keeps_under_it() -> None:
    # GIVEN a pool of 4 whose limit drops to 2 once 4 downloads have ended
    limit = SteppedLimit(4, after=4)
    pool = DownloadPool(4, limit=limit)
    before, after = Gauge(), Gauge()
    first_four = threading.Barrier(4, timeout=10)  # the first 4 run together: the limit was 4

    def handle(item: int) -> int:
        if item < 4:
            before.around(first_four.wait)
        elif item >= 10:  # items 4-9 may have started before the drop reached every thread
            after.around(lambda: time.sleep(0.005))
        return 1000 + item

    batch = pool.submit(iter(range(40)), handle)
    assert batch.wait(10)
    assert batch.failure is None
    # THEN the limit heard of every download, with its bytes
    assert sorted(limit.told) == [1000 + i for i in range(40)]
    # AND once it said 2, never more than 2 ran at once, in the same batch
    assert before.most == 4
    assert after.most == 2
