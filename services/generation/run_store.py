"""Runs, samples, run events and model prices in the store: every SQL string of generation.

Timestamps are written from Python in UTC (naive), so durations computed from them agree.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import yaml

from services.core.clock import utc_now
from services.core.paths import DATA_DIR
from services.core.store import Store

STATUSES = ("planned", "running", "finished", "cancelled", "failed", "interrupted")
RESUMABLE = ("cancelled", "failed", "interrupted", "planned")
_MAP = pa.map_(pa.string(), pa.string())


def sample_key(run_id: str, item_key: str, sample_idx: int, step: str) -> str:
    """Deterministic: a resume computes the same key, so it never duplicates a sample."""
    return hashlib.blake2b(f"{run_id}/{item_key}/{sample_idx}/{step}".encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    plan_id: str
    recipe_hash: str
    name: str | None
    backend: str
    base_url: str | None
    model: str
    params: dict[str, Any]
    samples_per_item: int
    status: str
    error: str | None
    budget_usd: float | None
    settings: dict[str, Any]
    item_limit: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


_RUN_COLS = ("run_id, plan_id, recipe_hash, name, backend, base_url, model, params, samples_per_item, status, error,"
             " budget_usd, settings, item_limit, created_at, started_at, finished_at")


def _run(row: tuple) -> RunInfo:
    vals = list(row)
    vals[7] = json.loads(vals[7]) if vals[7] else {}
    vals[12] = json.loads(vals[12]) if vals[12] else {}
    return RunInfo(*vals)


def create_run(store: Store, *, plan_id: str, recipe_hash: str, backend: str, base_url: str | None, model: str,
               params: dict[str, Any], settings: dict[str, Any], samples_per_item: int = 1,
               budget_usd: float | None = None, item_limit: int | None = None, name: str | None = None) -> str:
    """Record a planned run (never a key: base_url and model only)."""
    run_id = "run-" + uuid.uuid4().hex[:12]
    with store.write() as cur:
        cur.execute(
            "INSERT INTO runs (run_id, plan_id, recipe_hash, name, backend, base_url, model, params, samples_per_item,"
            " status, budget_usd, settings, item_limit, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'planned', ?, ?, ?, ?)",
            [run_id, plan_id, recipe_hash, name, backend, base_url, model, json.dumps(params), samples_per_item,
             budget_usd, json.dumps(settings), item_limit, utc_now()],
        )
        cur.execute("INSERT INTO run_events (run_id, event_at, kind, message) VALUES (?, ?, 'planned', ?)",
                    [run_id, utc_now(), f"planned on {backend} / {model}"])
    return run_id


def get_run(store: Store, run_id: str) -> RunInfo:
    rows = store.query(f"SELECT {_RUN_COLS} FROM runs WHERE run_id = ?", [run_id])
    if not rows:
        raise KeyError(f"no run {run_id}")
    return _run(rows[0])


def list_runs(store: Store, limit: int = 50) -> list[RunInfo]:
    return [_run(r) for r in store.query(f"SELECT {_RUN_COLS} FROM runs ORDER BY created_at DESC LIMIT ?", [limit])]


def rename_run(store: Store, run_id: str, name: str) -> None:
    """Give a run the name it is shown by everywhere (pages, SQL, exports)."""
    name = name.strip()
    if not name:
        raise ValueError("a run's name cannot be empty")
    with store.write() as cur:
        if cur.execute("UPDATE runs SET name = ? WHERE run_id = ? RETURNING run_id", [name, run_id]).fetchall() == []:
            raise KeyError(f"no run {run_id}")


def unique_run_name(store: Store, base: str) -> str:
    """``base``, or ``base 2``, ``base 3``… so that two runs never share a name (a preview is not
    just 'preview', and two chips with one label cannot be told apart)."""
    taken = {r[0] for r in store.query("SELECT name FROM runs WHERE name = ? OR name LIKE ?", [base, base + " %"])}
    if base not in taken:
        return base
    n = 2
    while f"{base} {n}" in taken:
        n += 1
    return f"{base} {n}"


def set_status(store: Store, run_id: str, status: str, error: str | None = None, *, started: bool = False,
               finished: bool = False, base_url: str | None = None) -> None:
    assert status in STATUSES, status
    sets, params = ["status = ?", "error = ?"], [status, error]
    if started:
        sets.append("started_at = coalesce(started_at, ?)")
        params.append(utc_now())
    if finished:
        sets.append("finished_at = ?")
        params.append(utc_now())
    if base_url is not None:
        sets.append("base_url = ?")
        params.append(base_url)
    with store.write() as cur:
        cur.execute(f"UPDATE runs SET {', '.join(sets)} WHERE run_id = ?", [*params, run_id])


def add_event(store: Store, run_id: str, kind: str, message: str) -> None:
    with store.write() as cur:
        cur.execute("INSERT INTO run_events (run_id, event_at, kind, message) VALUES (?, ?, ?, ?)", [run_id, utc_now(), kind, message])


def events(store: Store, run_id: str, limit: int = 20) -> list[tuple[datetime, str, str]]:
    return store.query("SELECT event_at, kind, message FROM run_events WHERE run_id = ? ORDER BY event_at DESC LIMIT ?", [run_id, limit])


def mark_interrupted(store: Store, active: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Runs left 'running' by a process that is gone become 'interrupted'; returns their ids."""
    rows = [r for (r,) in store.query("SELECT run_id FROM runs WHERE status = 'running'") if r not in active]
    for run_id in rows:
        set_status(store, run_id, "interrupted", "The worker stopped (the studio or command was killed or restarted). Resume to generate what is missing.")
        add_event(store, run_id, "interrupted", "found running with no worker: marked interrupted")
    return rows


# -- samples -----------------------------------------------------------------------------
def existing_outputs(store: Store, run_id: str) -> dict[str, str]:
    """sample_key -> text of every successful row (any step) of a run."""
    return dict(store.query("SELECT sample_key, text FROM samples WHERE run_id = ? AND error IS NULL", [run_id]))


def existing_values(store: Store, run_id: str) -> dict[str, tuple[str | None, str | None]]:
    """sample_key -> (text, value as JSON or None) of every successful row of a run: what a resume
    reuses instead of asking again."""
    rows = store.query("SELECT sample_key, text, value FROM samples WHERE run_id = ? AND error IS NULL", [run_id])
    return {k: (t, v) for k, t, v in rows}


def delete_failed(store: Store, run_id: str) -> int:
    """Drop a run's error rows so a resume retries them (an error row was never a paid output)."""
    with store.write() as cur:
        n = cur.execute("SELECT count(*) FROM samples WHERE run_id = ? AND error IS NOT NULL", [run_id]).fetchone()[0]
        cur.execute("DELETE FROM samples WHERE run_id = ? AND error IS NOT NULL", [run_id])
    return int(n)


_SAMPLE_FIELDS = {
    "sample_key": pa.string(), "run_id": pa.string(), "plan_id": pa.string(), "item_idx": pa.int32(),
    "item_key": pa.string(), "sample_idx": pa.int32(), "step": pa.string(), "recipe_hash": pa.string(),
    "condition": _MAP, "demo_ids": pa.list_(pa.string()), "messages": pa.string(), "text": pa.string(),
    "model": pa.string(), "params": pa.string(), "prompt_tokens": pa.int32(), "completion_tokens": pa.int32(),
    "latency_ms": pa.float64(), "cost_usd": pa.float64(), "finish_reason": pa.string(), "error": pa.string(),
    "attempts": pa.int32(), "created_at": pa.timestamp("us"), "column_kind": pa.string(), "value": pa.string(),
}
_COLS = ", ".join(_SAMPLE_FIELDS)


def insert_samples(store: Store, rows: list[dict[str, Any]], *, new_keys: bool = False) -> None:
    """Write a batch of sample rows in one transaction; a key already present is left as is.
    ``new_keys``: the caller knows none of the keys is stored yet (a runner writing what it just
    generated), so a plain INSERT is tried first (a third cheaper than INSERT OR IGNORE); if a key is
    there after all, the batch is written again with OR IGNORE, so nothing is stored twice."""
    if not rows:
        return
    data = {}
    for name, typ in _SAMPLE_FIELDS.items():
        col = [r.get(name) for r in rows]
        if name == "condition":
            col = [list(c.items()) for c in col]
        data[name] = pa.array(col, typ)
    table = pa.table(data)
    if new_keys:
        try:
            _insert(store, table, "INSERT")
            return
        except duckdb.ConstraintException:
            pass  # rolled back whole: written below without the keys already present
    _insert(store, table, "INSERT OR IGNORE")


def _insert(store: Store, table: pa.Table, verb: str) -> None:
    with store.write() as cur:
        cur.register("_samples_in", table)
        try:
            cur.execute(f"{verb} INTO samples ({_COLS}) SELECT {_COLS} FROM _samples_in")
        finally:
            cur.unregister("_samples_in")


@dataclass(frozen=True)
class Progress:
    total: int  # output samples the run should produce
    done: int  # outputs generated (no error)
    failed: int  # outputs marked failed
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    rows: int  # all rows incl. intermediate steps
    first_at: datetime | None
    last_at: datetime | None
    # This attempt (a resume is a new one): when its worker started, and the outputs it has ended
    # (generated or failed) since, with the first and last of their times. Its rate is the run's own.
    attempt_at: datetime | None = None
    attempt_ended: int = 0
    attempt_first_at: datetime | None = None
    attempt_last_at: datetime | None = None

    @property
    def fraction(self) -> float:
        return min(1.0, (self.done + self.failed) / self.total) if self.total else 0.0

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.done - self.failed)


def run_total(store: Store, run: RunInfo) -> int:
    n = int(store.scalar("SELECT count(*) FROM plan_items WHERE plan_id = ?", [run.plan_id]) or 0)
    if run.item_limit is not None:
        n = min(n, run.item_limit)
    return n * run.samples_per_item


def progress(store: Store, run: RunInfo) -> Progress:
    row = store.query(
        "SELECT count(*) FILTER (WHERE step = 'output' AND error IS NULL), count(*) FILTER (WHERE step = 'output' AND error IS NOT NULL),"
        " coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), coalesce(sum(cost_usd), 0), count(*),"
        " min(created_at), max(created_at) FROM samples WHERE run_id = ?",
        [run.run_id],
    )[0]
    # The latest 'started' event marks this attempt; before the worker writes it, the run's start does.
    attempt_at = store.scalar("SELECT max(event_at) FROM run_events WHERE run_id = ? AND kind = 'started'", [run.run_id]) or run.started_at
    ended, first, last = store.query(
        "SELECT count(*), min(created_at), max(created_at) FROM samples WHERE run_id = ? AND step = 'output' AND created_at >= ?",
        [run.run_id, attempt_at],
    )[0] if attempt_at else (0, None, None)
    return Progress(run_total(store, run), int(row[0]), int(row[1]), int(row[2]), int(row[3]), float(row[4]), int(row[5]), row[6], row[7],
                    attempt_at, int(ended), first, last)


def newest_samples(store: Store, run_id: str, limit: int = 8) -> list[dict[str, Any]]:
    cols = ["item_idx", "sample_idx", "step", "condition", "text", "error", "completion_tokens", "latency_ms", "created_at"]
    rows = store.query(f"SELECT {', '.join(cols)} FROM samples WHERE run_id = ? ORDER BY created_at DESC, item_idx DESC LIMIT ?", [run_id, limit])
    return [dict(zip(cols, r, strict=True)) | {"condition": dict(r[3])} for r in rows]


def run_samples(store: Store, run_id: str, step: str | None = "output") -> list[dict[str, Any]]:
    cols = ["sample_key", "item_idx", "sample_idx", "step", "text", "error", "prompt_tokens", "completion_tokens", "latency_ms", "cost_usd"]
    sql = f"SELECT {', '.join(cols)} FROM samples WHERE run_id = ?"
    params: list[Any] = [run_id]
    if step is not None:
        sql += " AND step = ?"
        params.append(step)
    return [dict(zip(cols, r, strict=True)) for r in store.query(sql + " ORDER BY item_idx, sample_idx, step", params)]


def item_trace(store: Store, run_id: str, item_idx: int = 0, sample_idx: int = 0) -> list[dict[str, Any]]:
    """Every row of one item of a run in the order written: each column's prompt and answer."""
    cols = ["step", "column_kind", "messages", "text", "value", "error", "prompt_tokens", "completion_tokens", "latency_ms", "attempts"]
    rows = store.query(f"SELECT {', '.join(cols)} FROM samples WHERE run_id = ? AND item_idx = ? AND sample_idx = ?"
                       " ORDER BY created_at, step", [run_id, item_idx, sample_idx])
    return [dict(zip(cols, r, strict=True)) | {"messages": json.loads(r[2] or "[]")} for r in rows]


def request_timings(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every successful request of a run in the order it ended, with its latency and the time since
    the request that ended before it (None for the first): what a forecast measures speed from."""
    cols = ["item_idx", "sample_idx", "step", "prompt_tokens", "completion_tokens", "latency_ms", "gap_ms", "request"]
    # A column row with no attempt (an expression, a vote's tally, a sample's output row copying a
    # column) was not a request: ``request`` is False there.
    rows = store.query(
        "SELECT item_idx, sample_idx, step, prompt_tokens, completion_tokens, latency_ms,"
        " date_diff('microsecond', lag(created_at) OVER (PARTITION BY column_kind IS NULL OR coalesce(attempts, 1) > 0"
        "  ORDER BY created_at), created_at) / 1000.0,"
        " column_kind IS NULL OR coalesce(attempts, 1) > 0"
        " FROM samples WHERE run_id = ? AND error IS NULL ORDER BY created_at, item_idx, sample_idx",
        [run_id],
    )
    return [dict(zip(cols, r, strict=True)) for r in rows]


def past_request_speeds(store: Store, backend: str, model: str, limit: int = 2000) -> list[tuple[float, float | None, int]]:
    """(latency_ms, gap_ms, completion_tokens) of the newest successful requests of earlier runs on
    this backend and model, leaving out each run's first request (it carries the cold start)."""
    return store.query(
        "SELECT latency_ms, gap_ms, completion_tokens FROM ("
        "  SELECT s.latency_ms, s.completion_tokens, s.created_at,"
        "   date_diff('microsecond', lag(s.created_at) OVER w, s.created_at) / 1000.0 AS gap_ms,"
        "   row_number() OVER w AS n"
        "  FROM samples s JOIN runs r USING (run_id)"
        "  WHERE r.backend = ? AND r.model = ? AND s.error IS NULL AND s.latency_ms > 0 AND s.completion_tokens > 0"
        "  WINDOW w AS (PARTITION BY s.run_id ORDER BY s.created_at))"
        " WHERE n > 1 ORDER BY created_at DESC LIMIT ?",
        [backend, model, limit],
    )


# -- prices ------------------------------------------------------------------------------
PRICES_FILE = DATA_DIR / "prices.yaml"


@dataclass(frozen=True)
class Price:
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float:
        return ((prompt_tokens or 0) * self.input_per_mtok + (completion_tokens or 0) * self.output_per_mtok) / 1e6


@dataclass(frozen=True)
class PriceTable:
    """The shipped defaults: when they were true and where they come from, next to the figures."""

    as_of: str
    source: str
    prices: dict[str, Price]


@functools.cache
def shipped_prices(path: Path = PRICES_FILE) -> PriceTable:
    """data/prices.yaml, read once; a missing or broken file ships no prices (runs still work, and
    a budget then needs a price set by hand) rather than breaking every run."""
    try:
        body = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        prices = {str(m): Price(float(v["input"]), float(v["output"])) for m, v in (body.get("models") or {}).items()}
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError) as exc:
        return PriceTable("unknown", f"nothing: {path.name} could not be read ({exc}).", {})
    return PriceTable(str(body.get("as_of", "")), " ".join(str(body.get("source", "")).split()), prices)


_seeded: weakref.WeakSet[Store] = weakref.WeakSet()


def _seed_prices(store: Store) -> None:
    """Copy a shipped price into the table for each model the table lacks, once per store: a row
    the user set (or edited) is never overwritten."""
    if store in _seeded:
        return
    with store.write() as cur:
        have = {m for (m,) in cur.execute("SELECT model FROM model_prices").fetchall()}
        for model, p in shipped_prices().prices.items():
            if model not in have:
                cur.execute("INSERT INTO model_prices (model, input_per_mtok, output_per_mtok, updated_at) VALUES (?, ?, ?, ?)",
                            [model, p.input_per_mtok, p.output_per_mtok, utc_now()])
    _seeded.add(store)


def get_price(store: Store, model: str) -> Price | None:
    _seed_prices(store)
    rows = store.query("SELECT input_per_mtok, output_per_mtok FROM model_prices WHERE model = ?", [model])
    return Price(*rows[0]) if rows else None


def list_prices(store: Store) -> list[tuple[str, float, float]]:
    _seed_prices(store)
    return store.query("SELECT model, input_per_mtok, output_per_mtok FROM model_prices ORDER BY model")


def set_price(store: Store, model: str, price: Price) -> None:
    """Set one model's price (USD per million tokens), keeping every other row."""
    _seed_prices(store)  # first, so the shipped row cannot come back over this one
    with store.write() as cur:
        cur.execute("DELETE FROM model_prices WHERE model = ?", [model])
        cur.execute("INSERT INTO model_prices (model, input_per_mtok, output_per_mtok, updated_at) VALUES (?, ?, ?, ?)",
                    [model, float(price.input_per_mtok), float(price.output_per_mtok), utc_now()])


def set_prices(store: Store, prices: dict[str, Price]) -> None:
    """Replace the price table with these rows (model -> USD per million tokens)."""
    _seed_prices(store)
    with store.write() as cur:
        cur.execute("DELETE FROM model_prices")
        for model, p in prices.items():
            if model.strip():
                cur.execute("INSERT INTO model_prices (model, input_per_mtok, output_per_mtok, updated_at) VALUES (?, ?, ?, ?)",
                            [model.strip(), float(p.input_per_mtok), float(p.output_per_mtok), utc_now()])
