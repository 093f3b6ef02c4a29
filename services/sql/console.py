"""The SQL console: run one read-only statement against the studio's database.

Three layers keep the database safe, each enough on its own for most attacks:

1. The statement is parsed by DuckDB itself (``extract_statements``): exactly one statement,
   of type SELECT. Its syntax tree (``json_serialize_sql``) is then walked: table functions must
   come from a short allowlist (so no read_csv, read_text, glob, query, checkpoint ...), table
   names must not be file paths or URLs (DuckDB's replacement scans), scalar functions that
   change state (nextval, setseed) are refused, and only the studio's own catalog is reachable.
2. It runs on a fresh cursor inside ``BEGIN TRANSACTION READ ONLY`` that is always rolled back,
   so even a check that misses something cannot write.
3. The store's connection is locked down (external access off, configuration locked): this is
   verified before every query and the console refuses to run if it is not so.

A timer thread interrupts the cursor after the time limit; results are capped at ``max_rows``.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from services.core.errors import StudioError

DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT_S = 10.0

# Table functions a read query may use: generators and the catalog's own introspection.
ALLOWED_TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest", "repeat_row",
    "duckdb_tables", "duckdb_views", "duckdb_columns", "duckdb_schemas", "duckdb_types",
    "duckdb_functions", "duckdb_indexes", "duckdb_constraints", "duckdb_keywords",
    "pragma_table_info", "pragma_show", "duckdb_databases",
})
# Scalar functions that change state or reach outside the database.
REFUSED_FUNCTIONS = frozenset({
    "nextval", "currval", "setseed", "getenv", "current_setting", "set_config",
    "query", "query_table", "read_text", "read_blob", "glob", "checkpoint", "force_checkpoint",
})
REFUSED_FUNCTION_PREFIXES = ("read_", "parquet_", "sniff_", "iceberg_", "delta_", "sqlite_", "postgres_",
                             "mysql_", "http", "s3", "st_read", "load_", "install_", "write_")
ALLOWED_SCHEMAS = frozenset({"", "main", "information_schema", "pg_catalog", "temp"})
# A table name that looks like a path or URL would become a replacement scan of a file.
_PATHLIKE = re.compile(r"[/\\:.~]|^(https?|s3|gcs|az|hf)")


class QueryRefused(StudioError, ValueError):
    """The console will not run this statement (it is not a single read-only query)."""

    title = "The query was refused"


class QueryFailed(StudioError, RuntimeError):
    """DuckDB could not parse or run the statement; the message is DuckDB's own."""

    title = "The query failed"


class QueryTimeout(QueryFailed):
    """The statement ran past the time limit and was interrupted."""


@dataclass
class QueryResult:
    df: pd.DataFrame
    row_count: int          # rows returned (at most max_rows)
    truncated: bool         # True when more rows existed than max_rows
    elapsed_s: float
    sql: str

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.df.columns]


def _statement_label(stmt_type: Any) -> str:
    return str(stmt_type).rsplit(".", 1)[-1].replace("_", " ")


def check_query(sql: str, own_catalogs: frozenset[str] = frozenset(),
                cur: duckdb.DuckDBPyConnection | None = None) -> str:
    """Return the single read-only statement in ``sql`` or raise QueryRefused / QueryFailed.

    ``own_catalogs`` names the studio's database (its catalog) so `studio.main.samples` passes.
    """
    if not sql or not sql.strip() or not sql.strip().strip(";").strip():
        raise QueryRefused("Write a query first.")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryFailed(str(exc)) from exc
    if len(statements) != 1:
        raise QueryRefused(f"One statement at a time: this text holds {len(statements)} statements.")
    stmt = statements[0]
    if stmt.type == duckdb.StatementType.MULTI:
        raise QueryRefused("This statement expands into several (a PIVOT statement does): write it as a SELECT "
                           "with GROUP BY, or PIVOT ... ON col IN (values) inside a subquery.")
    if stmt.type != duckdb.StatementType.SELECT:
        raise QueryRefused(
            f"{_statement_label(stmt.type)} statements are not allowed: the console is read-only "
            "and runs SELECT queries (WITH, FROM, VALUES, DESCRIBE, SUMMARIZE included)."
        )
    query = stmt.query.strip().rstrip(";").strip()
    tree = _syntax_tree(query, cur)
    _walk(tree, frozenset({"system", "temp", *(c.lower() for c in own_catalogs)}))
    return query


def _syntax_tree(query: str, cur: duckdb.DuckDBPyConnection | None) -> dict:
    # json_serialize_sql only parses (it never binds or runs the query); without a cursor, a
    # throwaway in-memory connection does it.
    if cur is not None:
        raw = cur.execute("SELECT json_serialize_sql(?)", [query]).fetchone()[0]
    else:
        con = duckdb.connect(":memory:")
        try:
            raw = con.execute("SELECT json_serialize_sql(?)", [query]).fetchone()[0]
        finally:
            con.close()
    tree = json.loads(raw)
    if tree.get("error"):
        message = tree.get("error_message", "")
        if tree.get("error_type") == "parser":
            raise QueryFailed(message)
        raise QueryRefused(f"This query form cannot be checked, so it is not run: {message}")
    return tree


def _walk(node: Any, catalogs: frozenset[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, catalogs)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "TABLE_FUNCTION":
        fn = node.get("function") or {}
        name = str(fn.get("function_name", "")).lower()
        if name not in ALLOWED_TABLE_FUNCTIONS:
            raise QueryRefused(
                f"The table function {name}() is not allowed: the console reads the studio's tables and views, "
                "not files, URLs or other databases."
            )
    elif kind == "BASE_TABLE":
        table = str(node.get("table_name", ""))
        catalog = str(node.get("catalog_name", "")).lower()
        schema = str(node.get("schema_name", "")).lower()
        if _PATHLIKE.search(table):
            raise QueryRefused(f"'{table}' looks like a file or URL: the console cannot read files.")
        # `x.t` binds to schema x or to database x: either must be the studio's own.
        allowed = ALLOWED_SCHEMAS | catalogs
        if schema not in allowed or (catalog and catalog not in catalogs):
            name = ".".join(p for p in (catalog, schema, table) if p)
            raise QueryRefused(f"Only the studio's own tables and views can be queried, not '{name}'.")
    if node.get("class") == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        if name in REFUSED_FUNCTIONS or name.startswith(REFUSED_FUNCTION_PREFIXES):
            raise QueryRefused(f"The function {name}() is not allowed in the console.")
    for value in node.values():
        if isinstance(value, dict | list):
            _walk(value, catalogs)


def verify_lockdown(cur: duckdb.DuckDBPyConnection) -> None:
    """Refuse to run if the connection can reach files or change its configuration."""
    external, locked = cur.execute(
        "SELECT current_setting('enable_external_access'), current_setting('lock_configuration')"
    ).fetchone()
    if external or not locked:
        raise QueryRefused("The database connection is not locked down (external access or configuration open); "
                           "the console does not run queries on it.")


def run_query(store: Any, sql: str, *, max_rows: int = DEFAULT_MAX_ROWS,
              timeout_s: float = DEFAULT_TIMEOUT_S) -> QueryResult:
    """Check and run one read-only statement; returns at most ``max_rows`` rows.

    Raises QueryRefused (not a read-only query), QueryFailed (DuckDB's error, with position)
    or QueryTimeout (interrupted after ``timeout_s`` seconds).
    """
    cur = store.fresh_cursor()
    try:
        verify_lockdown(cur)
        own = frozenset(n for (n,) in cur.execute("SELECT database_name FROM duckdb_databases() WHERE NOT internal").fetchall())
        query = check_query(sql, own, cur)
        cur.execute("BEGIN TRANSACTION READ ONLY")
        timer = threading.Timer(timeout_s, cur.interrupt)
        started = time.perf_counter()
        timer.start()
        try:
            result = cur.execute(query)
            df, truncated = _fetch_capped(result, max_rows)
        except duckdb.InterruptException as exc:
            raise QueryTimeout(
                f"The query ran past the time limit of {timeout_s:g} s and was stopped. "
                "Narrow it (a WHERE, a LIMIT, fewer joins) and run it again."
            ) from exc
        except duckdb.Error as exc:
            raise QueryFailed(str(exc)) from exc
        finally:
            timer.cancel()
            elapsed = time.perf_counter() - started
            _rollback(cur)
        return QueryResult(df=df, row_count=len(df), truncated=truncated, elapsed_s=elapsed, sql=query)
    finally:
        cur.close()


def _fetch_capped(result: duckdb.DuckDBPyConnection, max_rows: int) -> tuple[pd.DataFrame, bool]:
    # The result streams: fetch vector chunks until the cap is passed, never the whole result.
    chunks: list[pd.DataFrame] = []
    n = 0
    while n <= max_rows:
        chunk = result.fetch_df_chunk(max(1, (max_rows - n) // 2048 + 1))
        if chunk is None or len(chunk) == 0:
            break
        chunks.append(chunk)
        n += len(chunk)
    if not chunks:
        names = [d[0] for d in (result.description or [])]
        return pd.DataFrame(columns=names), False
    df = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    truncated = len(df) > max_rows
    return df.iloc[:max_rows].reset_index(drop=True), truncated


def _rollback(cur: duckdb.DuckDBPyConnection) -> None:
    # An interrupted or failed statement may already have ended the transaction.
    with contextlib.suppress(duckdb.Error):
        cur.execute("ROLLBACK")


# -- result helpers (display and downloads) -------------------------------------------------

def _is_complex(series: pd.Series) -> bool:
    sample = series.dropna().head(50)
    return series.dtype == object and any(isinstance(v, dict | list | tuple | bytes | bytearray) for v in sample)


def display_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Maps, lists and structs as JSON-ish text, so tables, charts and CSV show them plainly."""
    out = df.copy()
    out.columns = _unique_names([str(c) for c in out.columns])
    for col in out.columns:
        if _is_complex(out[col]):
            out[col] = out[col].map(lambda v: v if v is None else json.dumps(v, default=str, ensure_ascii=False))
    return out


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}_{k}")
    return out


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    return display_frame(df).to_csv(index=False).encode("utf-8")


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    display_frame(df).to_parquet(buf, index=False)
    return buf.getvalue()
