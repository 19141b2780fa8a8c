"""One database handle for SQLite (the embedded default) and PostgreSQL (chosen by URL).

SQL is written once, with `?` placeholders, and runs unchanged on both: the PostgreSQL driver only
swaps the placeholder style. Every unit of work is a `with db.transaction() as tx:` block that
commits on success and rolls back on any exception.

Connections come from a small bounded pool, and a transaction owns its connection until it ends,
so any number of threads may share one Database (the API server and N queue consumers do). A pool
rather than one connection per thread because PostgreSQL refuses connections past
`max_connections` (100 by default) and a busy process can easily run more threads than that.
Transactions do not nest: open one per unit of work.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from harvest.errors import ConfigError, RetryableError, StorageError, Unavailable

Row = dict[str, Any]

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

# SQLite extended result codes (https://sqlite.org/rescode.html); read from the exception, never its text.
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_CONSTRAINT_PRIMARYKEY = 1555
_SQLITE_CONSTRAINT_UNIQUE = 2067

BUSY_TIMEOUT_MS = 30_000  # how long a SQLite writer waits for another writer before giving up
POOL_WAIT_SECONDS = 60.0
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class DuplicateKey(StorageError):
    """An INSERT hit a primary-key or unique constraint (found by the database, so race-safe)."""


@dataclass(frozen=True)
class _Target:
    dialect: str
    sqlite_path: Path | None = None
    conninfo: str = ""
    schema: str | None = None
    busy_timeout_ms: int = BUSY_TIMEOUT_MS


def _parse_url(url: str) -> _Target:
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == SQLITE:
        raw_path = rest.split("?", 1)[0]
        # sqlite:////abs/file.db -> "/abs/file.db"; sqlite:///rel/file.db -> "rel/file.db"
        if not raw_path.startswith("/") or raw_path in ("/", "/:memory:"):
            raise ConfigError(
                f"SQLite URLs look like sqlite:////abs/path.db or sqlite:///rel.db, got {url!r}"
            )
        busy = dict(parse_qsl(urlsplit(url).query)).get("busy_timeout_ms", str(BUSY_TIMEOUT_MS))
        if not busy.isdigit():
            raise ConfigError(f"busy_timeout_ms must be a whole number of milliseconds, got {busy!r}")
        return _Target(SQLITE, sqlite_path=Path(raw_path[1:]), busy_timeout_ms=int(busy))
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((value for name, value in query if name == "schema"), None)
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ConfigError(f"schema must be a plain SQL identifier, got {schema!r}")
        kept = urlencode([(name, value) for name, value in query if name != "schema"])
        return _Target(POSTGRESQL, conninfo=urlunsplit(parts._replace(query=kept)), schema=schema)
    raise ConfigError(f"database URL must start with sqlite:/// or postgresql://, got {url!r}")


@lru_cache(maxsize=512)
def _pyformat(sql: str) -> str:
    """`?` placeholders to psycopg's `%s` (a literal `%` must then be doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _translate(exc: Exception) -> Exception:
    """Driver errors to named errors: duplicates and lock/connection trouble get their own kinds."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
        if isinstance(exc, sqlite3.IntegrityError) and code in (
            None,
            _SQLITE_CONSTRAINT_PRIMARYKEY,
            _SQLITE_CONSTRAINT_UNIQUE,
        ):
            return DuplicateKey(f"duplicate key: {exc}")
        if isinstance(exc, sqlite3.OperationalError) and (
            code is None or code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
        ):
            return Unavailable(f"SQLite is busy: {exc}")
        return StorageError(f"SQLite error: {exc}")
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return DuplicateKey(f"duplicate key: {exc}")
    if isinstance(
        exc, (psycopg.OperationalError, psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)
    ):
        return Unavailable(f"PostgreSQL is unavailable: {exc}")
    if isinstance(exc, psycopg.Error):
        return StorageError(f"PostgreSQL error: {exc}")
    return exc


_DRIVER_ERRORS = (sqlite3.Error, psycopg.Error)


class Transaction:
    """The statements of one transaction, on the connection it owns."""

    def __init__(self, db: Database, conn: Any) -> None:
        self._db = db
        self.conn = conn
        self.rowcount = 0  # rows changed by the last INSERT/UPDATE/DELETE
        self._statements = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; the rows it returns (empty for writes)."""
        try:
            return self._run(sql, params)
        except _DRIVER_ERRORS as exc:
            if not self._first_statement_on_dead_postgres():
                raise _translate(exc) from exc
        # The pooled connection died while idle (server restart, idle timeout): nothing of this
        # transaction has run yet, so it is safe to reconnect and run the statement again.
        self.conn = self._db._replace_connection(self.conn)
        try:
            return self._run(sql, params)
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        for params in rows:
            self.execute(sql, params)

    def _run(self, sql: str, params: Sequence[Any]) -> list[Row]:
        self._statements += 1
        if self._db.is_postgres:
            with self.conn.cursor(row_factory=dict_row) as cursor:
                cursor.execute(_pyformat(sql), tuple(params))
                self.rowcount = cursor.rowcount
                return list(cursor.fetchall()) if cursor.description else []
        cursor = self.conn.execute(sql, tuple(params))
        try:
            self.rowcount = cursor.rowcount
            if not cursor.description:
                return []
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def _first_statement_on_dead_postgres(self) -> bool:
        return self._db.is_postgres and self._statements == 1 and bool(self.conn.broken)


class _Pool:
    """At most `size` open connections; a transaction borrows one and gives it back."""

    def __init__(self, open_connection: Callable[[], Any], size: int) -> None:
        self._open = open_connection
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._closed = False

    def acquire(self) -> Any:
        if self._closed:
            raise StorageError("the database has been closed")
        if not self._slots.acquire(timeout=POOL_WAIT_SECONDS):
            raise Unavailable(f"no free database connection after {POOL_WAIT_SECONDS:.0f} s")
        with self._lock:
            if self._idle:
                return self._idle.pop()
        try:
            return self._open()
        except BaseException:
            self._slots.release()
            raise

    def release(self, conn: Any, reusable: bool) -> None:
        with self._lock:
            keep = reusable and not self._closed
            if keep:
                self._idle.append(conn)
        if not keep:
            _close_quietly(conn)
        self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            _close_quietly(conn)


def _close_quietly(conn: Any) -> None:
    # Closing a broken connection may fail; it is being thrown away either way.
    with suppress(*_DRIVER_ERRORS):
        conn.close()


class Database:
    """A pool of connections to one SQLite file or one PostgreSQL database (and schema)."""

    def __init__(self, url: str, target: _Target, pool_size: int) -> None:
        self.url = url
        self.dialect = target.dialect
        self.schema = target.schema
        self._target = target
        self._pool = _Pool(self._open_connection, pool_size)

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 8, migrate: bool = True) -> Database:
        """Open the database named by `url` and bring its schema up to date."""
        from harvest.adapters.sql.schema import migrate as run_migrations

        target = _parse_url(url)
        db = cls(url, target, pool_size)
        try:
            if target.sqlite_path is not None:
                target.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
                db._enable_wal()
            if migrate:
                run_migrations(db)
        except BaseException:
            db.close()
            raise
        return db

    @property
    def is_postgres(self) -> bool:
        return self.dialect == POSTGRESQL

    @property
    def skip_locked(self) -> str:
        """Suffix for a SELECT that claims rows: PostgreSQL lets concurrent claimers pass each other.

        SQLite needs none: its write transactions (BEGIN IMMEDIATE) already run one at a time.
        """
        return " FOR UPDATE SKIP LOCKED" if self.is_postgres else ""

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Transaction]:
        """Commit the block's statements together, or none of them.

        `write=True` takes SQLite's write lock up front (BEGIN IMMEDIATE), so a transaction never fails
        half way when it upgrades from reading to writing; contending writers wait up to busy_timeout.
        """
        tx = Transaction(self, self._pool.acquire())
        reusable = True
        try:
            if not self.is_postgres:
                tx.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield tx
            self._finish(tx.conn, commit=True)
        except BaseException:
            reusable = self._rollback(tx.conn)
            raise
        finally:
            self._pool.release(tx.conn, reusable)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self._target.sqlite_path or urlsplit(self._target.conninfo).hostname
        return f"Database({self.dialect}, {where}, schema={self.schema})"

    # --- connections ----------------------------------------------------------------------------

    def _open_connection(self) -> Any:
        try:
            if self._target.sqlite_path is not None:
                return self._open_sqlite(self._target.sqlite_path, self._target.busy_timeout_ms)
            return self._open_postgres()
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    @staticmethod
    def _open_sqlite(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
        # isolation_level=None: the driver issues no implicit BEGIN; `transaction()` does it itself.
        # check_same_thread=False: a pooled connection moves between threads, one at a time.
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a crash loses no committed data
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _open_postgres(self) -> psycopg.Connection[Any]:
        options = {"options": f"-c search_path={self.schema}"} if self.schema else {}
        conninfo = make_conninfo(self._target.conninfo, connect_timeout=10, **options)
        return psycopg.connect(conninfo, autocommit=False)

    def _replace_connection(self, dead: Any) -> Any:
        _close_quietly(dead)
        return self._open_connection()

    def _enable_wal(self) -> None:
        # The journal mode is stored in the file, so once per Database is enough. Switching a new file
        # to WAL answers "busy" at once, without waiting in busy_timeout, while another process is
        # doing the same: so wait here instead.
        conn = self._pool.acquire()
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        try:
            while True:
                try:
                    conn.execute("PRAGMA journal_mode = WAL").fetchall()
                    break
                except sqlite3.OperationalError as exc:
                    if not isinstance(_translate(exc), RetryableError) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        except _DRIVER_ERRORS as exc:
            self._pool.release(conn, reusable=False)
            raise _translate(exc) from exc
        self._pool.release(conn, reusable=True)

    def _finish(self, conn: Any, commit: bool) -> None:
        try:
            if self.is_postgres and commit:
                conn.commit()
            elif self.is_postgres:
                conn.rollback()
            else:
                conn.execute("COMMIT" if commit else "ROLLBACK")
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    def _rollback(self, conn: Any) -> bool:
        """Roll back; whether the connection is still fit for the pool."""
        if not self.is_postgres and not conn.in_transaction:
            return True  # BEGIN itself failed (SQLite busy): nothing to undo
        try:
            self._finish(conn, commit=False)
        except (StorageError, RetryableError):
            return False
        return not (self.is_postgres and conn.broken)


def placeholders(count: int) -> str:
    """`?, ?, ?` for an IN list of `count` values."""
    return ", ".join("?" * count)
