"""CredentialStore on SQL: temporary keys in the job database (SQLite or PostgreSQL)."""

from __future__ import annotations

import json

from harvest.adapters.sql.db import Database
from harvest.domain.credentials import TemporaryKey


class SqlCredentialStore:
    """ports.CredentialStore on a Database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, key: TemporaryKey) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO temporary_keys (secret_id, secret_key, token_hash, scope, expires_at,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key.secret_id,
                    key.secret_key,
                    key.token_hash,
                    json.dumps(list(key.scope)),
                    key.expires_at,
                    key.created_at,
                ),
            )

    def get(self, secret_id: str) -> TemporaryKey | None:
        with self._db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT secret_id, secret_key, token_hash, scope, expires_at, created_at"
                " FROM temporary_keys WHERE secret_id = ?",
                (secret_id,),
            )
        if not rows:
            return None
        row = rows[0]
        return TemporaryKey(
            secret_id=row["secret_id"],
            secret_key=row["secret_key"],
            token_hash=row["token_hash"],
            expires_at=float(row["expires_at"]),
            scope=tuple(json.loads(row["scope"])),
            created_at=float(row["created_at"]),
        )

    def revoke(self, secret_id: str) -> bool:
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM temporary_keys WHERE secret_id = ?", (secret_id,))
            return tx.rowcount > 0
