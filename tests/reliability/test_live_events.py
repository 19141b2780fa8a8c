"""CSS / StreamLive notifications as an attacker or an unlucky operator sends them: replays (also
after the job was deleted, also to another instance), t far ahead, floods, a dual-pipeline input,
and API callers squatting the job ID a stop will use.

Each "instance" is the live_event_end function built from the environment by the composition root
(as SCF builds it), on one database: a SQLite file, or a schema of the machine's PostgreSQL.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tests.reliability.table import Recorder
from tests.support.api_stack import job_params, running_api_stack
from tests.support.signing import live_event_signed

from harvest.adapters.sql import Database, SqlJobStore
from harvest.composition import build_live_event_end_handler
from harvest.domain.job import JobStatus

KEY = "reliability-callback-key"
POSTGRES_URL = os.environ.get("HARVEST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REGISTRY = """\
channels:
  - name: news
    endpoints:
      - {name: hls, url: "http://127.0.0.1:9/news/index.m3u8", startover_window: 604800}
streams:
  - {stream_id: "news*", channel: news, endpoint: hls}
  - {stream_id: "6A4F2D5E*", channel: news, endpoint: hls}
"""
Handler = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


def css_stop(sequence: str, stream: str = "news_main", t: int | None = None, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    fields = {"event_type": 0, "stream_id": stream, "channel_id": stream, "sequence": sequence,
              "event_time": now - 60, "push_duration": "600000", **extra}
    return live_event_signed(fields, now + 600 if t is None else t, KEY)


def streamlive_stop(pipeline: int, t: int) -> dict[str, Any]:
    data = {"appid": 1250000000, "channel_id": "6A4F2D5E000B1C2D3E4F", "event_type": 330,
            "input_id": "5F3E2D1C0B0A09080706", "pipeline": pipeline}
    return {"data": live_event_signed(data, t, KEY)}


def gateway_event(payload: dict[str, Any], source_ip: str = "42.81.194.37") -> dict[str, Any]:
    return {
        "httpMethod": "POST",
        "path": "/callbacks/live",
        "headers": {"content-type": "application/json"},
        "body": json.dumps(payload),
        "isBase64Encoded": False,
        "queryString": {},
        "requestContext": {"requestId": str(uuid.uuid4()), "sourceIp": source_ip, "stage": "release"},
    }


def send(
    handler: Handler, payload: dict[str, Any], source_ip: str = "42.81.194.37"
) -> tuple[int, dict[str, Any]]:
    response = handler(gateway_event(payload, source_ip), {"request_id": str(uuid.uuid4())})
    return int(response["statusCode"]), json.loads(response["body"])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'harvest.db'}"
        return
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable ({exc})")
    schema = f"harvest_live_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_URL}?schema={schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def instances(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_proxy_env: None
) -> Callable[..., Handler]:
    """new_instance(**env): a live_event_end function as a fresh SCF instance builds it."""
    for name in [name for name in os.environ if name.startswith("HARVEST_")]:
        monkeypatch.delenv(name)
    registry = tmp_path / "channels.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    monkeypatch.setenv("HARVEST_DATABASE_URL", database_url)
    monkeypatch.setenv("HARVEST_CHANNELS", str(registry))
    monkeypatch.setenv("HARVEST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HARVEST_DEFAULT_DESTINATION", "https://vod-1250000000.cos.ap-singapore.myqcloud.com/live/")
    monkeypatch.setenv("HARVEST_CALLBACK_KEY", KEY)

    def new_instance(**env: str) -> Handler:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        handler: Handler = build_live_event_end_handler()
        return handler

    return new_instance


@pytest.fixture
def store(database_url: str) -> Iterator[SqlJobStore]:
    db = Database.connect(database_url)
    yield SqlJobStore(db)
    db.close()


def job_ids(store: SqlJobStore) -> list[str]:
    return sorted(job.id for job in store.list(None, 0, 100).jobs)


def test_a_replayed_stop_creates_nothing_new_on_any_instance_even_after_a_delete(
    instances: Callable[..., Handler], store: SqlJobStore, database_url: str, reliability_record: Recorder
) -> None:
    first, second = instances(), instances()
    stop = css_stop("2210464508206756938")
    # GIVEN a stop notification turned into a job by one instance
    status, body = send(first, stop)
    assert (status, body["outcome"]) == (200, "created")
    job_id = body["job_id"]
    # WHEN it is replayed 5 times, to both instances
    replays = [send(handler, stop)[1]["outcome"] for handler in (first, second) * 2 + (second,)]
    # AND again after the job was finished and deleted
    store.finish(job_id, JobStatus.FAILED, "ended for the test")
    store.delete([job_id])
    after_delete = [send(handler, stop)[1]["outcome"] for handler in (first, second)]
    # THEN nothing new was created: every replay is a duplicate, and the job stays deleted
    assert replays == ["duplicate"] * 5
    assert after_delete == ["duplicate"] * 2
    assert job_ids(store) == []
    backend = database_url.split(":", 1)[0]
    reliability_record(
        "Replayed live-event notification",
        f"one CSS stop replayed 5 times to two instances, then twice after the job was deleted ({backend})",
        f"1 job created; replays: {', '.join(replays)}; after the delete: {', '.join(after_delete)};"
        " 0 jobs left",
    )


def test_t_must_be_within_the_window_around_now(
    instances: Callable[..., Handler], store: SqlJobStore, database_url: str, reliability_record: Recorder
) -> None:
    if database_url.startswith("postgresql"):
        pytest.skip("the t window does not involve the database")
    handler = instances()
    now = int(time.time())
    # WHEN stops are signed with t ten years ahead, 901 s ahead, 1 s ago and the usual 600 s ahead
    cases = {"10 years ahead": now + 10 * 365 * 86400, "901 s ahead": now + 901, "1 s ago": now - 1}
    refused = {name: send(handler, css_stop(f"seq-{i}", t=t)) for i, (name, t) in enumerate(cases.items())}
    accepted = send(handler, css_stop("seq-ok", t=now + 600))
    # THEN the first three are refused with 403 and create nothing, the last creates its job
    assert all(status == 403 for status, _ in refused.values())
    assert accepted[1]["outcome"] == "created"
    assert job_ids(store) == [accepted[1]["job_id"]]
    reliability_record(
        "Live-event signature time window",
        "CSS stops signed with t = now + 10 years, now + 901 s, now - 1 s, now + 600 s",
        "; ".join(f"{name}: HTTP {status} ({body['message']!r})" for name, (status, body) in refused.items())
        + f"; now + 600 s: {accepted[1]['outcome']}",
    )


def test_a_flood_from_one_source_is_rate_limited(
    instances: Callable[..., Handler], store: SqlJobStore, database_url: str, reliability_record: Recorder
) -> None:
    if database_url.startswith("postgresql"):
        pytest.skip("the rate limit does not involve the database")
    handler = instances(HARVEST_LIVE_RATE_LIMIT="5")
    # WHEN one captured signature is replayed from one address with 60 made-up sequences at once
    captured_t = int(time.time()) + 600
    started = time.monotonic()
    statuses = [send(handler, css_stop(f"forged-{i}", t=captured_t), "203.0.113.9")[0] for i in range(60)]
    elapsed = time.monotonic() - started
    # AND a notification from another address arrives meanwhile
    other = send(handler, css_stop("real-1"), "42.81.194.37")
    # THEN the source gets its burst (4 s at 5/s) and then 429s; the other source is served
    created, limited = statuses.count(200), statuses.count(429)
    assert created <= 20 + int(elapsed * 5) + 1
    assert limited >= 60 - created
    assert created + limited == 60
    assert other[1]["outcome"] == "created"
    reliability_record(
        "Live-event flood from one source",
        "60 CSS stops with made-up sequences and one captured t/sign from one address in"
        f" {elapsed:.2f} s, HARVEST_LIVE_RATE_LIMIT=5",
        f"{created} answered 200 (jobs created), {limited} answered 429;"
        f" another address: {other[1]['outcome']}."
        " The sign covers only t, so within its ≤900 s validity a forger is bounded by the rate limit,"
        " not refused",
    )


def test_a_streamlive_input_with_two_pipelines_makes_one_job(
    instances: Callable[..., Handler], store: SqlJobStore, database_url: str, reliability_record: Recorder
) -> None:
    first, second = instances(), instances()
    t = int(time.time()) + 600
    # WHEN both pipelines of one input report the stop, 2 s apart, to two instances
    outcomes = [send(first, streamlive_stop(0, t))[1], send(second, streamlive_stop(1, t + 2))[1]]
    # AND the first is delivered again a minute later
    outcomes.append(send(second, streamlive_stop(0, t))[1])
    # THEN one job was made
    assert [body["outcome"] for body in outcomes] == ["created", "duplicate", "duplicate"]
    assert job_ids(store) == [outcomes[0]["job_id"]]
    backend = database_url.split(":", 1)[0]
    reliability_record(
        "StreamLive input with two pipelines",
        "stop notifications of pipelines 0 and 1 (t 2 s apart) to two instances, then pipeline 0"
        f" again ({backend})",
        f"{', '.join(body['outcome'] for body in outcomes)}; 1 job ({outcomes[0]['job_id']})",
    )


def test_api_callers_cannot_squat_a_live_event_job_id(
    instances: Callable[..., Handler], store: SqlJobStore, tmp_path: Path, database_url: str,
    reliability_record: Recorder,
) -> None:
    if database_url.startswith("postgresql"):
        pytest.skip("the reserved prefix does not involve the database")
    # GIVEN the job ID a CSS stop will use
    stop = css_stop("2210464508206756938")
    squatted = "live-news_main-2210464508206756938"
    # WHEN an API caller (real SDK) creates a job with that ID first
    (tmp_path / "api").mkdir()
    with running_api_stack(tmp_path / "api") as stack, pytest.raises(TencentCloudSDKException) as caught:
        stack.create(job_params(squatted))
    # THEN it is refused in the API's format, and the stop still gets its job
    assert caught.value.code == "InvalidParameter.Id"
    status, body = send(instances(), stop)
    assert (status, body["outcome"], body["job_id"]) == (200, "created", squatted)
    reliability_record(
        "Live-event job ID squatting",
        f"an SDK Create with ID {squatted} before the CSS stop that uses it",
        f"{caught.value.code} ({caught.value.message!r}); the stop then created {squatted}",
    )
