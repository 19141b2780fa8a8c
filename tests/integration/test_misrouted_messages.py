"""Through the real handlers and pump: a message no function should get is never acked in silence.

A known step on the wrong topic (misrouted) and a body that is no known step (unreadable) are each
logged at error level and end as dead letters an operator sees (`harvest admin dead-letters`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from tests.support.clock import ManualClock
from tests.support.engine import Engine
from tests.support.media import TEST_NOW
from tests.support.polling import eventually

from harvest.adapters.sql.db import Database
from harvest.adapters.sql.operations import SqlOperations
from harvest.devtools import ChannelSpec, LiveOrigin, Pool
from harvest.domain.job import TOPIC_FINALIZE, TOPIC_WORK, Message, finalize_message

pytest_plugins = ("tests.support.media", "tests.support.engine")
pytestmark = pytest.mark.media


def test_misrouted_and_unreadable_messages_are_logged_and_dead_lettered(
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    engine_factory: Callable[..., Engine],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN the engine's pump with two attempts per message
    clock = ManualClock(TEST_NOW)
    origin = start_origin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}, clock=clock)
    engine = engine_factory(origin, clock, queue_max_attempts=2)
    database = Database.connect(engine.settings.effective_database_url)
    operations = SqlOperations(database)
    # WHEN a finalize step arrives on the work topic, and bodies that are no known step
    caplog.set_level(logging.ERROR)
    engine.deps.queue.publish(
        [
            Message(TOPIC_WORK, finalize_message("misrouted").body, key="misrouted"),
            Message(TOPIC_WORK, {"kind": "transcode", "job_id": "unknown-kind"}, key="unknown-kind"),
            Message(TOPIC_FINALIZE, {"kind": "chunk", "job_id": "no-index"}, key="no-index"),
        ]
    )
    eventually(lambda: len(operations.dead_letters()) == 3, 30, "three dead letters")
    # THEN each is a dead letter whose last error says what was wrong, counted as dead on its topic
    errors = {letter.job_id: letter.error for letter in operations.dead_letters()}
    assert "a finalize message reached the worker function" in errors["misrouted"]
    assert "unknown message kind 'transcode'" in errors["unknown-kind"]
    assert "a chunk message without a chunk index" in errors["no-index"]
    dead = {state.topic: state.dead for state in operations.topics(TEST_NOW)}
    assert dead[TOPIC_WORK] == 2
    assert dead[TOPIC_FINALIZE] == 1
    # AND the log said so at error level, for every attempt and for the dead letter
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged.count("dead-lettered") == 3
    assert "reached the worker function" in logged
    assert "unknown message kind 'transcode'" in logged
    database.close()
