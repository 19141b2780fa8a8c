"""SQL adapters: one code path for SQLite (embedded default) and PostgreSQL (by URL)."""

from __future__ import annotations

from harvest.adapters.sql.credentials import SqlCredentialStore
from harvest.adapters.sql.db import Database, DuplicateKey, Transaction
from harvest.adapters.sql.jobstore import SqlJobStore
from harvest.adapters.sql.queue import SqlQueue
from harvest.adapters.sql.schema import migrate, schema_version

__all__ = [
    "Database",
    "DuplicateKey",
    "SqlCredentialStore",
    "SqlJobStore",
    "SqlQueue",
    "Transaction",
    "migrate",
    "schema_version",
]
