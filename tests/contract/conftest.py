"""Backends for the contract suites: every case runs on SQLite and on the machine's PostgreSQL.

`db_url` is parametrized ("sqlite", "postgres"); `db` is a migrated Database on it. Each PostgreSQL
test gets its own schema (so tests and xdist workers never see each other's rows), dropped after
the test. When PostgreSQL cannot be reached, its cases are skipped with the reason.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.support.clock import ManualClock

from harvest.adapters.sql.db import Database
from harvest.domain.job import HarvestJob

POSTGRES_URL = os.environ.get("HARVEST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The server URL and a schema prefix unique to this test session; leftovers dropped at the end."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        where = POSTGRES_URL.split("@")[-1].split("/")[0]
        pytest.skip(f"PostgreSQL not reachable at {where}: {exc}")
    prefix = f"harvest_test_{uuid.uuid4().hex[:10]}"
    yield prefix
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (prefix + "%",)
        ).fetchall()
        for (schema,) in rows:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


_schema_counter = iter(range(1_000_000))
_counter_lock = threading.Lock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database location on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'harvest.db'}"
        return
    prefix: str = request.getfixturevalue("postgres_server")
    with _counter_lock:
        schema = f"{prefix}_{next(_schema_counter)}"
    yield f"{POSTGRES_URL}?schema={schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database.connect(db_url)
    yield database
    database.close()


@pytest.fixture
def clock() -> ManualClock:
    """Lease expiry and replay windows without sleeping."""
    return ManualClock()


def build_job(job_id: str, channel_name: str = "channel-a", create_time: int = 1_700_000_000) -> HarvestJob:
    return HarvestJob(
        id=job_id,
        channel_name=channel_name,
        endpoint_name="endpoint-1",
        time_format="epoch",
        start_time="1700000000",
        end_time="1700000600",
        start_epoch=1_700_000_000.0,
        end_epoch=1_700_000_600.25,
        destination="cos://bucket-1250000000/harvest",
        manifest="vod/main.m3u8",
        callback_url="https://example.invalid/callback",
        channel_id="ch-0001",
        region="ap-singapore",
        create_time=create_time,
        updated_at=float(create_time),
        extra={"requested_by": "contract-test"},
    )


@pytest.fixture
def make_job() -> Callable[..., HarvestJob]:
    """build_job as a fixture: make_job("id", channel_name=..., create_time=...)."""
    return build_job


def run_concurrently(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Start every call at the same moment on its own thread; each one's result or raised exception."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = calls[index]()
        # Collected, not swallowed: the test inspects each call's exception as its outcome.
        except Exception as exc:  # noqa: BLE001
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.fixture
def concurrently() -> Callable[[Sequence[Callable[[], Any]]], list[Any]]:
    """run_concurrently as a fixture."""
    return run_concurrently
