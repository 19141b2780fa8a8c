"""Live-event end use case: signature checks, event parsing, job IDs, windows, and job creation."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.signing import live_event_signed

from harvest.adapters.relay import OutboxRelay
from harvest.adapters.sql.db import Database
from harvest.adapters.sql.jobstore import SqlJobStore
from harvest.adapters.sql.queue import SqlQueue
from harvest.domain.registry import parse_registry
from harvest.errors import (
    AuthFailure,
    ConfigError,
    InvalidParameter,
    MissingParameter,
    SignatureExpire,
    SignatureFailure,
)
from harvest.settings import LiveEventConfig, Settings
from harvest.usecases.live_events import (
    MAX_JOB_ID_LENGTH,
    LiveEventDeps,
    flatten_payload,
    handle_live_event,
    harvest_window,
    job_id_for,
    parse_live_event,
    verify_signature,
)

KEY = "demo-callback-key"
NOW = 1_717_250_000.0
DESTINATION = "https://vod-1250000000.cos.ap-singapore.myqcloud.com/live/"


def css(event_type: int, event_time: int, **extra: Any) -> dict[str, Any]:
    body = {
        "app": "push.example.com",
        "appid": 1250000000,
        "appname": "live",
        "stream_id": "news_main",
        "channel_id": "news_main",
        "event_type": event_type,
        "event_time": event_time,
        "sequence": "2210464508206756938",
        **extra,
    }
    return live_event_signed(body, event_time + 600, KEY)


def streamlive(event_type: int, t: int, channel_id: str = "6A4F2D5E000B1C2D3E4F") -> dict[str, Any]:
    data = {"appid": 1250000000, "channel_id": channel_id, "event_type": event_type}
    data.update(input_id="IN1", pipeline=0)
    return {"data": live_event_signed(data, t, KEY)}


# --- signature ------------------------------------------------------------------------------------


def test_a_correct_sign_with_a_future_t_passes() -> None:
    verify_signature(live_event_signed({}, int(NOW) + 60, KEY), KEY, NOW)
    # t as a string and an upper-case hex sign are the same signature
    payload = live_event_signed({}, int(NOW) + 60, KEY)
    verify_signature({"t": str(payload["t"]), "sign": payload["sign"].upper()}, KEY, NOW)


def test_a_sign_made_with_another_key_is_a_signature_failure() -> None:
    with pytest.raises(SignatureFailure, match="sign does not match"):
        verify_signature(live_event_signed({}, int(NOW) + 60, "other-key"), KEY, NOW)


def test_a_t_in_the_past_is_expired_even_with_a_correct_sign() -> None:
    with pytest.raises(SignatureExpire, match="expired"):
        verify_signature(live_event_signed({}, int(NOW) - 1, KEY), KEY, NOW)


@pytest.mark.parametrize("payload", [{"t": 4102444800}, {"sign": "abc"}, {"t": "soon", "sign": "abc"}])
def test_a_missing_sign_or_t_is_an_auth_failure(payload: dict[str, Any]) -> None:
    with pytest.raises(AuthFailure):
        verify_signature(payload, KEY, NOW)


# --- parsing --------------------------------------------------------------------------------------


def test_streamlive_fields_are_read_from_data_with_t_and_sign_inside_or_beside() -> None:
    inside = {"data": {"event_type": 330, "channel_id": "ch", "t": 5, "sign": "s"}}
    beside = {"data": {"event_type": 330, "channel_id": "ch"}, "t": 5, "sign": "s"}
    assert flatten_payload(inside) == flatten_payload(beside) == {
        "event_type": 330,
        "channel_id": "ch",
        "t": 5,
        "sign": "s",
    }


def test_a_css_disconnect_carries_its_push_duration_in_seconds() -> None:
    event = parse_live_event(css(0, 1_717_246_800, push_duration="3600500"), NOW)
    assert event is not None
    assert (event.source, event.started, event.stream_ids) == ("css", False, ("news_main",))
    assert event.event_time == 1_717_246_800
    assert event.push_duration == pytest.approx(3600.5)
    assert event.id_suffix == "2210464508206756938"


def test_css_start_and_stop_of_one_session_share_the_session_key() -> None:
    start = parse_live_event(css(1, 1_717_243_200), NOW)
    stop = parse_live_event(css(0, 1_717_246_800), NOW)
    assert start is not None
    assert stop is not None
    assert start.started
    assert not stop.started
    assert start.session == stop.session


def test_streamlive_looks_up_the_channel_id_then_the_input_id() -> None:
    event = parse_live_event(flatten_payload(streamlive(330, int(NOW) + 600)), NOW)
    assert event is not None
    assert (event.source, event.started) == ("streamlive", False)
    assert event.stream_ids == ("6A4F2D5E000B1C2D3E4F", "IN1")
    # no event_time in StreamLive's payload: the time of receipt stands in, t keeps the ID stable
    assert event.event_time == NOW
    assert event.id_suffix == str(int(NOW) + 600)


def test_other_event_types_are_not_push_events_and_a_missing_type_is_invalid() -> None:
    assert parse_live_event({"event_type": 100, "stream_id": "s"}, NOW) is None  # a recording event
    with pytest.raises(InvalidParameter):
        parse_live_event({"stream_id": "s"}, NOW)


# --- job IDs and windows --------------------------------------------------------------------------


def test_job_ids_are_sanitised_and_stable() -> None:
    assert job_id_for("news main/hd", "22104645") == "live-news-main-hd-22104645"
    assert job_id_for("news main/hd", "22104645") == job_id_for("news main/hd", "22104645")


def test_long_stream_ids_are_cut_to_128_characters_without_colliding() -> None:
    a = job_id_for("x" * 300 + "a", "2210464508206756938")
    b = job_id_for("x" * 300 + "b", "2210464508206756938")
    assert len(a) == len(b) == MAX_JOB_ID_LENGTH
    assert a != b
    assert a.endswith("-2210464508206756938")
    assert all(ch.isalnum() or ch in "_-" for ch in a)


def test_window_adds_lead_and_tail() -> None:
    assert harvest_window(1000.0, 2000.0, 5000.0, 10, 10, 86400) == (990, 2010)


def test_window_end_never_passes_now() -> None:
    assert harvest_window(1000.0, 2000.0, 2004.5, 10, 10, 86400) == (990, 2004)


def test_window_keeps_the_most_recent_24_hours() -> None:
    assert harvest_window(0.0, 100_000.0, 200_000.0, 10, 10, 10**6) == (100_010 - 86_400, 100_010)


def test_window_starts_no_earlier_than_the_startover_window() -> None:
    assert harvest_window(1000.0, 2000.0, 3000.0, 10, 10, 1500) == (1500, 2010)


def test_a_session_that_left_the_startover_window_has_no_window() -> None:
    assert harvest_window(1000.0, 2000.0, 9000.0, 10, 10, 3600) is None


# --- config ---------------------------------------------------------------------------------------


def test_config_reads_the_env_and_refuses_an_empty_key() -> None:
    config = LiveEventConfig.from_env({"HARVEST_CALLBACK_KEY": "k", "HARVEST_LIVE_LEAD_SECONDS": "5"})
    assert (config.callback_key, config.lead_seconds, config.tail_seconds, config.default_duration) == (
        "k",
        5,
        10,
        3600,
    )
    with pytest.raises(ConfigError, match="HARVEST_CALLBACK_KEY"):
        LiveEventConfig.from_env({})
    with pytest.raises(ConfigError, match="HARVEST_LIVE_TAIL_SECONDS"):
        LiveEventConfig.from_env({"HARVEST_CALLBACK_KEY": "k", "HARVEST_LIVE_TAIL_SECONDS": "-1"})


# --- the use case on a real SQLite store -----------------------------------------------------------

REGISTRY = parse_registry(
    {
        "channels": [
            {
                "name": "news",
                "endpoints": [{"name": "hls", "url": "https://origin.example.com/news/index.m3u8"}],
            },
            {
                "name": "sports",
                "endpoints": [
                    {"name": "short", "url": "https://origin.example.com/s.m3u8", "startover_window": 7200}
                ],
            },
        ],
        "streams": [
            {"stream_id": "news*", "channel": "news", "endpoint": "hls"},
            {"stream_id": "6A4F2D5E*", "channel": "sports", "endpoint": "short"},
        ],
    }
)


class Harness:
    def __init__(self, tmp_path: Path, destination: str = DESTINATION) -> None:
        self.db = Database.connect(f"sqlite:///{tmp_path / 'harvest.db'}")
        self.store = SqlJobStore(self.db)
        self.queue = SqlQueue(self.db)
        self.now = NOW
        self.deps = LiveEventDeps(
            store=self.store,
            relay=OutboxRelay(self.store, self.queue),
            registry=REGISTRY,
            settings=Settings(region="ap-singapore", default_destination=destination),
            config=LiveEventConfig(callback_key=KEY),
            clock=lambda: self.now,
        )

    def handle(self, payload: dict[str, Any]) -> Any:
        return handle_live_event(self.deps, payload)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.db.close()


def test_a_css_disconnect_creates_a_job_over_the_session(harness: Harness) -> None:
    # GIVEN a disconnect 100 s ago of a push that lasted an hour
    stop = int(NOW) - 100
    result = harness.handle(css(0, stop, push_duration="3600000"))
    # THEN a job covers [start - 10 s, stop + 10 s] on the mapped endpoint, and its plan is queued
    assert (result.outcome, result.job_id) == ("created", "live-news_main-2210464508206756938")
    job = harness.store.get(result.job_id)
    assert (job.channel_name, job.endpoint_name, job.time_format) == ("news", "hls", "Epoch seconds")
    assert (job.start_epoch, job.end_epoch) == (stop - 3600 - 10, stop + 10)
    assert job.destination == DESTINATION
    leased = harness.queue.receive(10, 60)
    assert [d.message.body for d in leased] == [{"kind": "plan", "job_id": result.job_id}]


def test_a_repeated_disconnect_is_answered_as_already_created(harness: Harness) -> None:
    payload = css(0, int(NOW) - 100, push_duration="60000")
    first = harness.handle(payload)
    again = harness.handle(payload)
    assert (first.outcome, again.outcome) == ("created", "duplicate")
    assert again.job_id == first.job_id
    assert harness.store.list(None, 0, 10).total == 1


def test_a_push_start_creates_nothing(harness: Harness) -> None:
    result = harness.handle(css(1, int(NOW) - 100))
    assert result.outcome == "started"
    assert harness.store.list(None, 0, 10).total == 0


def test_an_unknown_stream_is_ignored(harness: Harness) -> None:
    result = harness.handle(css(0, int(NOW) - 100, stream_id="weather", channel_id="weather"))
    assert result.outcome == "ignored"
    assert "weather" in result.message
    assert harness.store.list(None, 0, 10).total == 0


def test_streamlive_stop_starts_where_this_process_saw_the_start(harness: Harness) -> None:
    # GIVEN a StreamLive start heard 30 minutes ago by this process
    harness.now = NOW - 1800
    assert harness.handle(streamlive(329, int(NOW) - 1200)).outcome == "started"
    # WHEN the stop arrives now
    harness.now = NOW
    result = harness.handle(streamlive(330, int(NOW) + 600))
    # THEN the window runs from the start (less the lead) to now (the tail would be in the future)
    assert result.outcome == "created"
    job = harness.store.get(result.job_id)
    assert (job.channel_name, job.endpoint_name) == ("sports", "short")
    assert (job.start_epoch, job.end_epoch) == (NOW - 1800 - 10, NOW)


def test_streamlive_stop_without_a_known_start_is_clipped_to_the_startover_window(harness: Harness) -> None:
    # GIVEN no start seen, a default duration of 9000 s and an endpoint keeping only 7200 s of history
    harness.deps = dataclasses.replace(harness.deps, config=LiveEventConfig(KEY, default_duration=9000))
    result = harness.handle(streamlive(330, int(NOW) + 600))
    job = harness.store.get(result.job_id)
    # THEN the window starts where the endpoint's history starts
    assert (job.start_epoch, job.end_epoch) == (NOW - 7200, NOW)


def test_without_a_destination_the_job_is_refused_with_the_create_error(tmp_path: Path) -> None:
    h = Harness(tmp_path, destination="")
    try:
        with pytest.raises(MissingParameter, match="Destination"):
            h.handle(css(0, int(NOW) - 100, push_duration="60000"))
    finally:
        h.db.close()


def test_a_forged_notification_is_refused_before_anything_is_looked_up(harness: Harness) -> None:
    payload = css(0, int(NOW) - 100, push_duration="60000")
    payload["sign"] = "0" * 32
    with pytest.raises(SignatureFailure):
        harness.handle(payload)
    assert harness.store.list(None, 0, 10).total == 0
