"""The live_event_end SCF function end to end: sample events -> functions/live_event_end/index.py -> jobs.

The function is loaded by path, as SCF loads it, and wired from environment variables pointing at a
temporary SQLite database and channel registry. The sample events are re-timed to now and re-signed,
so windows fall inside the endpoint's history and signatures have not expired.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.signing import live_event_sign

from harvest.adapters.sql.db import Database
from harvest.adapters.sql.jobstore import SqlJobStore

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
KEY = "demo-callback-key"  # the key the samples are signed with
CSS_JOB_ID = "live-news_main-2210464508206756938"
REGISTRY = """
channels:
  - name: news
    endpoints:
      - {name: hls, url: "https://origin.example.com/news/index.m3u8", startover_window: 604800}
  - name: sports
    endpoints:
      - {name: hls, url: "https://origin.example.com/sports/index.m3u8", startover_window: 604800}
streams:
  - {stream_id: "news*", channel: news, endpoint: hls}
  - {stream_id: "6A4F2D5E*", channel: sports, endpoint: hls}
"""

Handler = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in list(os.environ):
        if name.startswith("HARVEST_"):
            monkeypatch.delenv(name)
    registry = tmp_path / "channels.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'harvest.db'}"
    monkeypatch.setenv("HARVEST_DATABASE_URL", url)
    monkeypatch.setenv("HARVEST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HARVEST_CHANNELS", str(registry))
    monkeypatch.setenv("HARVEST_REGION", "ap-singapore")
    monkeypatch.setenv("HARVEST_DEFAULT_DESTINATION", "https://vod-1250000000.cos.ap-singapore.myqcloud.com/live/")
    monkeypatch.setenv("HARVEST_CALLBACK_KEY", KEY)
    return url


@pytest.fixture
def main_handler(database_url: str) -> Handler:
    return load_handler()


def load_handler() -> Handler:
    """A fresh copy of the SCF entry module, as a new SCF instance would load it."""
    source = ROOT / "functions" / "live_event_end" / "index.py"
    spec = importlib.util.spec_from_file_location(f"live_event_end_{uuid.uuid4().hex}", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Handler = module.main_handler
    return handler


@pytest.fixture
def store(database_url: str) -> Iterator[SqlJobStore]:
    db = Database.connect(database_url)
    yield SqlJobStore(db)
    db.close()


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def retimed(
    name: str, *, event_time: int | None = None, key: str = KEY, t: int | None = None, **fields: Any
) -> dict[str, Any]:
    """The sample with its notification re-timed and re-signed (t/sign kept where the sample has them)."""
    event = copy.deepcopy(sample(name))
    body = json.loads(event["body"])
    target = body["data"] if "data" in body and "t" in body["data"] else body
    fields_at = body.get("data", body)
    if event_time is not None:
        fields_at["event_time"] = event_time
    fields_at.update(fields)
    expiry = int(time.time()) + 600 if t is None else t
    target["t"] = expiry
    target["sign"] = live_event_sign(key, expiry)
    event["body"] = json.dumps(body)
    return event


def call(handler: Handler, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = handler(event, {"request_id": "test-request", "time_limit_in_ms": 30000})
    assert response["isBase64Encoded"] is False
    assert response["headers"] == {"Content-Type": "application/json"}
    body: dict[str, Any] = json.loads(response["body"])
    return response["statusCode"], body


def test_a_css_disconnect_creates_the_session_job(main_handler: Handler, store: SqlJobStore) -> None:
    # GIVEN the CSS disconnect sample, re-timed to 100 s ago, for a push of 30 minutes
    stop = int(time.time()) - 100
    event = retimed("css_push_stop.json", event_time=stop, push_duration="1800000")
    # WHEN CSS delivers it
    status, body = call(main_handler, event)
    # THEN it is answered 200 code 0 and a job covers the session plus the 10 s lead and tail
    assert (status, body["code"], body["outcome"], body["job_id"]) == (200, 0, "created", CSS_JOB_ID)
    job = store.get(CSS_JOB_ID)
    assert (job.channel_name, job.endpoint_name, job.time_format) == ("news", "hls", "Epoch seconds")
    assert (job.start_epoch, job.end_epoch) == (stop - 1800 - 10, stop + 10)
    assert (job.start_time, job.end_time) == (str(stop - 1810), str(stop + 10))


def test_a_repeated_delivery_creates_one_job(main_handler: Handler, store: SqlJobStore) -> None:
    event = retimed("css_push_stop.json", event_time=int(time.time()) - 100, push_duration="60000")
    first = call(main_handler, event)
    # WHEN CSS delivers the same notification again
    second = call(main_handler, event)
    # THEN both are successes and there is still exactly one job
    assert first[0] == second[0] == 200
    assert (first[1]["outcome"], second[1]["outcome"]) == ("created", "duplicate")
    assert second[1]["job_id"] == CSS_JOB_ID
    assert store.list(None, 0, 10).total == 1


def test_the_shipped_push_start_samples_are_validly_signed_and_create_nothing(
    main_handler: Handler, store: SqlJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the samples exactly as shipped (signed with the demo key, t in 2100)
    for name in ("css_push_start.json", "streamlive_push_start.json"):
        # THEN a t that far ahead is refused (CSS signs with now + 10 min)
        status, body = call(main_handler, sample(name))
        assert status == 403, name
        assert "ahead" in body["message"], name
    # AND with the window opened wide, each is accepted as a push start: the signature is valid
    monkeypatch.setenv("HARVEST_LIVE_SIGN_MAX_AHEAD", str(100 * 365 * 86400))
    wide_open = load_handler()
    for name in ("css_push_start.json", "streamlive_push_start.json"):
        status, body = call(wide_open, sample(name))
        assert (status, body["code"], body["outcome"]) == (200, 0, "started"), name
    assert store.list(None, 0, 10).total == 0


def test_a_bad_sign_is_refused_with_403(main_handler: Handler, store: SqlJobStore) -> None:
    event = retimed("css_push_stop.json", event_time=int(time.time()) - 100, key="not-the-callback-key")
    status, body = call(main_handler, event)
    assert status == 403
    assert body["code"] == 403
    assert "sign does not match" in body["message"]
    assert store.list(None, 0, 10).total == 0


def test_an_expired_t_is_refused_with_403(main_handler: Handler, store: SqlJobStore) -> None:
    now = int(time.time())
    event = retimed("css_push_stop.json", event_time=now - 1000, t=now - 400)
    status, body = call(main_handler, event)
    assert status == 403
    assert body["code"] == 403
    assert "expired" in body["message"]
    assert store.list(None, 0, 10).total == 0


def test_an_unknown_stream_is_answered_200_and_ignored(main_handler: Handler, store: SqlJobStore) -> None:
    event = retimed(
        "css_push_stop.json", event_time=int(time.time()) - 100, stream_id="weather", channel_id="weather"
    )
    status, body = call(main_handler, event)
    assert (status, body["code"], body["outcome"]) == (200, 0, "ignored")
    assert "weather" in body["message"]
    assert store.list(None, 0, 10).total == 0


def test_a_body_that_is_not_json_is_a_400(main_handler: Handler) -> None:
    event = sample("css_push_stop.json")
    event["body"] = "{not json"
    status, body = call(main_handler, event)
    assert status == 400
    assert body["code"] == 400


def test_streamlive_start_then_stop_creates_a_job_from_the_start(
    main_handler: Handler, store: SqlJobStore
) -> None:
    # GIVEN the StreamLive start (t/sign inside "data") and stop (t/sign beside it), re-signed
    before_start = time.time()
    status, body = call(main_handler, retimed("streamlive_push_start.json"))
    after_start = time.time()
    assert (status, body["outcome"]) == (200, "started")
    # WHEN the stop reaches the same instance
    status, body = call(main_handler, retimed("streamlive_push_stop.json"))
    after_stop = time.time()
    # THEN a job on the mapped channel runs from the start (less the lead) to the moment of the stop
    assert (status, body["outcome"]) == (200, "created")
    job = store.get(body["job_id"])
    assert body["job_id"].startswith("live-6A4F2D5E000B1C2D3E4F-")
    assert (job.channel_name, job.endpoint_name) == ("sports", "hls")
    assert int(before_start) - 10 <= job.start_epoch <= int(after_start) - 9
    assert job.end_epoch <= after_stop
    assert job.end_epoch > job.start_epoch
