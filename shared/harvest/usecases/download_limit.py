"""How many downloads the pool runs at once: as many as make it faster, found by measuring.

Why not a fixed number: the right one depends on where the origin is and how busy the machine is.
On this project's 2-core machine, the benchmark's 24 h x 3 renditions of 64 KB segments from an
origin on the same machine (0 ms) ran at 1,476-2,021 segments/s and 22-35 CPU-s with the limit
found here, against 1,061-1,126 segments/s and 46-49 CPU-s with 16 downloads always at once: the
extra threads only handed the GIL and the cores around. From an origin 20 ms away, 4 at once was
30-40 % slower than 16 (bench/README.md, round 4). A packager next door and a CDN across a
continent need different numbers, and one process may harvest from both in a day.

How (the idea of BBR's bandwidth probing, applied to a number of downloads): the limit starts at the
pool's size, so a far origin loses nothing while the pool learns, and moves by halving and doubling
between FEWEST and that size. Throughput, the bytes of the downloads that ended per second, is
measured over epochs of at least EPOCH_SECONDS and 2 x the limit downloads, counted only while the
pool had more work than the limit let it start: an epoch in which it ran out of work says nothing
about the limit and is dropped. A level is held for HOLD_EPOCHS epochs, then probed: up (kept if
that gains GAIN; then doubled again while it pays) and, if not, down (kept if it keeps KEEP of the
throughput for DOWN_EPOCHS epochs in a row: the same speed with fewer threads costs less CPU; then
halved again while it keeps it). A probe that moves nothing doubles the hold before the next one,
up to MOST_HOLD_EPOCHS: a far origin pays for the probes below it less and less often.

Why it is careful going down and not going up: on this machine one epoch's throughput moves by a
fifth between two epochs at the same level. A wrong step up costs some CPU until the next probe; a
wrong step down could halve a far origin's throughput. An earlier version started at 4 and doubled
on short epochs: it won at 0 ms, but at 20 ms it read 16 as no better than 8 often enough to make
the benchmark's job 36 % slower, and a first probe after 8 epochs cost a job of a second about 5 %
at 20 ms. Short jobs (the benchmark's 450 segments take about a second) now end before the first
probe; the pool, and what it learned, lives as long as the process.

The pool calls this under its lock; nothing here blocks or reads a clock of its own.
"""

from __future__ import annotations

from enum import Enum

FEWEST = 2  # never fewer: one slow or retrying segment must not hold up every other one
EPOCH_SECONDS = 0.1
GAIN = 0.15  # a level must beat the one below by this much to be worth its threads
KEEP = 0.95  # a lower level that keeps this share of the throughput is taken (less CPU)
DOWN_EPOCHS = 2  # epochs in a row a lower level must keep KEEP in
HOLD_EPOCHS = 16  # epochs at a level before the next probe
MOST_HOLD_EPOCHS = 32  # the hold doubles, up to this, after each probe that moved nothing


class _Phase(Enum):
    CLIMB = "climb"  # doubling while it pays
    HOLD = "hold"
    PROBE_UP = "probe up"
    PROBE_DOWN = "probe down"


class DownloadLimit:
    """The pool's limit on downloads under way; fixed at `most` when not adaptive."""

    def __init__(self, most: int, adaptive: bool = True) -> None:
        if most < 1:
            raise ValueError(f"a download limit needs at least one download, not {most}")
        self.most = most
        self.fewest = min(FEWEST, most)
        self.adaptive = adaptive and most > self.fewest
        self.limit = most
        self._phase = _Phase.HOLD
        self._reference: tuple[int, float] | None = None  # (limit, throughput) compared against
        self._held = 0
        self._hold_for = HOLD_EPOCHS
        self._moved = False  # a probe since the last hold was kept
        self._recent: list[float] = []  # the last throughputs at a held level (a probe's reference)
        self._kept = 0  # epochs a down-probe has kept its throughput so far
        self._skip = 0  # downloads started under the previous limit, still to end before measuring
        self._epoch_start: float | None = None
        self._epoch_downloads = 0
        self._epoch_bytes = 0

    def ran_dry(self) -> None:
        """The pool had room under the limit and nothing to start: the epoch does not count."""
        self._epoch_start = None

    def ended(self, now: float, nbytes: int) -> None:
        """A download ended at `now` having moved `nbytes`; may change `limit`."""
        if not self.adaptive:
            return
        if self._skip:
            self._skip -= 1
            return
        if self._epoch_start is None:
            self._epoch_start, self._epoch_downloads, self._epoch_bytes = now, 0, 0
            return
        self._epoch_downloads += 1
        self._epoch_bytes += nbytes
        elapsed = now - self._epoch_start
        if elapsed < EPOCH_SECONDS or self._epoch_downloads < 2 * self.limit:
            return
        moved = self._epoch_bytes
        self._epoch_start, self._epoch_downloads, self._epoch_bytes = now, 0, 0
        if moved:  # downloads that found their objects already stored moved nothing: no reading
            self._decide(moved / elapsed)

    def _decide(self, throughput: float) -> None:
        if self._phase in (_Phase.CLIMB, _Phase.PROBE_UP):
            self._after_doubling(throughput)
        elif self._phase is _Phase.HOLD:
            self._held += 1
            self._recent = [*self._recent[-1:], throughput]
            if self._held >= self._hold_for:
                self._reference = (self.limit, sum(self._recent) / len(self._recent))
                if self.limit < self.most:
                    self._phase = _Phase.PROBE_UP
                    self._move(self.limit * 2)
                else:
                    self._probe_down()
        else:
            self._after_halving(throughput)

    def _after_doubling(self, throughput: float) -> None:
        reference = self._reference
        if reference is None or throughput >= reference[1] * (1 + GAIN):
            self._phase, self._reference, self._moved = _Phase.CLIMB, (self.limit, throughput), True
            if self.limit < self.most:
                self._move(self.limit * 2)
            else:
                self._hold()
            return
        # doubling did not pay: back to the level below, and (after a probe from a held level) see
        # whether half of that does as well
        probing = self._phase is _Phase.PROBE_UP
        self._move(reference[0])
        if probing:
            self._probe_down()
        else:
            self._hold()

    def _after_halving(self, throughput: float) -> None:
        reference = self._reference
        assert reference is not None
        if throughput >= reference[1] * KEEP:
            self._kept += 1
            if self._kept >= DOWN_EPOCHS:
                self._reference, self._moved = (self.limit, throughput), True
                self._probe_down()  # as fast with fewer: try fewer still
        else:
            self._move(reference[0])
            self._hold()

    def _probe_down(self) -> None:
        if self.limit > self.fewest:
            self._phase, self._kept = _Phase.PROBE_DOWN, 0
            self._move(self.limit // 2)
        else:
            self._hold()

    def _hold(self) -> None:
        self._hold_for = HOLD_EPOCHS if self._moved else min(self._hold_for * 2, MOST_HOLD_EPOCHS)
        self._phase, self._held, self._recent, self._moved = _Phase.HOLD, 0, [], False

    def _move(self, limit: int) -> None:
        limit = max(self.fewest, min(limit, self.most))
        if limit == self.limit:
            return
        self._skip = self.limit  # let the downloads started under the old limit end first
        self._epoch_start = None
        self.limit = limit

