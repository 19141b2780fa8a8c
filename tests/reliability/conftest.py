"""Reliability suite: the outcome recorder behind the README table, and shared checks.

Every reliability test records what it injected and what it observed through `reliability_record`.
At the end of the session each pytest process (each xdist worker, or the only process) writes its
records to a part file in the temp dir, then merges every part of the same run into
tests/.reliability.json under a file lock, so the last process to finish leaves the whole table.
`python -m tests.reliability.table` renders it.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.reliability.table import ROWS_FILE, SCENARIOS, Recorder

from harvest.domain.download import DownloadTask
from harvest.engine.plan import Plan

_records: list[dict[str, str]] = []
_RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex


@pytest.fixture
def reliability_record(request: pytest.FixtureRequest) -> Recorder:
    """record(scenario, injected, outcome): one row of the README table, as observed by this test."""

    def record(scenario: str, injected: str, outcome: str) -> None:
        assert scenario in SCENARIOS, f"unknown scenario {scenario!r}: add it to tests/reliability/table.py"
        _records.append(
            {"scenario": scenario, "injected": injected, "outcome": outcome, "test": request.node.nodeid}
        )

    return record


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _records:
        return
    parts = Path(tempfile.gettempdir()) / f"harvest-reliability-{_RUN_ID}"
    parts.mkdir(exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (parts / f"{worker}.json").write_text(json.dumps(_records), encoding="utf-8")
    with open(parts / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged: list[dict[str, Any]] = []
        for part in sorted(parts.glob("*.json")):
            merged.extend(json.loads(part.read_text(encoding="utf-8")))
        merged.sort(key=lambda record: (list(SCENARIOS).index(record["scenario"]), record["test"]))
        temp = ROWS_FILE.with_suffix(".json.tmp")
        temp.write_text(
            json.dumps({"records": merged}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        temp.replace(ROWS_FILE)


# --- shared checks -------------------------------------------------------------------------------


def fetch_source(task: DownloadTask) -> bytes:
    """A planned object's bytes as the origin serves them (a plain GET, the origin's faults off)."""
    headers = {"Accept-Encoding": "identity"}
    rng = task.range
    if rng:
        headers["Range"] = f"bytes={rng[0]}-{rng[0] + rng[1] - 1}"
    response = requests.get(task.url, headers=headers, timeout=10)
    assert response.status_code in (200, 206), f"{task.name}: origin answered {response.status_code}"
    return response.content


@pytest.fixture
def check_byte_exact() -> Callable[[Path, Plan], int]:
    """check(bucket_root, plan): every planned object equals the source's bytes; how many were checked."""

    def check(bucket_root: Path, plan: Plan) -> int:
        assert plan.tasks, "the plan has no downloads"
        for task in plan.tasks:
            stored = (bucket_root / task.key).read_bytes()
            assert stored == fetch_source(task), f"{task.name} differs from the source"
        return len(plan.tasks)

    return check


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK and requests honour *_PROXY variables: loopback traffic must never go through one.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
