"""The deployed entry points log one metrics line per invocation (what CLS charts on SCF)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.test_invoke_and_demo import run_invoke

from harvest.invocation import COUNT_NAMES


def _metric_line(tmp_path: Path, function: str, event: str) -> dict[str, Any]:  # parsed JSON
    result = run_invoke(tmp_path, function, event)
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
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] > 0
    assert line["request_id"]


def test_the_worker_entry_point_logs_its_counts(tmp_path: Path) -> None:
    # WHEN the worker is invoked with the sample batch (jobs that do not exist: acknowledged no-ops)
    line = _metric_line(tmp_path, "worker", "ckafka_work.json")
    # THEN its line carries every documented count, all zero here
    assert (line["function"], line["cold_start"], line["outcome"]) == ("worker", True, "ok")
    assert line["counts"] == dict.fromkeys(COUNT_NAMES, 0)


def test_the_documented_shape_is_the_shape_logged(tmp_path: Path) -> None:
    # GIVEN the example line in docs/operations.md
    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text[text.index("### On SCF") :]
    example = json.loads(
        section[section.index("```json") + 7 : section.index("```", section.index("```json") + 7)]
    )
    # WHEN the api function logs its line
    line = _metric_line(tmp_path, "api", "api_gateway_describe_get.json")
    # THEN both have the same fields, and the same counts
    assert set(line) == set(example)
    assert set(line["counts"]) == set(example["counts"])
