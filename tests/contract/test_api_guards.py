"""The API's rate limit and replay ledger in PostgreSQL hold across instances sharing the database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.clock import ManualClock

from harvest.adapters.sql.db import Database
from harvest.adapters.sql.guards import SqlRateLimiter, SqlSignatureLedger
from harvest.api.ratelimit import RateLimiter
from harvest.composition import build_api_deps, build_backend
from harvest.errors import RequestLimitExceeded
from harvest.settings import Settings

pytestmark = pytest.mark.postgres
CREATE = "CreateStreamPackageHarvestJob"


@pytest.fixture
def pg_url(postgres_server: str, db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("the shared guards are for PostgreSQL; the embedded default keeps them per process")
    return db_url


@pytest.fixture
def instances(pg_url: str) -> Iterator[list[Database]]:
    """Three api instances: each its own connection pool on the same database."""
    dbs = [Database.connect(pg_url) for _ in range(3)]
    yield dbs
    for db in dbs:
        db.close()


def _allowed(limiters: list[SqlRateLimiter] | list[RateLimiter], calls: int, secret_id: str = "AKID1") -> int:
    allowed = 0
    for n in range(calls):
        try:
            limiters[n % len(limiters)].acquire(secret_id, CREATE)
            allowed += 1
        except RequestLimitExceeded:
            pass
    return allowed


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_three_instances_share_one_limit_of_20_per_second(instances: list[Database]) -> None:
    # GIVEN three instances' limiters at the same instant (a clock the test moves)
    clock = ManualClock()
    limiters = [SqlRateLimiter(db, 20.0, clock=clock) for db in instances]
    # WHEN 60 Creates of one SecretId arrive spread over them
    # THEN 20 pass in all, not 20 per instance
    assert _allowed(limiters, 60) == 20
    # AND half a second later 10 more pass; another SecretId has its own bucket
    clock.advance(0.5)
    assert _allowed(limiters, 30) == 10
    assert _allowed(limiters, 30, secret_id="AKID2") == 20
    # (per process, as on the embedded default, each instance would allow its own 20)
    assert _allowed([RateLimiter(20.0, clock=clock) for _ in range(3)], 60) == 60


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_replay_sent_to_another_instance_is_caught(instances: list[Database]) -> None:
    ledgers = [SqlSignatureLedger(db, 300.0) for db in instances]
    now = 1_800_000_000.0
    assert ledgers[0].check_and_remember("a" * 64, int(now), now) is True
    assert ledgers[1].check_and_remember("a" * 64, int(now), now) is False
    assert ledgers[2].check_and_remember("b" * 64, int(now), now) is True
    # Expired signatures are forgotten (a request that old fails the skew check before this one).
    assert ledgers[2].check_and_remember("a" * 64, int(now) + 400, now + 400) is True


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_the_composition_root_uses_the_shared_guards_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "channels.yaml").write_text("channels: []\n", encoding="utf-8")
    settings = Settings(database_url=pg_url, channels_file=tmp_path / "channels.yaml", replay_protection=True)
    backend = build_backend(settings)
    try:
        deps = build_api_deps(settings, backend)
        assert isinstance(deps.rate_limiter, SqlRateLimiter)
        assert isinstance(deps.replay_ledger, SqlSignatureLedger)
    finally:
        backend.db.close()
