"""CredentialStore contract, on SQLite and PostgreSQL: temporary keys round-trip, tokens stay hashed."""

from __future__ import annotations

import pytest

from harvest.adapters.sql import Database, SqlCredentialStore
from harvest.adapters.sql.db import DuplicateKey
from harvest.domain.credentials import hash_token, mint, scope_allows


def test_an_issued_key_reads_back_as_stored(db: Database) -> None:
    store = SqlCredentialStore(db)
    issued = mint(3600, ("Describe*", "CancelStreamPackageHarvestJob"), 1_700_000_000.0)
    store.add(issued.key)
    assert store.get(issued.key.secret_id) == issued.key
    assert issued.key.token_hash == hash_token(issued.token) != issued.token
    assert store.get("AKIDtmpnobody") is None


def test_a_secret_id_is_issued_once(db: Database) -> None:
    store = SqlCredentialStore(db)
    issued = mint(60, (), 1_700_000_000.0)
    store.add(issued.key)
    with pytest.raises(DuplicateKey):
        store.add(issued.key)


def test_a_revoked_key_is_gone(db: Database) -> None:
    store = SqlCredentialStore(db)
    issued = mint(60, (), 1_700_000_000.0)
    store.add(issued.key)
    assert store.revoke(issued.key.secret_id) is True
    assert store.get(issued.key.secret_id) is None
    assert store.revoke(issued.key.secret_id) is False


@pytest.mark.parametrize(
    ("scope", "action", "allowed"),
    [
        ((), "CreateStreamPackageHarvestJob", True),
        (("Describe*",), "DescribeStreamPackageHarvestJobs", True),
        (("Describe*",), "CreateStreamPackageHarvestJob", False),
        (("describe*",), "DescribeStreamPackageHarvestJobs", False),  # action names are case-sensitive
        (("CancelStreamPackageHarvestJob", "Describe*"), "CancelStreamPackageHarvestJob", True),
    ],
)
def test_scope_allows(scope: tuple[str, ...], action: str, allowed: bool) -> None:
    assert scope_allows(scope, action) is allowed


@pytest.mark.parametrize("ttl", [0, -1, 7 * 24 * 3600 + 1])
def test_a_lifetime_out_of_bounds_is_refused(ttl: float) -> None:
    with pytest.raises(ValueError, match="lives between"):
        mint(ttl, (), 1_700_000_000.0)
