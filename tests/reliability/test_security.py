"""Security: replays, stale signatures, private callback targets, redirects, buckets, paths, body
size, and secrets in logs. Each case goes through the real API function (over HTTP) or a real job.

The CSS/StreamLive callback's own signature and expiry checks are tested in
tests/integration/test_live_event_end.py (the table references them there).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.mdp.v20200527 import mdp_client, models
from tests.reliability.table import Recorder
from tests.support.api_stack import (
    ApiStack,
    job_params,
    running_api_stack,
)
from tests.support.callback_receiver import Answer, CallbackReceiver
from tests.support.clock import ManualClock
from tests.support.engine import Engine
from tests.support.media import TEST_NOW
from tests.support.polling import eventually
from tests.support.serve_process import SERVE_REGION, SERVE_SECRET_ID, serve_env, start_serve
from tests.support.signing import live_event_signed, signed_headers

from harvest import logs as harvest_logs
from harvest.adapters.sql import Database, SqlCredentialStore
from harvest.composition import build_api_handler, build_live_event_end_handler
from harvest.devtools import ChannelSpec, FaultPlan, LiveOrigin, Pool, write_channels_yaml
from harvest.domain.credentials import TemporaryKey, hash_token
from harvest.domain.job import JobStatus
from harvest.engine.plan import Plan
from harvest.local.gateway import build_event
from harvest.settings import Settings

pytest_plugins = ("tests.support.media", "tests.support.engine")

ROOT = Path(__file__).resolve().parents[2]
CREATE = "CreateStreamPackageHarvestJob"
LIST = "DescribeStreamPackageHarvestJobs"


@pytest.fixture
def stack_factory(tmp_path: Path, clean_proxy_env: None) -> Iterator[Callable[..., ApiStack]]:
    """Start API stacks (real gateway, real handler, SQLite) with settings overridden; all stopped after."""
    contexts: list[Any] = []

    def start(**settings: Any) -> ApiStack:
        directory = tmp_path / f"stack{len(contexts)}"
        directory.mkdir()
        context = running_api_stack(directory, **settings)
        contexts.append(context)
        stack: ApiStack = context.__enter__()
        return stack

    yield start
    for context in reversed(contexts):
        context.__exit__(None, None, None)


def answer(response: Any) -> dict[str, Any]:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = response.json()["Response"]
    return body


def code_of(response: Any) -> str:
    return str(answer(response).get("Error", {}).get("Code", "OK"))


# --- signatures ----------------------------------------------------------------------------------


def test_a_replayed_request_is_refused(
    stack_factory: Callable[..., ApiStack], reliability_record: Recorder
) -> None:
    # GIVEN the API with replay protection on, one signed Create and one signed read
    stack = stack_factory(replay_protection=True)
    body = json.dumps(job_params("replayed-create")).encode()
    headers = signed_headers(stack.endpoint, CREATE, body)
    read = b'{"PageSize": 5}'
    read_headers = signed_headers(stack.endpoint, LIST, read)

    # WHEN exactly the same Create (same signature) is sent twice
    first = requests.post(f"http://{stack.endpoint}/", data=body, headers=headers, timeout=10)
    second = requests.post(f"http://{stack.endpoint}/", data=body, headers=headers, timeout=10)
    # THEN the first creates the job and the second is refused as a replay, not run again
    assert code_of(first) == "OK"
    refused = answer(second)["Error"]
    assert refused["Code"] == "AuthFailure.SignatureFailure"
    assert "replay" in refused["Message"]
    # AND a read sent twice with one signature (what `harvest wait` does polling twice a second) is
    # served both times: repeating a read changes nothing
    reads = [
        code_of(requests.post(f"http://{stack.endpoint}/", data=read, headers=read_headers, timeout=10))
        for _ in range(2)
    ]
    assert reads == ["OK", "OK"]
    reliability_record(
        "Replayed signed request",
        "the same signed CreateStreamPackageHarvestJob sent twice, and the same signed"
        " DescribeStreamPackageHarvestJobs twice, HARVEST_REPLAY_PROTECTION=true",
        f"Create: first OK, second {refused['Code']} ({refused['Message']!r});"
        f" Describe: {reads[0]}, {reads[1]}",
    )


def test_a_signature_outside_the_skew_window_expires(
    stack_factory: Callable[..., ApiStack], reliability_record: Recorder
) -> None:
    # GIVEN the API with the default 300 s signature window
    stack = stack_factory()
    now = int(time.time())
    # WHEN requests are signed 301 s in the past, 301 s in the future, and 290 s in the past
    codes = {skew: code_of(stack.raw_post(LIST, b"{}", timestamp=now + skew)) for skew in (-301, 301, -290)}
    # THEN the two outside the window are SignatureExpire, the one inside is served
    assert codes == {-301: "AuthFailure.SignatureExpire", 301: "AuthFailure.SignatureExpire", -290: "OK"}
    reliability_record(
        "Stale signature",
        "X-TC-Timestamp 301 s in the past, 301 s in the future (window 300 s)",
        f"both {codes[-301]}; 290 s old: OK",
    )


# --- callback targets ----------------------------------------------------------------------------

PRIVATE_CALLBACKS = [
    "http://127.0.0.1:8080/hook",
    "http://10.1.2.3/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost:9/hook",
    "http://[::1]/hook",
    "http://2130706433/hook",  # 127.0.0.1 written as one decimal number
    "http://192.168.0.10/hook",
]


def test_callback_urls_to_private_addresses_are_refused_at_create(
    stack_factory: Callable[..., ApiStack], reliability_record: Recorder
) -> None:
    # GIVEN the API with default settings, and one that allows private callbacks
    stack = stack_factory()
    permissive = stack_factory(allow_private_callbacks=True)
    answers: dict[str, dict[str, Any]] = {}
    for i, url in enumerate(PRIVATE_CALLBACKS):
        # WHEN a Create names a loopback, private, link-local or metadata CallbackURL
        params = job_params(f"cb-{i}", CallbackURL=url)
        answers[url] = answer(stack.raw_post(CREATE, json.dumps(params).encode()))
    # THEN each is refused with InvalidParameter.Url and no job exists
    assert {url: a.get("Error", {}).get("Code") for url, a in answers.items()} == {
        url: "InvalidParameter.Url" for url in PRIVATE_CALLBACKS
    }
    assert stack.store.list(None, 0, 100).total == 0
    # AND with allow_private_callbacks (tests, closed networks) the same URL is accepted
    allowed = answer(
        permissive.raw_post(
            CREATE, json.dumps(job_params("cb-ok", CallbackURL=PRIVATE_CALLBACKS[0])).encode()
        )
    )
    assert allowed["Info"]["CallbackURL"] == PRIVATE_CALLBACKS[0]
    example = answers["http://localhost:9/hook"]["Error"]["Message"]
    reliability_record(
        "CallbackURL to a private address",
        ", ".join(PRIVATE_CALLBACKS),
        f"{len(PRIVATE_CALLBACKS)}/{len(PRIVATE_CALLBACKS)} refused at Create with"
        f" InvalidParameter.Url (e.g. {example!r}), no job stored; accepted with"
        " HARVEST_ALLOW_PRIVATE_CALLBACKS=true",
    )


def test_a_callback_redirect_to_a_private_address_is_not_followed(
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    engine_factory: Callable[..., Engine],
    reliability_record: Recorder,
) -> None:
    # GIVEN a callback receiver that answers 302 to another address (a "victim" that records hits)
    victim = CallbackReceiver()
    redirector = CallbackReceiver(unscripted=Answer(302, {"Location": victim.url("/internal-admin")}))
    clock = ManualClock(TEST_NOW)
    origin = start_origin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}, clock=clock)
    engine = engine_factory(origin, clock, allow_private_callbacks=True)  # both servers are on loopback
    try:
        # WHEN a job with that CallbackURL completes
        engine.create("redirected", "ts", TEST_NOW - 30, TEST_NOW - 20, callback_url=redirector.url())
        job = engine.wait("redirected")
        outcome = eventually(
            lambda: engine.deps.store.get("redirected").callback_status, 10, "the callback outcome"
        )
    finally:
        redirector.stop()
        victim.stop()
    # THEN the callback was posted once, the redirect was not followed, and the outcome says so
    assert job.status is JobStatus.COMPLETED
    assert len(redirector.received()) == 1
    assert victim.received() == []
    assert outcome == "failed: HTTP 302 (redirects are not followed) after 1 attempt"
    reliability_record(
        "Callback redirect to a private address",
        "the CallbackURL receiver answers 302 Location: http://127.0.0.1:<port>/internal-admin",
        f"job Completed; callback outcome {outcome!r}; the redirect target received 0 requests",
    )


# --- where objects go ----------------------------------------------------------------------------


def test_a_destination_outside_the_allowed_buckets_is_refused(
    stack_factory: Callable[..., ApiStack], reliability_record: Recorder
) -> None:
    # GIVEN a service limited to one bucket
    stack = stack_factory(allowed_buckets=("harvest-1250000000",))
    other = "https://other-1250000000.cos.ap-singapore.myqcloud.com/vod/"
    other_region = "https://harvest-1250000000.cos.ap-guangzhou.myqcloud.com/vod/"
    # WHEN Creates name another bucket, the allowed bucket in another region, and the allowed bucket
    refused = answer(stack.raw_post(CREATE, json.dumps(job_params("b-1", Destination=other)).encode()))[
        "Error"
    ]
    region = answer(stack.raw_post(CREATE, json.dumps(job_params("b-2", Destination=other_region)).encode()))
    allowed = answer(stack.raw_post(CREATE, json.dumps(job_params("b-3")).encode()))
    # THEN only the allowed bucket in the service's region is accepted
    assert refused["Code"] == "InvalidParameterValue"
    assert region["Error"]["Code"] == "InvalidParameterValue"
    assert allowed["Info"]["ID"] == "b-3"
    assert [job.id for job in stack.store.list(None, 0, 10).jobs] == ["b-3"]
    reliability_record(
        "Destination outside the allowed buckets",
        "HARVEST_ALLOWED_BUCKETS=harvest-1250000000; Destination in bucket other-1250000000, and in"
        " ap-guangzhou",
        f"{refused['Code']} ({refused['Message']!r}); other region: {region['Error']['Code']};"
        " the allowed bucket: Created",
    )


def test_manifest_paths_are_normalised_or_refused(
    stack_factory: Callable[..., ApiStack],
    media_pools: dict[str, Pool],
    start_origin: Callable[..., LiveOrigin],
    engine_factory: Callable[..., Engine],
    reliability_record: Recorder,
) -> None:
    # GIVEN the API, and Manifests that try to climb out of the Destination prefix
    stack = stack_factory()
    bad = ["../x.m3u8", "a/../../x.m3u8", "/etc/x.m3u8", "a\\..\\x.m3u8", "a/\x00/x.m3u8"]
    codes = {
        manifest: answer(stack.raw_post(CREATE, json.dumps(job_params(f"m-{i}", Manifest=manifest)).encode()))
        .get("Error", {})
        .get("Code")
        for i, manifest in enumerate(bad)
    }
    # THEN each is refused with InvalidParameter
    assert codes == dict.fromkeys(bad, "InvalidParameter")
    # AND a Manifest with '//' and './' is accepted and folded: the harvested master lands at out/a/b/c.m3u8
    clock = ManualClock(TEST_NOW)
    origin = start_origin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}, clock=clock)
    engine = engine_factory(origin, clock)
    engine.create("folded", "ts", TEST_NOW - 30, TEST_NOW - 20, manifest="a//b/./c.m3u8")
    job = engine.wait("folded")
    plan = Plan.from_json(engine.deps.store.get_plan("folded"))
    assert job.status is JobStatus.COMPLETED
    assert job.manifest == "a//b/./c.m3u8"
    assert plan.master_key == "out/a/b/c.m3u8"
    assert (engine.bucket_root / "out/a/b/c.m3u8").is_file()
    stored = [
        p.relative_to(engine.bucket_root).as_posix() for p in engine.bucket_root.rglob("*") if p.is_file()
    ]
    assert stored
    assert all(key.startswith("out/a/b/") for key in stored)
    reliability_record(
        "Manifest path tricks",
        "Manifest a//b/./c.m3u8; and " + ", ".join(repr(m) for m in bad),
        f"a//b/./c.m3u8 harvested to {plan.master_key} ({len(stored)} objects, all under out/a/b/);"
        f" the {len(bad)} others refused with InvalidParameter",
    )


def test_an_oversized_request_body_is_refused(
    stack_factory: Callable[..., ApiStack], reliability_record: Recorder
) -> None:
    # GIVEN the API with a 4 KB body cap
    stack = stack_factory(max_body_bytes=4096)
    # WHEN a signed Create of 4097 bytes arrives (a huge Manifest)
    params = job_params("big", Manifest="")
    params["Manifest"] = "m" * (4097 - len(json.dumps(params).encode()))
    body = json.dumps(params).encode()
    assert len(body) == 4097
    refused = answer(stack.raw_post(CREATE, body))["Error"]
    # THEN it is refused with RequestSizeLimitExceeded (HTTP 200, API envelope) and nothing is stored
    assert refused["Code"] == "RequestSizeLimitExceeded"
    assert stack.store.list(None, 0, 10).total == 0
    reliability_record(
        "Oversized request body",
        "a 4097-byte signed Create with HARVEST_MAX_BODY_BYTES=4096",
        f"{refused['Code']} ({refused['Message']!r}); no job stored",
    )


# --- secrets in logs -----------------------------------------------------------------------------

API_SECRET = "SecretKeyReliabilityAPI0001"
SECOND_SECRET = "SecretKeyReliabilitySecond02"
CLOUD_SECRET = "CloudSecretReliabilityScf0003"
CLOUD_TOKEN = "CloudTokenReliabilitySession04"
CSS_KEY = "CssCallbackKeyReliability05"
CLIENT_TOKEN = "ClientTokenReliabilityXtc06"
CALLBACK_SIGN = "CallbackSignReliability07"
ORIGIN_TOKEN = "OriginTokenReliability08"
PUSH_SECRET = "PushTxSecretReliability09"
SECRETS = [
    API_SECRET,
    SECOND_SECRET,
    CLOUD_SECRET,
    CLOUD_TOKEN,
    CSS_KEY,
    CLIENT_TOKEN,
    CALLBACK_SIGN,
    ORIGIN_TOKEN,
    PUSH_SECRET,
]


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def _issue_temporary_key(database_url: str, secret_id: str, secret_key: str) -> None:
    """A temporary key whose token is CLIENT_TOKEN (X-TC-Token only goes with a temporary key)."""
    key = TemporaryKey(secret_id, secret_key, hash_token(CLIENT_TOKEN), time.time() + 3600)
    with Database.connect(database_url) as db:
        SqlCredentialStore(db).add(key)


@pytest.mark.slow
def test_no_secret_reaches_the_logs_of_a_serve_process(
    tmp_path: Path, media_pools: dict[str, Pool], reliability_record: Recorder
) -> None:
    # GIVEN `harvest serve` with recognisable secrets everywhere: API keys, SCF role credentials,
    # the CSS callback key, an origin token in the endpoint URL

    missing = int(time.time()) // 2 - 10
    origin = LiveOrigin(
        {"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)},
        faults=FaultPlan(missing={("ts", "v0", missing)}),
    ).start()
    receiver = CallbackReceiver()
    registry = tmp_path / "channels.yaml"
    write_channels_yaml(registry, origin.url, origin.channels)
    registry.write_text(
        registry.read_text().replace("master.m3u8", f"master.m3u8?token={ORIGIN_TOKEN}"), encoding="utf-8"
    )
    data_dir = tmp_path / "data"
    env = serve_env(
        data_dir,
        registry,
        extra={
            "HARVEST_SECRET_KEY": API_SECRET,
            "HARVEST_CREDENTIALS": f"AKIDsecond:{SECOND_SECRET}",
            "HARVEST_CALLBACK_KEY": CSS_KEY,
            "HARVEST_ALLOW_PRIVATE_CALLBACKS": "true",
            "HARVEST_FETCH_ATTEMPTS": "2",
            "TENCENTCLOUD_SECRETID": "AKIDcloudrole",
            "TENCENTCLOUD_SECRETKEY": CLOUD_SECRET,
            "TENCENTCLOUD_SESSIONTOKEN": CLOUD_TOKEN,
        },
    )
    process = start_serve(env, data_dir)
    try:
        _issue_temporary_key(f"sqlite:///{data_dir / 'harvest.db'}", "AKIDtemporary", SECOND_SECRET)
        now = int(time.time())
        callback = receiver.url(f"/hook?sign={CALLBACK_SIGN}")

        def client(secret_id: str, secret_key: str, token: str | None = None) -> mdp_client.MdpClient:
            profile = process.client().profile
            return mdp_client.MdpClient(
                credential.Credential(secret_id, secret_key, token), SERVE_REGION, profile
            )

        def create(c: mdp_client.MdpClient, job_id: str, start: int, end: int) -> None:
            request = models.CreateStreamPackageHarvestJobRequest()
            request.from_json_string(
                json.dumps(
                    {
                        "ID": job_id,
                        "ChannelName": "ts",
                        "EndpointName": "hls",
                        "TimeFormat": "Epoch seconds",
                        "StartTime": str(start),
                        "EndTime": str(end),
                        "Destination": "https://vod-1250000000.cos.ap-singapore.myqcloud.com/out/",
                        "CallbackURL": callback,
                    }
                )
            )
            c.CreateStreamPackageHarvestJob(request)

        # WHEN jobs are created with a permanent key and a temporary one (with its token), one
        # completes and one fails on a missing segment, both callbacks go out, and a wrongly signed
        # request arrives
        create(client(SERVE_SECRET_ID, API_SECRET), "good", now - 40, now - 30)
        create(client("AKIDtemporary", SECOND_SECRET, CLIENT_TOKEN), "bad", missing * 2 - 6, missing * 2 + 6)
        with pytest.raises(TencentCloudSDKException) as wrong:
            client(SERVE_SECRET_ID, "not-the-key").DescribeStreamPackageHarvestJobs(
                models.DescribeStreamPackageHarvestJobsRequest()
            )
        eventually(lambda: len(receiver.received()) >= 2, 60, "both callbacks")
        owner = client(SERVE_SECRET_ID, API_SECRET)
        statuses = {}
        for job_id in ("good", "bad"):
            request = models.DescribeStreamPackageHarvestJobRequest()
            request.ID = job_id
            statuses[job_id] = str(owner.DescribeStreamPackageHarvestJob(request).Info.Status)
    finally:
        process.stop(10)
        receiver.stop()
        origin.stop()
    log = process.log_text()
    # THEN the jobs ended as expected and the log shows it all happened...
    assert statuses == {"good": "Completed", "bad": "Failed"}, statuses
    assert wrong.value.code == "AuthFailure.SignatureFailure"
    assert "job completed" in log
    assert "job failed" in log
    assert "AuthFailure.SignatureFailure" in log
    assert '"logger": "harvest.adapters.callback"' in log
    # ... yet not one secret appears in it
    assert _leaks(log) == []
    lines = len(process.output)
    reliability_record(
        "Secrets in logs",
        "`harvest serve` with HARVEST_SECRET_KEY, a second key pair, TENCENTCLOUD_SECRETKEY/SESSIONTOKEN,"
        " HARVEST_CALLBACK_KEY, an X-TC-Token, a token in the endpoint URL and a sign= in the CallbackURL;"
        " a completed job, a failed job, two callbacks, a wrongly signed request",
        f"{lines} log lines (JSON, stdout+stderr): 0 of {len(SECRETS)} secrets present",
    )


def _css_event(key: str, stream_param: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / "css_push_stop.json").read_text(encoding="utf-8"))
    body = json.loads(event["body"])
    t = int(time.time()) + 600
    body.update(live_event_signed({"event_time": int(time.time()) - 100}, t, key))
    body["stream_param"] = stream_param
    event["body"] = json.dumps(body)
    return event


@pytest.fixture
def process_logging() -> Iterator[None]:
    """Undo what the functions' configure_logging does to this process (a JSON handler on stdout for
    good), so later tests in the same pytest worker do not find log lines in their captured stdout."""
    root = logging.getLogger()
    handlers, level, installed = list(root.handlers), root.level, harvest_logs._installed
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    harvest_logs._installed = installed


def test_no_secret_reaches_the_logs_of_the_functions(
    process_logging: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    reliability_record: Recorder,
) -> None:
    # GIVEN the live_event_end and api SCF functions built from the environment, with recognisable
    # secrets, and every log record captured at DEBUG (before and after redaction)

    for name in [name for name in os.environ if name.startswith("HARVEST_")]:
        monkeypatch.delenv(name)
    registry = tmp_path / "channels.yaml"
    registry.write_text(
        "channels:\n  - name: news\n    endpoints:\n"
        f"      - {{name: hls, url: 'http://127.0.0.1:9/news/index.m3u8?token={ORIGIN_TOKEN}',"
        " startover_window: 604800}\nstreams:\n  - {stream_id: 'news*', channel: news, endpoint: hls}\n",
        encoding="utf-8",
    )
    env = {
        "HARVEST_DATABASE_URL": f"sqlite:///{tmp_path / 'harvest.db'}",
        "HARVEST_CHANNELS": str(registry),
        "HARVEST_DATA_DIR": str(tmp_path / "data"),
        "HARVEST_DEFAULT_DESTINATION": "https://vod-1250000000.cos.ap-singapore.myqcloud.com/live/",
        "HARVEST_CALLBACK_KEY": CSS_KEY,
        "HARVEST_SECRET_ID": "AKIDfunctions",
        "HARVEST_SECRET_KEY": API_SECRET,
        "TENCENTCLOUD_SECRETKEY": CLOUD_SECRET,
        "TENCENTCLOUD_SESSIONTOKEN": CLOUD_TOKEN,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    live_handler = build_live_event_end_handler()
    settings = Settings.from_env()
    api_handler = build_api_handler()
    _issue_temporary_key(env["HARVEST_DATABASE_URL"], "AKIDfunctionstmp", API_SECRET)

    # WHEN CSS notifications arrive with a good sign and a forged one (both carrying a push txSecret)
    stream_param = f"txSecret={PUSH_SECRET}&txTime=6680D080"
    good = live_handler(_css_event(CSS_KEY, stream_param), {"request_id": "css-1"})
    forged = live_handler(_css_event("guessed-key", stream_param), {"request_id": "css-2"})
    # AND the API gets a good request (a temporary key with its token) and a wrongly signed one
    results = []
    for key in (API_SECRET, "not-the-key"):
        body = json.dumps({"ID": "live-news_main-2210464508206756938"}).encode()
        headers = signed_headers(
            "mdp.tencentcloudapi.com",
            "DescribeStreamPackageHarvestJob",
            body,
            secret_id="AKIDfunctionstmp",
            secret_key=key,
            region=settings.region,
            token=CLIENT_TOKEN,
        )
        event = build_event("POST", "/", headers, body, "127.0.0.1", "req")
        results.append(json.loads(api_handler(event, {})["body"])["Response"])
    # THEN the functions did their work (one job created, one forgery refused) ...
    assert (good["statusCode"], forged["statusCode"]) == (200, 403)
    assert results[0]["Info"]["ID"] == "live-news_main-2210464508206756938"
    assert results[1]["Error"]["Code"] == "AuthFailure.SignatureFailure"
    # ... and neither the log records nor the JSON lines on stdout hold a secret
    records = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    stdout = capsys.readouterr().out
    assert caplog.records
    assert "notification refused" in records
    assert _leaks(records) == [], "a log record carries a secret (before redaction)"
    assert _leaks(stdout) == [], "the JSON log output carries a secret"
    reliability_record(
        "Secrets in logs",
        "live_event_end and api functions in-process: HARVEST_CALLBACK_KEY, HARVEST_SECRET_KEY,"
        " TENCENTCLOUD_SECRETKEY/SESSIONTOKEN, an X-TC-Token, a push txSecret, an endpoint token;"
        " a good and a forged CSS notification, a good and a wrongly signed API call",
        f"{len(caplog.records)} log records at DEBUG and {len(stdout.splitlines())} JSON lines:"
        f" 0 of {len(SECRETS)} secrets present",
    )
