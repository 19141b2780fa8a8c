"""Concurrent Creates: one job per ID however many clients race for it, and every loser told why."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.reliability.table import Recorder
from tests.support.api_stack import (
    ApiStack,
    job_params,
    running_api_stack,
)
from tests.support.signing import signed_headers

CREATE = "CreateStreamPackageHarvestJob"
DISTINCT_IDS = 50
COPIES = 4  # 200 requests in all
CLIENT_THREADS = 40


@pytest.fixture
def stack(tmp_path: Path, clean_proxy_env: None) -> Iterator[ApiStack]:
    with running_api_stack(tmp_path, rate_limit=0.0) as running:
        yield running


def _create(endpoint: str, session: requests.Session, params: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(params).encode()
    headers = signed_headers(endpoint, CREATE, body)
    response = session.post(f"http://{endpoint}/", data=body, headers=headers, timeout=60)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    answer: dict[str, Any] = response.json()["Response"]
    return answer


def test_concurrent_creates_of_the_same_ids_make_exactly_one_job_each(
    stack: ApiStack, reliability_record: Recorder
) -> None:
    # GIVEN 200 signed Create requests over 50 distinct IDs (4 each), in random order
    now = time.time()
    requests_to_send = [job_params(f"race-{i:02d}", now) for i in range(DISTINCT_IDS) for _ in range(COPIES)]
    random.Random(5).shuffle(requests_to_send)
    sessions = [requests.Session() for _ in range(CLIENT_THREADS)]
    # WHEN 40 client threads send them all at once over HTTP
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
        answers = list(
            pool.map(
                lambda item: _create(stack.endpoint, sessions[item[0] % CLIENT_THREADS], item[1]),
                enumerate(requests_to_send),
            )
        )
    elapsed = time.monotonic() - started
    for session in sessions:
        session.close()
    # THEN exactly one Create per ID succeeded, every other one was answered ResourceInUse
    codes = Counter(answer.get("Error", {}).get("Code", "OK") for answer in answers)
    assert codes == {"OK": DISTINCT_IDS, "ResourceInUse": DISTINCT_IDS * (COPIES - 1)}, codes
    created = sorted(answer["Info"]["ID"] for answer in answers if "Error" not in answer)
    assert created == sorted(f"race-{i:02d}" for i in range(DISTINCT_IDS))
    # AND the store holds exactly those 50 jobs, each with its plan message queued (concurrent
    # outbox flushes may publish one twice: delivery is at-least-once, and a repeat is a no-op)
    page = stack.store.list(None, 0, 1000)
    assert page.total == DISTINCT_IDS
    assert sorted(job.id for job in page.jobs) == created
    queued = [delivery.message.body for delivery in stack.queue.receive(1000, 60)]
    assert {body["kind"] for body in queued} == {"plan"}
    assert sorted({body["job_id"] for body in queued}) == created
    duplicates = [answer["Error"]["Message"] for answer in answers if "Error" in answer]
    reliability_record(
        "Concurrent duplicate Creates",
        f"{len(answers)} signed Creates over {DISTINCT_IDS} IDs from {CLIENT_THREADS} threads,"
        " HTTP to the gateway",
        f"{codes['OK']} jobs created, {codes['ResourceInUse']} answered ResourceInUse"
        f" (e.g. {duplicates[0]!r}), 0 other codes; every job's plan message queued"
        f" ({len(queued)} messages for {DISTINCT_IDS} jobs); {elapsed:.1f} s",
    )
