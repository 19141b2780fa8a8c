"""Operating a real `harvest serve`: what docs/operations.md promises, step by step.

One scenario, as an operator lives it: an origin that keeps failing requests and a bucket that
refuses writes. The failures show in /metrics (origin errors and retries, a dead-lettered chunk,
a Running job, queue depth), `harvest admin stuck` finds the job with its phase and last error,
`harvest admin dead-letters` lists its chunks, the cause is mended, `harvest admin replay --all`
puts the work back, and the job completes, with every metric moving as documented. Also:
/healthz and /readyz, and no job ID, URL or secret in any label value.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tests.support.engine import BUCKET, DESTINATION
from tests.support.polling import eventually
from tests.support.scrape import Scrape, scrape
from tests.support.serve_process import (
    SERVE_SECRET_ID,
    SERVE_SECRET_KEY,
    ServeProcess,
    serve_env,
    start_serve,
)

from harvest.cli.main import main as harvest_main
from harvest.devtools import ChannelSpec, FaultPlan, LiveOrigin, Pool, write_channels_yaml

pytest_plugins = ("tests.support.media",)

pytestmark = pytest.mark.media

JOB = "ops-drill-1"
ORIGIN_SECRET = "origin-token-5f1c9a"


def admin(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = harvest_main(["admin", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def origin(media_pools: dict[str, Pool]) -> Iterator[LiveOrigin]:
    # Segments answer 503 now and then (each at most twice, so 4 attempts always get through);
    # the origin wants a secret header, which must never reach a metric.
    faults = FaultPlan(error_rate=0.3, seed=7, max_failures_per_path=2)
    spec = ChannelSpec(
        "ts", media_pools["ts"], dvr_window=3600, required_headers={"X-Origin-Token": ORIGIN_SECRET}
    )
    running = LiveOrigin({"ts": spec}, faults=faults).start()
    yield running
    running.stop()


def start(tmp_path: Path, origin: LiveOrigin, **extra: str) -> ServeProcess:
    registry = tmp_path / "channels.yaml"
    write_channels_yaml(registry, origin.url, origin.channels)
    data_dir = tmp_path / "data"
    settings = {
        "HARVEST_QUEUE_MAX_ATTEMPTS": "2",
        "HARVEST_FETCH_ATTEMPTS": "4",
        "HARVEST_FETCH_BACKOFF": "0.01",
        "HARVEST_DOWNLOAD_CONCURRENCY": "4",
        "HARVEST_DEFAULT_DESTINATION": DESTINATION,
    }
    return start_serve(serve_env(data_dir, registry, workers=2, extra={**settings, **extra}), data_dir)


@pytest.fixture
def served(tmp_path: Path, origin: LiveOrigin) -> Iterator[ServeProcess]:
    process = start(tmp_path, origin)
    yield process
    process.stop(10)


def create_job(process: ServeProcess) -> None:
    now = int(time.time())
    process.create(
        {
            "ID": JOB,
            "ChannelName": "ts",
            "EndpointName": "hls",
            "TimeFormat": "Epoch seconds",
            "StartTime": str(now - 40),
            "EndTime": str(now - 10),
            "Destination": DESTINATION,
        }
    )


def test_an_operator_sees_the_failures_finds_the_stuck_job_replays_it_and_it_completes(
    served: ServeProcess, origin: LiveOrigin, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = served.data_dir
    # GIVEN a bucket that refuses this job's writes (a file where its folder must go, as a full or
    # read-only disk would refuse them)
    job_folder = data_dir / "cos" / BUCKET / "out" / JOB
    job_folder.parent.mkdir(parents=True)
    job_folder.write_text("in the way")
    before = scrape(served.url)
    assert before.value("harvest_dead_letters", topic="work") == 0
    # WHEN a job is created and every chunk uses up its 2 attempts
    create_job(served)

    def all_chunks_dead() -> Scrape | None:
        now = scrape(served.url)
        running = now.value("harvest_jobs", status="Running", phase="harvesting")
        waiting = now.total("harvest_queue_depth", topic="work")
        return (
            now if running == 1 and waiting == 0 and now.value("harvest_dead_letters", topic="work") else None
        )

    stuck_view = eventually(all_chunks_dead, 90, "every chunk dead-lettered")
    # THEN /metrics shows the failing origin (503s, retried), the dead letters and the Running job
    dead = stuck_view.value("harvest_dead_letters", topic="work")
    assert stuck_view.value("harvest_origin_errors_total", resource="segment", kind="http_503") > 0
    assert stuck_view.value("harvest_origin_retries_total", resource="segment") > 0
    # (the process counts a dead letter just after the database has it: a scrape can fall between)
    eventually(
        lambda: scrape(served.url).value("harvest_messages_dead_lettered_total", topic="work") == dead,
        10,
        "every dead letter counted once by the process",
    )
    assert stuck_view.value("harvest_jobs_created_total") == 1
    assert stuck_view.value("harvest_jobs_finished_total", status="Failed") == 0
    assert (
        stuck_view.value("harvest_api_requests_total", action="CreateStreamPackageHarvestJob", code="OK") == 1
    )
    assert (
        stuck_view.value("harvest_api_request_duration_seconds_count", action="CreateStreamPackageHarvestJob")
        == 1
    )
    assert stuck_view.value("harvest_database_up") == 1

    # AND `harvest admin stuck` finds the job, with its phase and the bucket's error
    code, out, _ = admin(capsys, "stuck", "--minutes", "0", "--data-dir", str(data_dir), "--json")
    assert code == 0
    (found,) = json.loads(out)
    assert (found["ID"], found["Phase"], found["ChunksDone"]) == (JOB, "harvesting", 0)
    assert "cannot write" in found["LastError"]
    assert "Not a directory" in found["LastError"]
    code, table, _ = admin(capsys, "stuck", "--minutes", "0", "--data-dir", str(data_dir))
    assert code == 0
    assert JOB in table
    assert "harvesting" in table
    # AND `harvest admin dead-letters --job` lists every chunk with its last error
    code, out, _ = admin(capsys, "dead-letters", "--job", JOB, "--data-dir", str(data_dir), "--json")
    letters = json.loads(out)
    assert code == 0
    assert len(letters) == dead == found["ChunksTotal"]
    assert {letter["Step"] for letter in letters} == {f"chunk {i}" for i in range(found["ChunksTotal"])}
    assert all(letter["Attempts"] == 2 and "cannot write" in letter["LastError"] for letter in letters)

    # WHEN the cause is mended and the operator replays every dead letter
    job_folder.unlink()
    code, out, _ = admin(capsys, "replay", "--all", "--data-dir", str(data_dir))
    assert code == 0
    assert out.count("replayed ") == dead
    # THEN the job completes, and the metrics follow
    eventually(lambda: served.describe(JOB).Status == "Completed", 90, "the replayed job to complete")
    job = served.describe(JOB)
    assert job.ErrMessage == ""
    assert (data_dir / "cos" / BUCKET / "out" / JOB / "index.m3u8").is_file()
    def completion_counted() -> Scrape | None:
        now = scrape(served.url)
        return now if now.value("harvest_jobs_finished_total", status="Completed") == 1 else None

    after = eventually(completion_counted, 10, "the completion in /metrics")
    assert after.value("harvest_dead_letters", topic="work") == 0
    assert after.value("harvest_jobs", status="Completed", phase="done") == 1
    assert after.value("harvest_jobs", status="Running", phase="harvesting") == 0
    segments = after.value("harvest_segments_harvested_total")
    assert segments > 0
    assert after.value("harvest_bytes_harvested_total") > segments * 1000
    assert after.value("harvest_chunk_duration_seconds_count") == dead
    assert after.value("harvest_chunk_throughput_bytes_per_second_count") == dead
    # AND the download pool's limit: HARVEST_DOWNLOAD_CONCURRENCY, or what the adaptive limit chose
    assert after.value("harvest_download_limit_max") == 4
    assert 2 <= after.value("harvest_download_limit") <= 4
    code, out, _ = admin(capsys, "dead-letters", "--data-dir", str(data_dir))
    assert code == 0
    assert "no dead letters" in out
    code, out, _ = admin(capsys, "stuck", "--minutes", "0", "--data-dir", str(data_dir))
    assert code == 0
    assert "no Running job" in out

    # AND no label value anywhere carries the job ID, a URL, the origin or a secret
    check_labels_are_bounded(
        after, forbidden=[JOB, origin.url, f":{origin.port}", "://", "127.0.0.1", ORIGIN_SECRET]
    )


def test_a_job_held_by_a_dead_letter_fails_when_the_hold_runs_out(
    tmp_path: Path, origin: LiveOrigin, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN serve with a 3 s dead-letter hold, and a bucket that refuses the job's writes
    process = start(tmp_path, origin, HARVEST_DEAD_LETTER_HOLD="3")
    try:
        blocker = process.data_dir / "cos" / BUCKET / "out" / JOB
        blocker.parent.mkdir(parents=True)
        blocker.write_text("in the way")
        # WHEN the job's chunks are dead-lettered and nobody replays them
        create_job(process)
        eventually(
            lambda: scrape(process.url).value("harvest_dead_letters", topic="work") > 0, 60, "a dead letter"
        )
        # THEN the job fails once the hold is over, naming the step, its attempts and the cause
        eventually(lambda: process.describe(JOB).Status == "Failed", 30, "the held job to fail")
        message = str(process.describe(JOB).ErrMessage)
        assert message.startswith("chunk ")
        assert " could not be done after 2 attempts: " in message
        assert "cannot write" in message
        assert scrape(process.url).value("harvest_jobs_finished_total", status="Failed") == 1
    finally:
        process.stop(10)


def check_labels_are_bounded(metrics: Scrape, forbidden: list[str]) -> None:
    from harvest.metrics import ORIGIN_ERROR_KINDS, api_codes

    values = metrics.label_values()
    for label, seen in values.items():
        for value in seen:
            assert not any(bad in value for bad in forbidden), f"label {label}={value!r} leaks"
    allowed = {
        "status": {"Running", "Completed", "Failed", "other"},
        "phase": {"queued", "harvesting", "finalizing", "done"},
        "topic": {"work", "finalize", "other"},
        "state": {"ready", "leased"},
        "resource": {"playlist", "segment"},
        "kind": set(ORIGIN_ERROR_KINDS),
        "outcome": {"delivered", "failed", "refused", "other"},
        "code": set(api_codes()),
        "action": {
            "CreateStreamPackageHarvestJob",
            "DescribeStreamPackageHarvestJob",
            "DescribeStreamPackageHarvestJobs",
            "DeleteStreamPackageHarvestJob",
            "DeleteStreamPackageHarvestJobs",
            "DescribeStreamPackageHarvestJobProgress",
            "other",
        },
        "le": None,  # histogram bucket bounds: fixed by the code
    }
    assert set(values) <= set(allowed), f"unexpected labels {set(values) - set(allowed)}"
    for label, seen in values.items():
        permitted = allowed[label]
        if permitted is not None:
            assert seen <= permitted, f"label {label} took values {seen - permitted}"


def test_labels_stay_bounded_under_hostile_requests(served: ServeProcess) -> None:
    # GIVEN requests with made-up actions, IDs and bodies, and unsigned garbage
    for i in range(30):
        requests.post(
            f"{served.url}/",
            headers={"X-TC-Action": f"Action{i}-{JOB}", "Content-Type": "application/json"},
            data=json.dumps({"ID": f"{JOB}-{i}"}),
            timeout=10,
        )
    client_calls = 0
    for i in range(5):
        try:
            served.describe(f"missing-{i}")
        except TencentCloudSDKException:
            client_calls += 1
    # THEN they are counted, under bounded labels only: unknown actions as 'other'
    metrics = scrape(served.url)
    assert metrics.total("harvest_api_requests_total", action="other") == 30
    assert (
        metrics.value(
            "harvest_api_requests_total",
            action="DescribeStreamPackageHarvestJob",
            code="InvalidParameter.NotFound",
        )
        == client_calls
        == 5
    )
    check_labels_are_bounded(metrics, forbidden=[JOB, "missing-", SERVE_SECRET_ID, SERVE_SECRET_KEY])


def test_healthz_and_readyz_answer_for_load_balancers(served: ServeProcess) -> None:
    # GIVEN a running serve
    # THEN /healthz says the process is up, and /readyz that the database and the bucket answer
    health = requests.get(f"{served.url}/healthz", timeout=10)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = requests.get(f"{served.url}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "object_store": "ok"}}
    assert requests.post(f"{served.url}/readyz", timeout=10).status_code == 405
    # WHEN the local bucket's directory disappears (a lost mount)
    bucket_root = served.data_dir / "cos"
    shutil.move(bucket_root, served.data_dir / "cos-away")
    try:
        # THEN /readyz answers 503 naming the object store, while /healthz still says the process is up
        not_ready = requests.get(f"{served.url}/readyz", timeout=10)
        assert not_ready.status_code == 503
        body = not_ready.json()
        assert body["status"] == "not ready"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["object_store"].startswith("failed: StorageError")
        assert requests.get(f"{served.url}/healthz", timeout=10).status_code == 200
    finally:
        shutil.move(served.data_dir / "cos-away", bucket_root)
    assert requests.get(f"{served.url}/readyz", timeout=10).status_code == 200
