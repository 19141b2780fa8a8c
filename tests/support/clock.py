"""The one fake clock: time that moves only when a test moves it.

Pass it wherever code takes `clock: Callable[[], float]` (the job store's leases, the sweeper, the
test origin's live edge, the API's replay window), so expiry, deadlines and the live edge need no
sleeping and a run is the same every time.
"""

from __future__ import annotations


class ManualClock:
    """Epoch seconds that change only by `advance` (or by setting `now`)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
