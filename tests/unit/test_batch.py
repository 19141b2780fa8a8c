"""The record loop (handlers/batch.py): every branch, with a manual clock and no real waiting."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from harvest.domain.job import Message, Step, chunk_message, finalize_message, plan_message
from harvest.errors import Unavailable
from harvest.handlers.batch import (
    BatchFailed,
    BatchProcessor,
    Outcome,
    ShouldStop,
    deadline_from,
    process_trigger_batch,
)
from harvest.logs import JsonFormatter
from harvest.ports import Delivery
from harvest.triggers import build_ckafka_event, parse_ckafka_event, parse_deliveries
from harvest.usecases.harvest import Interrupted

LIMIT_MS = 120_000  # with the 60 s margin: records may start during the first 60 s
CONTEXT = {"request_id": "req-1", "time_limit_in_ms": LIMIT_MS}


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A record handler: records each step it is given, and runs the scripted action of its job."""

    def __init__(self, actions: Mapping[str, Callable[[ShouldStop], None]] | None = None) -> None:
        self.actions = dict(actions or {})
        self.seen: list[str] = []

    def __call__(self, step: Step, should_stop: ShouldStop) -> None:
        self.seen.append(step.job_id)
        action = self.actions.get(step.job_id)
        if action is not None:
            action(should_stop)


def event(*messages: Message) -> dict[str, Any]:
    return build_ckafka_event(list(enumerate(messages, start=10)))


def processor(
    handle: Recorder,
    clock: Clock,
    stopping: Callable[[], bool] = lambda: False,
    waits: list[float] | None = None,
) -> BatchProcessor[Mapping[str, Any]]:
    sleep = (waits if waits is not None else []).append
    return BatchProcessor(parse_ckafka_event, handle, stopping, clock=clock, sleep=sleep)


@pytest.fixture
def json_log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    """The batch module's log lines as the JSON SCF ships (request_id and job_id come from context)."""
    caplog.set_level(logging.DEBUG, logger="harvest.handlers.batch")
    caplog.handler.setFormatter(JsonFormatter())
    return lambda: [json.loads(line) for line in caplog.text.splitlines() if line.startswith("{")]


def test_every_record_of_a_good_batch_is_done_and_summed_up() -> None:
    # GIVEN a batch of three readable records
    handle = Recorder()
    # WHEN it is processed
    result = processor(handle, Clock()).process(
        event(plan_message("a"), chunk_message("a", 0), plan_message("b")), CONTEXT
    )
    # THEN each ran once, in order, and nothing needs redelivery
    assert handle.seen == ["a", "a", "b"]
    assert [r.outcome for r in result.records] == [Outcome.DONE] * 3
    assert [r.record.ref for r in result.records] == ["work/0@10", "work/0@11", "work/0@12"]
    assert not result.must_redeliver
    assert result.response() == {"processed": 3, "skipped": 0, "unreadable": []}


def test_a_failing_record_keeps_its_exception_and_traceback_and_its_neighbours_run(
    json_log: Callable[[], list[dict[str, Any]]],
) -> None:
    # GIVEN a batch whose middle record's step raises
    def explode(should_stop: ShouldStop) -> None:
        raise RuntimeError("cannot write vod/0.ts: disk full")

    handle = Recorder({"boom": explode})
    batch = event(plan_message("a"), plan_message("boom"), finalize_message("c"))
    # WHEN the SCF function processes it
    with pytest.raises(BatchFailed) as info:
        process_trigger_batch(batch, CONTEXT, processor(handle, Clock()))
    # THEN the neighbours ran, and the failure is kept with its exception and traceback
    assert handle.seen == ["a", "boom", "c"]
    result = info.value.result
    assert [r.outcome for r in result.records] == [Outcome.DONE, Outcome.FAILED, Outcome.DONE]
    failed = result.of(Outcome.FAILED)[0]
    assert failed.record.ref == "work/0@11"
    assert isinstance(failed.exception, RuntimeError)
    assert failed.error == "cannot write vod/0.ts: disk full"
    assert failed.exception.__traceback__ is not None
    assert "in explode" in failed.traceback
    assert failed.traceback.rstrip().endswith("disk full")
    assert str(info.value) == "3 records: work/0@11: cannot write vod/0.ts: disk full"
    # AND it was logged once, at error level, with the record's ref, its job ID, the request and the traceback
    errors = [line for line in json_log() if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["message"] == "record work/0@11 failed: RuntimeError: cannot write vod/0.ts: disk full"
    assert (errors[0]["job_id"], errors[0]["request_id"]) == ("boom", "req-1")
    assert "in explode" in errors[0]["exception"]


def test_an_unreadable_record_is_logged_and_reported_never_run_nor_redelivered(
    json_log: Callable[[], list[dict[str, Any]]],
) -> None:
    # GIVEN a batch with a record that is not JSON and one that is no known step, between good ones
    batch = event(plan_message("a"), finalize_message("c"))
    batch["Records"].insert(1, {"Ckafka": {"topic": "work", "partition": 0, "offset": 9, "msgBody": "{no"}})
    batch["Records"].append(
        {"Ckafka": {"topic": "work", "partition": 1, "offset": 5, "msgBody": json.dumps({"kind": "x"})}}
    )
    handle = Recorder()
    # WHEN it is processed
    response = process_trigger_batch(batch, CONTEXT, processor(handle, Clock()))
    # THEN the good records ran, the unreadable ones were skipped and reported (the pump dead-letters them)
    assert handle.seen == ["a", "c"]
    assert response["processed"] == 2
    assert response["skipped"] == 2
    assert response["unreadable"][0].startswith("work/0@9: unreadable record: msgBody is not JSON")
    assert response["unreadable"][1] == "work/1@5: unreadable record: the message body has no job_id"
    # AND each was logged at error level
    errors = [line["message"] for line in json_log() if line["level"] == "ERROR"]
    assert [message.split(":")[0] for message in errors] == ["skipping work/0@9", "skipping work/1@5"]


def test_an_outage_is_waited_out_in_place_and_the_record_is_done() -> None:
    # GIVEN a step that meets an unavailable database twice, then succeeds
    tries: list[int] = []

    def flaky(should_stop: ShouldStop) -> None:
        tries.append(1)
        if len(tries) <= 2:
            raise Unavailable("PostgreSQL is unavailable: connection refused")

    waits: list[float] = []
    handle = Recorder({"a": flaky})
    # WHEN it is processed with time to spare
    result = processor(handle, Clock(), waits=waits).process(event(plan_message("a")), CONTEXT)
    # THEN it ran three times, 0.5 s then 1 s apart, and is done: no redelivery, no attempt spent
    assert len(tries) == 3
    assert waits == [0.5, 1.0]
    assert [r.outcome for r in result.records] == [Outcome.DONE]


def test_an_outage_that_outlasts_the_deadline_leaves_the_record_and_the_rest() -> None:
    # GIVEN a database that stays down, on a clock that the waits move forward
    clock = Clock()

    def down(should_stop: ShouldStop) -> None:
        raise Unavailable("PostgreSQL is unavailable: connection refused")

    def sleep(seconds: float) -> None:
        clock.now += seconds

    handle = Recorder({"a": down})
    batch = event(plan_message("a"), plan_message("b"))
    # WHEN the batch is processed
    result = BatchProcessor(parse_ckafka_event, handle, clock=clock, sleep=sleep).process(batch, CONTEXT)
    # THEN the step was retried until the next wait would pass the deadline, then left with the rest
    assert 55 <= clock.now - 1000.0 <= 60
    assert handle.seen == ["a"] * len(handle.seen)
    assert len(handle.seen) > 10
    assert [r.outcome for r in result.records] == [Outcome.LEFT, Outcome.LEFT]
    assert result.left_because == (
        "PostgreSQL is unavailable: connection refused, still when the invocation's deadline came"
    )


def test_records_after_the_deadline_are_not_started_and_left_for_redelivery(
    json_log: Callable[[], list[dict[str, Any]]],
) -> None:
    # GIVEN a 120 s invocation (records may start for 60 s) whose first two records take 35 s each
    clock = Clock()

    def slow(should_stop: ShouldStop) -> None:
        clock.now += 35

    handle = Recorder({"a": slow, "b": slow})
    batch = event(plan_message("a"), plan_message("b"), plan_message("c"), plan_message("d"))
    # WHEN the SCF function processes the batch
    with pytest.raises(BatchFailed) as info:
        process_trigger_batch(batch, CONTEXT, processor(handle, clock))
    # THEN records 1 and 2 ran; 3 and 4 were never started and are left for redelivery
    assert handle.seen == ["a", "b"]
    result = info.value.result
    assert [r.outcome for r in result.records] == [Outcome.DONE, Outcome.DONE, Outcome.LEFT, Outcome.LEFT]
    why = "the invocation's deadline is near: less than 60 s of its time limit left"
    assert result.left_because == why
    assert all(r.error == why and r.exception is None for r in result.of(Outcome.LEFT))
    assert str(info.value) == f"4 records: 2 left for redelivery ({why})"
    # AND the log said how many were left, which, and why, once, as a warning (not an error)
    lines = json_log()
    assert [line["level"] for line in lines] == ["WARNING"]
    assert lines[0]["message"] == f"2 of 4 records left for redelivery ({why}): work/0@12, work/0@13"


def test_a_chunk_interrupted_at_the_deadline_is_left_with_the_records_after_it() -> None:
    # GIVEN a chunk that downloads (10 s a segment) until should_stop says the deadline came
    clock = Clock()
    segments: list[int] = []

    def chunk(should_stop: ShouldStop) -> None:
        while not should_stop():
            segments.append(1)
            clock.now += 10
        raise Interrupted("stopped before v0/7.ts")

    handle = Recorder({"a": chunk})
    # WHEN the batch is processed
    result = processor(handle, clock).process(event(chunk_message("a", 0), chunk_message("a", 1)), CONTEXT)
    # THEN the chunk stopped at the deadline (60 s: six segments), and it and the next are left
    assert len(segments) == 6
    assert handle.seen == ["a"]
    assert [r.outcome for r in result.records] == [Outcome.LEFT, Outcome.LEFT]
    assert result.left_because == "chunk 0 interrupted: the invocation's deadline came"
    assert result.must_redeliver


def test_the_stopping_flag_leaves_every_record_not_yet_started() -> None:
    # GIVEN a process told to stop while the first record runs
    stopping = [False]

    def stop(should_stop: ShouldStop) -> None:
        stopping[0] = True

    handle = Recorder({"a": stop})
    # WHEN the batch is processed
    result = processor(handle, Clock(), stopping=lambda: stopping[0]).process(
        event(plan_message("a"), plan_message("b"), plan_message("c")), CONTEXT
    )
    # THEN the first is done and the others are left, saying why
    assert handle.seen == ["a"]
    assert [r.outcome for r in result.records] == [Outcome.DONE, Outcome.LEFT, Outcome.LEFT]
    assert result.left_because == "the process is stopping"


def test_an_outage_at_shutdown_leaves_the_record_instead_of_failing_it() -> None:
    # GIVEN a process that is stopping while its step meets an outage
    def down(should_stop: ShouldStop) -> None:
        raise Unavailable("COS is unavailable: HTTP 503")

    result = processor(Recorder({"a": down}), Clock(), stopping=lambda: True).process(
        event(plan_message("a")), CONTEXT
    )
    # THEN no record even started: the flag is checked before each one
    assert [r.outcome for r in result.records] == [Outcome.LEFT]
    # AND a step already running when the stop comes is left, not failed
    stopping = [False]

    def down_then_stop(should_stop: ShouldStop) -> None:
        stopping[0] = True
        raise Unavailable("COS is unavailable: HTTP 503")

    result = processor(Recorder({"a": down_then_stop}), Clock(), stopping=lambda: stopping[0]).process(
        event(plan_message("a")), CONTEXT
    )
    assert [(r.outcome, r.error) for r in result.records] == [
        (Outcome.LEFT, "COS is unavailable: HTTP 503, still when the process is stopping")
    ]


def test_the_deadline_comes_from_the_context_time_limit_less_the_margin() -> None:
    clock = Clock()
    assert deadline_from({"time_limit_in_ms": 900_000}, clock=clock) == 1000.0 + 840
    assert deadline_from({"time_limit_in_ms": 30_000}, clock=clock) == 1000.0 + 15  # at least half the limit
    assert deadline_from({"time_limit_in_ms": 900_000}, margin=100, clock=clock) == 1000.0 + 800
    for broken in (
        None,
        {},
        {"time_limit_in_ms": "900000"},
        {"time_limit_in_ms": True},
        {"time_limit_in_ms": -1},
    ):
        assert deadline_from(broken, clock=clock) == 1000.0 + 840  # SCF's longest limit


def test_the_local_pumps_deliveries_are_read_by_their_own_parser() -> None:
    # GIVEN two leased deliveries, one of them no known step
    deliveries = [
        Delivery(41, plan_message("a"), attempts=1),
        Delivery(42, Message("work", {"kind": "transcode", "job_id": "b"}, "b"), attempts=3),
    ]
    handle = Recorder()
    # WHEN the same record loop reads them with the deliveries parser
    result = BatchProcessor(parse_deliveries, handle, clock=Clock()).process(deliveries, CONTEXT)
    # THEN each is named by its queue message ID, and the unreadable one says why
    assert handle.seen == ["a"]
    assert [(r.record.ref, r.outcome, r.error) for r in result.records] == [
        ("message 41", Outcome.DONE, ""),
        ("message 42", Outcome.UNREADABLE, "unreadable record: unknown message kind 'transcode'"),
    ]
