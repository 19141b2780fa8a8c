"""engine.prefetch: playlists fetched ahead, handed over in order, failures in their turn."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable

import pytest

from harvest.engine import prefetch

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


class Origin:
    """Answers `name` after `delay` seconds; records when each fetch started and how many overlapped."""

    def __init__(self, delay: float = 0.05, text_size: int = 10, fail: str = "") -> None:
        self.delay, self.text_size, self.fail = delay, text_size, fail
        self.started: list[str] = []
        self.contexts: list[str] = []
        self.most = self._now = 0
        self._lock = threading.Lock()

    def fetch(self, name: str) -> Callable[[], str]:
        def run() -> str:
            with self._lock:
                self.started.append(name)
                self.contexts.append(request_id.get())
                self._now += 1
                self.most = max(self.most, self._now)
            time.sleep(self.delay)
            with self._lock:
                self._now -= 1
            if name == self.fail:
                raise RuntimeError(f"{name}: HTTP 404")
            return name + "." * self.text_size

        return run


def test_playlists_come_back_in_order_while_the_rest_are_fetched_at_once() -> None:
    origin = Origin(delay=0.0)
    names = [f"v{i}" for i in range(6)]
    # v1-v4 meet at a barrier: it breaks (and the fetch raises) unless all 4 are under way at once
    together = threading.Barrier(prefetch.AHEAD, timeout=10)
    fetches = [origin.fetch(n) for n in names]
    for i in range(1, 1 + prefetch.AHEAD):
        fetches[i] = _after(together.wait, fetches[i])
    got = [text.rstrip(".") for text in prefetch.in_order(fetches, len)]
    assert got == names
    assert origin.started[0] == "v0"  # the first alone: its size decides whether to fetch ahead


def _after(first: Callable[[], object], then: Callable[[], str]) -> Callable[[], str]:
    def run() -> str:
        first()
        return then()

    return run


def test_a_large_first_playlist_keeps_the_rest_one_after_another(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefetch, "BUDGET_CHARS", 100)
    origin = Origin(delay=0.01, text_size=50)  # 4 texts of ~52 chars would not fit in 100
    got = list(prefetch.in_order([origin.fetch(n) for n in ("a", "b", "c")], len))
    assert [text.rstrip(".") for text in got] == ["a", "b", "c"]
    assert origin.most == 1


def test_a_failed_fetch_raises_in_its_turn_after_the_ones_before_it() -> None:
    origin = Origin(delay=0.02, fail="v2")
    playlists = prefetch.in_order([origin.fetch(f"v{i}") for i in range(5)], len)
    assert next(playlists).startswith("v0")
    assert next(playlists).startswith("v1")
    with pytest.raises(RuntimeError, match="v2: HTTP 404"):
        next(playlists)


def test_fetches_run_in_the_callers_context_so_their_logs_keep_the_job() -> None:
    origin = Origin(delay=0.01)
    request_id.set("job-7")
    list(prefetch.in_order([origin.fetch(f"v{i}") for i in range(4)], len))
    assert origin.contexts == ["job-7"] * 4


def test_nothing_to_fetch_is_nothing() -> None:
    assert list(prefetch.in_order([], len)) == []


def test_fetches_ahead_never_hold_a_stopping_process() -> None:
    # a fetch left behind by a failed plan (retrying against an origin that is gone) must not keep
    # the interpreter from exiting: ThreadPoolExecutor threads are joined at exit, daemon ones not
    daemons: list[bool] = []

    def fetch(name: str) -> Callable[[], str]:
        def run() -> str:
            daemons.append(threading.current_thread().daemon)
            return name

        return run

    assert list(prefetch.in_order([fetch(f"v{i}") for i in range(4)], len)) == ["v0", "v1", "v2", "v3"]
    assert daemons[1:] == [True, True, True]  # v0 runs on the caller's thread
