"""Metrics: bounded label values, the instrumented ports, the Prometheus recorder, the SCF line."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.contract.conftest import build_job
from tests.support.scrape import parse
from tests.support.tasks import download_task

from harvest.adapters.prometheus import PrometheusMetrics
from harvest.adapters.sql.db import Database
from harvest.adapters.sql.jobstore import SqlJobStore
from harvest.adapters.sql.operations import SqlOperations
from harvest.adapters.sql.queue import SqlQueue
from harvest.composition import build_origin
from harvest.domain.job import HarvestJob, JobStatus, chunk_message
from harvest.errors import InvalidTransition, SegmentFetchError
from harvest.invocation import COUNT_NAMES, InvocationMetrics, measured
from harvest.logs import configure_logging
from harvest.metrics import (
    InstrumentedJobStore,
    api_code_label,
    callback_label,
    instrument_api_handler,
    origin_error_kind,
)
from harvest.settings import Settings


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("HTTP 503", "http_503"),
        ("HTTP 404", "http_404"),
        ("HTTP 418", "http_4xx"),
        ("HTTP 599", "http_5xx"),
        ("HTTP 302", "http_other"),
        ("connection refused", "connection_refused"),
        ("read timeout", "read_timeout"),
        ("short body (1000 of 2000 bytes)", "short_body"),
        ("Content-Range bytes 0-1/2 does not match bytes=5-9", "bad_range"),
        ("larger than 64 MB", "too_large"),
        ("DNS lookup failed", "dns"),
        ("something nobody foresaw at http://host/secret?token=1", "other"),
    ],
)
def test_origin_failure_reasons_map_to_a_small_fixed_set_of_kinds(reason: str, kind: str) -> None:
    assert origin_error_kind(reason) == kind


def test_free_text_never_becomes_a_label_value() -> None:
    assert callback_label("delivered: HTTP 200 after 1 attempt") == "delivered"
    assert callback_label("failed: HTTP 500 after 5 attempts") == "failed"
    assert callback_label("refused: host 10.0.0.1 is private") == "refused"
    assert callback_label("job-42 https://x/y") == "other"
    assert api_code_label("InvalidParameter.NotFound") == "InvalidParameter.NotFound"
    assert api_code_label("AuthFailure.SignatureFailure") == "AuthFailure.SignatureFailure"
    assert api_code_label("Made.Up<script>") == "other"


def _job(job_id: str) -> HarvestJob:
    return build_job(job_id).replace(callback_url="")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.connect(f"sqlite:///{tmp_path / 'harvest.db'}")
    yield database
    database.close()


def test_the_instrumented_store_counts_jobs_chunks_and_callbacks_once_each(db: Database) -> None:
    # GIVEN a store reporting to a Prometheus recorder, with a clock the test moves
    metrics = PrometheusMetrics()
    now = [100.0]
    store = InstrumentedJobStore(SqlJobStore(db), metrics, clock=lambda: now[0])
    # WHEN two jobs are created, one planned in two chunks that finish 2 s apart, one failed twice
    store.create(_job("a"), [])
    store.create(_job("b"), [])
    store.save_plan("a", {"p": 1}, [[download_task("k0")], [download_task("k1")]], 2, [])
    store.get_chunk("a", 0)
    now[0] += 2.0
    store.complete_chunk("a", 0, 5, 4_000_000, [])
    store.complete_chunk("a", 1, 5, 1_000, [])  # never timed: no get_chunk before it
    store.finish("b", JobStatus.FAILED, "x")
    with pytest.raises(InvalidTransition):
        store.finish("b", JobStatus.FAILED, "again")
    store.record_callback("b", "delivered: HTTP 200 after 1 attempt")
    # THEN each moved its series once; the timed chunk fed the duration and throughput histograms
    scraped = parse(metrics.exposition().decode())
    assert scraped.value("harvest_jobs_created_total") == 2
    assert scraped.value("harvest_jobs_finished_total", status="Failed") == 1
    assert scraped.value("harvest_segments_harvested_total") == 10
    assert scraped.value("harvest_bytes_harvested_total") == 4_001_000
    assert scraped.value("harvest_chunk_duration_seconds_count") == 1
    assert scraped.value("harvest_chunk_duration_seconds_sum") == 2.0
    assert scraped.value("harvest_chunk_throughput_bytes_per_second_sum") == 2_000_000
    assert scraped.value("harvest_callbacks_total", outcome="delivered") == 1
    # AND everything else still reaches the real store
    assert store.get("b").callback_status.startswith("delivered")


def test_scrapes_read_jobs_and_queue_state_from_the_database(db: Database) -> None:
    # GIVEN a Running job and a dead-lettered chunk in the database
    metrics = PrometheusMetrics()
    metrics.watch(SqlOperations(db), clock=lambda: 1_000_030.0)
    SqlJobStore(db).create(_job("a"), [])
    queue = SqlQueue(db, max_attempts=1, clock=lambda: 1_000_000.0)
    queue.publish([chunk_message("a", 0)])
    (delivery,) = queue.receive(1, 60)
    queue.nack(delivery.id, "boom", 0)
    # AND a chunk waiting since 30 s before the scrape
    queue.publish([chunk_message("a", 1)])
    # WHEN /metrics is scraped
    scraped = parse(metrics.exposition().decode())
    # THEN the gauges say so, and the empty topic reports zeros rather than nothing
    assert scraped.value("harvest_database_up") == 1
    assert scraped.value("harvest_jobs", status="Running", phase="queued") == 1
    assert scraped.value("harvest_dead_letters", topic="work") == 1
    assert scraped.value("harvest_dead_letters", topic="finalize") == 0
    assert scraped.value("harvest_queue_depth", topic="work", state="ready") == 1
    assert scraped.value("harvest_queue_oldest_message_age_seconds", topic="work") == 30
    assert scraped.value("harvest_queue_depth", topic="finalize", state="ready") == 0
    # AND when the database is gone the scrape still answers, with harvest_database_up 0
    db.close()
    broken = PrometheusMetrics()
    broken.watch(SqlOperations(Database.connect("sqlite:////nonexistent-dir/x.db", migrate=False)))
    down = parse(broken.exposition().decode())
    assert down.value("harvest_database_up") == 0


class _FlakyOrigin(BaseHTTPRequestHandler):
    """Answers 503 to the first two requests of each path, then 200 with 10 bytes; /gone always 404."""

    seen: dict[str, int] = {}
    lock = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            count = self.seen.get(self.path, 0)
            self.seen[self.path] = count + 1
        status = 404 if self.path == "/gone" else 503 if count < 2 else 200
        body = b"0123456789" if status == 200 else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_origin_errors_and_retries_are_counted_by_resource_and_kind() -> None:
    # GIVEN an origin that fails twice per path, and one path that is gone for good
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyOrigin)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    metrics = PrometheusMetrics()
    origin = build_origin(Settings(fetch_attempts=3, fetch_backoff=0.0), metrics)
    try:
        # WHEN a segment is fetched (two 503s, then success) and a gone one fails all 3 attempts
        assert origin.get_bytes(f"{base}/seg1.ts", {}) == b"0123456789"
        with pytest.raises(SegmentFetchError):
            origin.get_bytes(f"{base}/gone", {})
    finally:
        server.shutdown()
        server.server_close()
    # THEN 2 x 503 and 3 x 404 are counted; 4 of those 5 were retried (the last 404 was not)
    scraped = parse(metrics.exposition().decode())
    assert scraped.value("harvest_origin_errors_total", resource="segment", kind="http_503") == 2
    assert scraped.value("harvest_origin_errors_total", resource="segment", kind="http_404") == 3
    assert scraped.value("harvest_origin_retries_total", resource="segment") == 4


def _api_event(action: str) -> dict[str, Any]:
    return {"httpMethod": "POST", "headers": {"x-tc-action": action}, "body": "{}"}


def test_api_requests_are_counted_by_known_action_and_code_and_timed() -> None:
    # GIVEN an api handler answering an error for one action and success for the other
    def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        action = event["headers"]["x-tc-action"]
        response: dict[str, Any] = {"RequestId": "r"}
        if action != "DescribeStreamPackageHarvestJobs":
            response["Error"] = {"Code": "InvalidAction", "Message": f"no {action}"}
        return {"statusCode": 200, "headers": {}, "body": json.dumps({"Response": response})}

    metrics = PrometheusMetrics()
    ticks = iter([0.0, 0.004, 1.0, 1.2])
    wrapped = instrument_api_handler(
        handler, metrics, ("DescribeStreamPackageHarvestJobs",), clock=lambda: next(ticks)
    )
    # WHEN a known action succeeds and an unknown one is refused
    wrapped(_api_event("DescribeStreamPackageHarvestJobs"), {})
    wrapped(_api_event("Evil-job-123"), {})
    # THEN both are counted; the unknown action under 'other', never under its own name
    scraped = parse(metrics.exposition().decode())
    assert (
        scraped.value("harvest_api_requests_total", action="DescribeStreamPackageHarvestJobs", code="OK") == 1
    )
    assert scraped.value("harvest_api_requests_total", action="other", code="InvalidAction") == 1
    assert (
        scraped.value(
            "harvest_api_request_duration_seconds_bucket",
            action="DescribeStreamPackageHarvestJobs",
            le="0.005",
        )
        == 1
    )
    assert "Evil" not in scraped.text


def test_a_v1_signed_request_is_counted_under_its_action() -> None:
    # GIVEN the api handler wrapped, and an HmacSHA256 request: its action is a form parameter
    def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "headers": {}, "body": json.dumps({"Response": {"RequestId": "r"}})}

    metrics = PrometheusMetrics()
    wrapped = instrument_api_handler(handler, metrics, ("DescribeStreamPackageHarvestJobs",))
    form = "Action=DescribeStreamPackageHarvestJobs&SignatureMethod=HmacSHA256&Nonce=1"
    event = {
        "httpMethod": "POST",
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "body": form,
    }
    # WHEN it is answered
    wrapped(event, {})
    # THEN it counts under its action, as a TC3 request would, not under 'other'
    scraped = parse(metrics.exposition().decode())
    assert (
        scraped.value("harvest_api_requests_total", action="DescribeStreamPackageHarvestJobs", code="OK") == 1
    )


def _metric_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("metric") == "invocation"]


OURS = tuple(f"metrics-line-test-{uuid.uuid4()}" for _ in range(3))


def test_each_invocation_logs_one_metrics_line_with_cold_start_function_and_duration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a handler that harvests a chunk, wrapped as composition wraps every SCF function
    configure_logging()
    recorder = InvocationMetrics()
    ticks = iter([10.0, 10.25, 20.0, 20.5, 30.0, 30.1])

    def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        if event.get("fail"):
            raise RuntimeError("boom")
        recorder.harvested(25, 26_214_400)
        recorder.origin_error("segment", "http_503", retried=True)
        return {"processed": 1}

    wrapped = measured(handler, "worker", recorder, clock=lambda: next(ticks))
    # WHEN it is invoked twice, then fails once
    wrapped({}, {"request_id": OURS[0]})
    wrapped({}, {"request_id": OURS[1], "function_name": "harvest-prod-worker"})
    with pytest.raises(RuntimeError):
        wrapped({"fail": True}, {"request_id": OURS[2]})
    # THEN one line each, in the documented shape: only the first is a cold start, counts are per
    # invocation, durations in ms, and a raising invocation is logged as an error (lines that other
    # tests' background threads in this process may log meanwhile are told apart by request_id; a
    # handler another test left installed would print each line twice, so one line per invocation)
    ours: dict[str, dict[str, Any]] = {}
    for line in _metric_lines(capsys.readouterr().out):
        if line.get("request_id") in OURS:
            ours.setdefault(line["request_id"], line)
    first, second, third = (ours[request_id] for request_id in OURS)
    assert {
        k: first[k] for k in ("message", "logger", "function", "cold_start", "duration_ms", "outcome")
    } == {
        "message": "invocation",
        "logger": "harvest.metrics",
        "function": "worker",
        "cold_start": True,
        "duration_ms": 250.0,
        "outcome": "ok",
    }
    assert set(first["counts"]) == set(COUNT_NAMES)
    assert first["counts"]["segments_harvested"] == 25
    assert first["counts"]["origin_retries"] == 1
    assert (second["cold_start"], second["function"], second["duration_ms"]) == (
        False,
        "harvest-prod-worker",
        500.0,
    )
    assert (third["outcome"], third["counts"]["segments_harvested"]) == ("error", 0)


def test_the_download_pools_limit_is_read_at_every_scrape() -> None:
    metrics = PrometheusMetrics()
    now = [16]
    metrics.watch_downloads(lambda: now[0], 16)
    first = parse(metrics.exposition().decode())
    now[0] = 4  # the adaptive limit came down
    second = parse(metrics.exposition().decode())
    assert (first.value("harvest_download_limit"), second.value("harvest_download_limit")) == (16, 4)
    assert second.value("harvest_download_limit_max") == 16
