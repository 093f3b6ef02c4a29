"""The DuckDB store: one connection per process, a cursor per thread, one writer.

DuckDB allows one writing process per file and one configuration per process, so the
studio opens the file once, locks the configuration down (no file or network access
outside the allowed directories) and hands each thread its own cursor. Writes go through
``Store.write()``, which serialises them with a process-wide lock.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from services.core import settings
from services.core.errors import StudioError
from services.core.migrations import MIGRATIONS
from services.core.sql_text import quote_literal


class StoreLockedError(StudioError, RuntimeError):
    """Another process holds the database file."""

    title = "The database is in use"


class MemoryLimitError(StudioError, ValueError):
    """STUDIO_DB_MEMORY_LIMIT is not a size DuckDB accepts."""

    title = "The database memory limit is not valid"


def default_db_path() -> Path:
    """The database file: $STUDIO_DB if set, else data/studio.duckdb."""
    return Path(settings.get("STUDIO_DB"))


class Store:
    """The studio's database: migrations, per-thread cursors and a single writer."""

    def __init__(self, path: str | Path | None = None, *, extra_allowed_dirs: Sequence[str | Path] = ()) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.work_dir = self.path.parent / "cache"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                holder = re.search(r"\(PID (\d+)\)", str(exc))
                who = f" (held by process {holder.group(1)})" if holder else ""
                raise StoreLockedError(
                    f"The database file {self.path} is in use by another process{who}. "
                    "Stop the other studio or command, or point STUDIO_DB at another file."
                ) from exc
            raise
        self._set_memory_limit(settings.get("STUDIO_DB_MEMORY_LIMIT"))
        # Progress is tracked per connection and cannot be switched on once the configuration
        # is locked, so the cursor for long writes that report it (imports) is made before.
        self._progress_cursor = self._con.cursor()
        self._progress_cursor.execute("SET enable_progress_bar = true")
        self._progress_cursor.execute("SET enable_progress_bar_print = false")
        allowed = [self.path.parent, self.work_dir, *map(Path, extra_allowed_dirs)]
        self._lock_down(allowed)
        self.migrate()

    def _set_memory_limit(self, limit: str) -> None:
        # One limit for the whole database (DuckDB has no per-statement one); past it, sorts,
        # joins and imports spill to <db>.tmp instead of growing the process.
        try:
            self._con.execute(f"SET memory_limit = {quote_literal(limit.strip())}")
        except duckdb.Error:
            self._con.close()
            raise MemoryLimitError(
                f"STUDIO_DB_MEMORY_LIMIT={limit!r} is not a memory size DuckDB understands: give one such as 2GB, 512MB or 25%."
            ) from None

    def _lock_down(self, allowed: Sequence[Path]) -> None:
        # Order matters: allowed directories first, then no external access, then lock.
        dirs = ", ".join("'" + str(p.resolve()).replace("'", "''") + "/'" for p in allowed)
        self._con.execute(f"SET allowed_directories=[{dirs}]")
        self._con.execute("SET enable_external_access=false")
        self._con.execute("SET lock_configuration=true")

    # -- connections -------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor (created on first use)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
        return cur

    def fresh_cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor the caller owns (for interruptible or long-lived work)."""
        return self._con.cursor()

    @contextlib.contextmanager
    def write(self, *, progress: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Serialise a write transaction: yields this thread's cursor inside BEGIN/COMMIT.

        ``progress=True`` yields instead the one cursor that tracks progress: another thread may
        call its ``query_progress()`` (percent of the running statement, -1 when unknown) while
        a statement runs on it."""
        with self._write_lock:
            cur = self._progress_cursor if progress else self.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] | dict | None = None) -> list[tuple]:
        return self.cursor().execute(sql, params or []).fetchall()

    def query_df(self, sql: str, params: Sequence[Any] | dict | None = None):
        return self.cursor().execute(sql, params or []).df()

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """A read query into an Arrow table, on a cursor of its own (DuckDB 2 refuses a relation
        on a cursor that still holds an unfinished result, e.g. after ``fetchone``)."""
        cur = self.fresh_cursor()
        try:
            return cur.sql(sql, params=list(params or [])).to_arrow_table()
        finally:
            cur.close()

    def scalar(self, sql: str, params: Sequence[Any] | dict | None = None) -> Any:
        # fetchall, not fetchone: DuckDB keeps a half-read result open on the cursor.
        rows = self.cursor().execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    def checkpoint(self) -> None:
        with self._write_lock:
            self.cursor().execute("CHECKPOINT")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._con.close()

    # -- migrations --------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations in order; returns the versions applied."""
        with self._write_lock:
            cur = self.cursor()
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
                " applied_at TIMESTAMP DEFAULT current_timestamp)"
            )
            done = {v for (v,) in cur.execute("SELECT version FROM schema_migrations").fetchall()}
            applied = []
            for m in MIGRATIONS:
                if m.version in done:
                    continue
                cur.execute("BEGIN TRANSACTION")
                try:
                    for stmt in m.statements:
                        cur.execute(stmt)
                    cur.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [m.version, m.name])
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
                applied.append(m.version)
            return applied

    def schema_version(self) -> int:
        return int(self.scalar("SELECT coalesce(max(version), 0) FROM schema_migrations"))
