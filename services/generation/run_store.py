"""Runs, samples, run events and model prices in the store: every SQL string of generation.

Timestamps are written from Python in UTC (naive), so durations computed from them agree.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from services.core.clock import utc_now
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
    "attempts": pa.int32(), "created_at": pa.timestamp("us"),
}
_COLS = ", ".join(_SAMPLE_FIELDS)


def insert_samples(store: Store, rows: list[dict[str, Any]]) -> None:
    """Write a batch of sample rows in one transaction; a key already present is left as is."""
    if not rows:
        return
    data = {}
    for name, typ in _SAMPLE_FIELDS.items():
        col = [r.get(name) for r in rows]
        if name == "condition":
            col = [list(c.items()) for c in col]
        data[name] = pa.array(col, typ)
    table = pa.table(data)
    with store.write() as cur:
        cur.register("_samples_in", table)
        try:
            cur.execute(f"INSERT OR IGNORE INTO samples ({_COLS}) SELECT {_COLS} FROM _samples_in")
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

    @property
    def fraction(self) -> float:
        return min(1.0, (self.done + self.failed) / self.total) if self.total else 0.0


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
    return Progress(run_total(store, run), int(row[0]), int(row[1]), int(row[2]), int(row[3]), float(row[4]), int(row[5]), row[6], row[7])


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


# -- prices ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Price:
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float:
        return ((prompt_tokens or 0) * self.input_per_mtok + (completion_tokens or 0) * self.output_per_mtok) / 1e6


def get_price(store: Store, model: str) -> Price | None:
    rows = store.query("SELECT input_per_mtok, output_per_mtok FROM model_prices WHERE model = ?", [model])
    return Price(*rows[0]) if rows else None


def list_prices(store: Store) -> list[tuple[str, float, float]]:
    return store.query("SELECT model, input_per_mtok, output_per_mtok FROM model_prices ORDER BY model")


def set_prices(store: Store, prices: dict[str, Price]) -> None:
    """Replace the price table with these rows (model -> USD per million tokens)."""
    with store.write() as cur:
        cur.execute("DELETE FROM model_prices")
        for model, p in prices.items():
            if model.strip():
                cur.execute("INSERT INTO model_prices (model, input_per_mtok, output_per_mtok, updated_at) VALUES (?, ?, ?, ?)",
                            [model.strip(), float(p.input_per_mtok), float(p.output_per_mtok), utc_now()])
