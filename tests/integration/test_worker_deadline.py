"""Through the real worker handler (SQLite, local disk, a live test origin): a CKafka batch whose
invocation has time for only part of it stops at the deadline and leaves the rest for redelivery.

The invocation's clock is a manual one that the work itself moves forward (each chunk, or each
stored segment, "takes" a set number of seconds), so where the deadline falls is exact and no test
waits for it.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.support.clock import ManualClock
from tests.support.engine import BUCKET, create, make_deps
from tests.support.media import TEST_NOW

from harvest.adapters.objectstore.local import TEMP_PREFIX, LocalDiskStore
from harvest.adapters.sql.jobstore import SqlJobStore
from harvest.composition import Backend
from harvest.devtools import ChannelSpec, LiveOrigin, Pool
from harvest.domain.job import Message, Phase, chunk_message, plan_message
from harvest.handlers import worker
from harvest.handlers.batch import BatchFailed, Outcome
from harvest.triggers import build_ckafka_event
from harvest.usecases.harvest import HarvestDeps

pytest_plugins = ("tests.support.media",)
pytestmark = pytest.mark.media

SHORT = {"request_id": "short", "time_limit_in_ms": 120_000}  # records may start for 60 s
LONG = {"request_id": "long", "time_limit_in_ms": 900_000}


class InvocationClock:
    """The monotonic clock the worker's record loop reads; the test's work moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()  # a chunk's download threads advance it together

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class ChunksTakeTime(SqlJobStore):
    """The job table, where recording a finished chunk means `seconds` of the invocation went by."""

    def __init__(self, backend: Backend, clock: InvocationClock, seconds: float) -> None:
        super().__init__(backend.db)
        self.clock, self.seconds = clock, seconds

    def complete_chunk(
        self, job_id: str, index: int, segments: int, nbytes: int, outbox_if_last: Sequence[Message]
    ) -> bool:
        last = super().complete_chunk(job_id, index, segments, nbytes, outbox_if_last)
        self.clock.advance(self.seconds)
        return last


class SegmentsTakeTime(LocalDiskStore):
    """The local bucket, where storing each object means `seconds` of the invocation went by."""

    def __init__(self, root: Path, clock: InvocationClock, seconds: float) -> None:
        super().__init__(root)
        self.clock, self.seconds = clock, seconds

    def put_stream(
        self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str, durable: bool = True
    ) -> int:
        written = super().put_stream(bucket, key, chunks, content_type, durable)
        self.clock.advance(self.seconds)
        return written


@pytest.fixture
def planned(
    tmp_path: Path, media_pools: dict[str, Pool], start_origin: Callable[..., LiveOrigin]
) -> Iterator[tuple[Backend, HarvestDeps, LiveOrigin]]:
    """A job of 120 s on a live ts channel, planned by the real worker handler (2 downloads at a time)."""
    clock = ManualClock(TEST_NOW)
    origin = start_origin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}, clock=clock)
    backend, deps = make_deps(tmp_path, origin, clock, download_concurrency=2)
    create(deps, clock(), "cut-short", "ts", TEST_NOW - 140, TEST_NOW - 20)
    worker.make_handler(deps)(build_ckafka_event([(1, plan_message("cut-short"))]), LONG)
    assert deps.store.get("cut-short").chunks_total >= 4
    yield backend, deps, origin
    backend.db.close()


def chunk_event(deps: HarvestDeps, job_id: str) -> dict[str, Any]:
    chunks = deps.store.get(job_id).chunks_total
    messages: list[tuple[int, Message]] = [(100 + i, chunk_message(job_id, i)) for i in range(chunks)]
    return build_ckafka_event(messages)


def chunks_done(deps: HarvestDeps, job_id: str) -> list[bool]:
    return [deps.store.get_chunk(job_id, i).done for i in range(deps.store.get(job_id).chunks_total)]


def test_a_batch_cut_short_by_the_deadline_leaves_the_rest_for_redelivery(
    planned: tuple[Backend, HarvestDeps, LiveOrigin], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN every chunk message of the job in one CKafka batch, each chunk taking 40 s, and an
    # invocation whose 120 s limit leaves 60 s to start records in
    backend, deps, _ = planned
    clock = InvocationClock()
    handler = worker.make_handler(replace(deps, store=ChunksTakeTime(backend, clock, 40)), clock=clock)
    event = chunk_event(deps, "cut-short")
    total = len(event["Records"])
    caplog.set_level(logging.INFO)
    # WHEN the worker handles it
    with pytest.raises(BatchFailed) as info:
        handler(event, SHORT)
    # THEN chunks 0 and 1 were harvested (started at 0 s and 40 s); the others were never started
    result = info.value.result
    assert [r.outcome for r in result.records] == [Outcome.DONE] * 2 + [Outcome.LEFT] * (total - 2)
    assert chunks_done(deps, "cut-short") == [True, True] + [False] * (total - 2)
    bucket = deps.settings.data_dir / "cos" / BUCKET
    for index in range(2, total):
        assert not any((bucket / t.key).exists() for t in deps.store.get_chunk("cut-short", index).tasks)
    # AND the invocation raised so that SCF redelivers the batch, saying why, and logged it once
    why = "the invocation's deadline is near: less than 60 s of its time limit left"
    assert str(info.value) == f"{total} records: {total - 2} left for redelivery ({why})"
    left_lines = [r for r in caplog.records if "left for redelivery" in r.getMessage()]
    assert len(left_lines) == 1
    assert left_lines[0].levelno == logging.WARNING
    assert left_lines[0].getMessage().startswith(f"{total - 2} of {total} records left for redelivery")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # WHEN SCF redelivers the same batch to an invocation with time enough
    response = handler(event, LONG)
    # THEN the chunks done are no-ops, the rest are done, and the job moves on to finalizing
    assert response == {"processed": total, "skipped": 0, "unreadable": []}
    assert chunks_done(deps, "cut-short") == [True] * total
    assert deps.store.get("cut-short").phase is Phase.FINALIZING


def test_a_chunk_running_at_the_deadline_stops_between_downloads_and_resumes(
    planned: tuple[Backend, HarvestDeps, LiveOrigin],
) -> None:
    # GIVEN chunks 0 and 1 in one batch, each stored segment taking 10 s of a 120 s invocation
    _, deps, _ = planned
    clock = InvocationClock()
    bucket = SegmentsTakeTime(deps.settings.data_dir / "cos", clock, 10)
    handler = worker.make_handler(replace(deps, objects=bucket), clock=clock)
    tasks = deps.store.get_chunk("cut-short", 0).tasks
    assert len(tasks) > 12
    event = build_ckafka_event([(7, chunk_message("cut-short", 0)), (8, chunk_message("cut-short", 1))])
    # WHEN the worker handles it
    with pytest.raises(BatchFailed) as info:
        handler(event, SHORT)
    # THEN chunk 0 stopped at the deadline: after 6 segments (60 s), plus the 2 already downloading
    result = info.value.result
    assert [(r.outcome, r.error) for r in result.records] == [
        (Outcome.LEFT, "chunk 0 interrupted: the invocation's deadline came"),
        (Outcome.LEFT, "chunk 0 interrupted: the invocation's deadline came"),
    ]
    assert chunks_done(deps, "cut-short")[:2] == [False, False]
    root = deps.settings.data_dir / "cos" / BUCKET
    stored = [task for task in tasks if (root / task.key).exists()]
    assert 6 <= len(stored) <= 8
    # AND every object it stored is whole, byte for byte what the origin serves; nothing half-written
    for task in stored:
        with urllib.request.urlopen(task.url, timeout=10) as answer:
            assert (root / task.key).read_bytes() == answer.read(), task.key
    assert not [path for path in root.rglob(f"{TEMP_PREFIX}*")]
    # WHEN the batch is redelivered with time enough
    response = handler(event, LONG)
    # THEN chunk 0 resumes and both chunks complete
    assert response["processed"] == 2
    assert chunks_done(deps, "cut-short")[:2] == [True, True]
    assert all((root / task.key).exists() for task in tasks)
