"""The deployed entry points log one metrics line per invocation (what CLS charts on SCF)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.integration.test_invoke_and_demo import HARVEST, REPO, _env


def _metric_line(tmp_path: Path, function: str, event: str) -> dict[str, object]:
    result = subprocess.run(
        [*HARVEST, "invoke", function, str(REPO / "events" / event)],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=120,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"')]
    (line,) = [line for line in lines if line.get("metric") == "invocation"]
    return line


def test_the_api_entry_point_logs_its_action_code_and_duration(tmp_path: Path) -> None:
    # WHEN the api function is invoked with the sample (signed with a key this service does not know)
    line = _metric_line(tmp_path, "api", "api_gateway_describe_get.json")
    # THEN its one metrics line names the function, a cold start, the action and the answer code
    assert (line["function"], line["cold_start"], line["outcome"]) == ("api", True, "ok")
    assert line["api_action"] == "DescribeStreamPackageHarvestJob"
    assert line["api_code"] == "AuthFailure.SecretIdNotFound"  # the sample is signed with another key
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["request_id"]


def test_the_worker_entry_point_logs_its_counts(tmp_path: Path) -> None:
    # WHEN the worker is invoked with the sample batch (jobs that do not exist: acknowledged no-ops)
    line = _metric_line(tmp_path, "worker", "ckafka_work.json")
    # THEN its line carries every documented count, all zero here
    assert (line["function"], line["cold_start"], line["outcome"]) == ("worker", True, "ok")
    assert line["counts"] == dict.fromkeys(
        (
            "jobs_created",
            "jobs_completed",
            "jobs_failed",
            "segments_harvested",
            "bytes_harvested",
            "origin_errors",
            "origin_retries",
            "dead_lettered",
            "callbacks_delivered",
            "callbacks_failed",
        ),
        0,
    )
