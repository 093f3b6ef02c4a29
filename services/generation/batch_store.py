"""Batch jobs in the store: every SQL string of the ``batches`` table, and the one write of a
batch's results into the run's samples (success wins over an earlier error of the same unit).

No key is ever written here: a batch row holds the provider, its base URL and the remote id.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from services.core.clock import utc_now
from services.core.store import Store
from services.generation.run_store import insert_samples

DONE = ("completed", "ended", "expired")  # results (some or all) can be downloaded
DEAD = ("failed", "cancelled")  # nothing will come back


@dataclass(frozen=True)
class BatchInfo:
    batch_id: str
    run_id: str
    provider: str
    base_url: str | None
    remote_id: str | None
    model: str
    status: str
    custom_ids: list[str]
    n_lines: int
    input_path: str | None
    output_path: str | None
    counts: dict[str, Any]
    imported: int
    failed: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    collected_at: datetime | None

    @property
    def is_open(self) -> bool:
        """Its lines may still come back: not collected, not dead."""
        return self.collected_at is None and self.status not in DEAD


_COLS = ("batch_id, run_id, provider, base_url, remote_id, model, status, custom_ids, n_lines, input_path, output_path,"
         " counts, imported, failed, error, created_at, updated_at, collected_at")


def _batch(row: tuple) -> BatchInfo:
    vals = list(row)
    vals[7] = json.loads(vals[7]) if vals[7] else []
    vals[11] = json.loads(vals[11]) if vals[11] else {}
    return BatchInfo(*vals)


def new_batch_id() -> str:
    return "batch-" + uuid.uuid4().hex[:12]


def create_batch(store: Store, *, batch_id: str, run_id: str, provider: str, base_url: str | None, remote_id: str | None,
                 model: str, status: str, custom_ids: list[str], input_path: str | None = None,
                 output_path: str | None = None) -> BatchInfo:
    now = utc_now()
    with store.write() as cur:
        cur.execute(f"INSERT INTO batches ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, NULL, ?, ?, NULL)",
                    [batch_id, run_id, provider, base_url, remote_id, model, status, json.dumps(custom_ids), len(custom_ids),
                     input_path, output_path, json.dumps({}), now, now])
    return get_batch(store, batch_id)


def get_batch(store: Store, batch_id: str) -> BatchInfo:
    rows = store.query(f"SELECT {_COLS} FROM batches WHERE batch_id = ?", [batch_id])
    if not rows:
        raise KeyError(f"no batch {batch_id}")
    return _batch(rows[0])


def list_batches(store: Store, run_id: str | None = None) -> list[BatchInfo]:
    if run_id is None:
        return [_batch(r) for r in store.query(f"SELECT {_COLS} FROM batches ORDER BY created_at DESC")]
    return [_batch(r) for r in store.query(f"SELECT {_COLS} FROM batches WHERE run_id = ? ORDER BY created_at DESC", [run_id])]


def update_batch(store: Store, batch_id: str, *, status: str | None = None, counts: dict[str, Any] | None = None,
                 error: str | None = None, imported: int | None = None, failed: int | None = None,
                 collected: bool = False, output_path: str | None = None) -> BatchInfo:
    sets, params = ["updated_at = ?", "error = ?"], [utc_now(), error]
    for col, val in (("status", status), ("imported", imported), ("failed", failed), ("output_path", output_path)):
        if val is not None:
            sets.append(f"{col} = ?")
            params.append(val)
    if counts is not None:
        sets.append("counts = ?")
        params.append(json.dumps(counts))
    if collected:
        sets.append("collected_at = ?")
        params.append(utc_now())
    with store.write() as cur:
        cur.execute(f"UPDATE batches SET {', '.join(sets)} WHERE batch_id = ?", [*params, batch_id])
    return get_batch(store, batch_id)


def open_custom_ids(store: Store, run_id: str) -> set[str]:
    """Lines sent in batches of this run that may still come back: never sent (and paid) twice."""
    return {cid for b in list_batches(store, run_id) if b.is_open for cid in b.custom_ids}


def successful_keys(store: Store, run_id: str) -> set[str]:
    return {k for (k,) in store.query("SELECT sample_key FROM samples WHERE run_id = ? AND error IS NULL", [run_id])}


def write_results(store: Store, run_id: str, ok: list[dict[str, Any]], errors: list[dict[str, Any]]) -> None:
    """Successes first replace the error rows of their units (an error row was never a paid
    output), then every row is inserted once: a key already present is left as it is."""
    units = sorted({(r["item_key"], r["sample_idx"]) for r in ok})
    if units and store.scalar("SELECT count(*) FROM samples WHERE run_id = ? AND error IS NOT NULL", [run_id]):
        table = pa.table({"item_key": [u[0] for u in units], "sample_idx": pa.array([u[1] for u in units], pa.int32())})
        with store.write() as cur:
            cur.register("_units_ok", table)
            try:
                cur.execute("DELETE FROM samples WHERE run_id = ? AND error IS NOT NULL AND EXISTS (SELECT 1 FROM _units_ok u"
                            " WHERE u.item_key = samples.item_key AND u.sample_idx = samples.sample_idx)", [run_id])
            finally:
                cur.unregister("_units_ok")
    insert_samples(store, ok)
    # An error whose line has a success by now (this batch's or a later one's) is not written:
    # each error row carries ``_cause``, the custom_id of the line that failed.
    have = successful_keys(store, run_id)
    insert_samples(store, [r for r in errors if r.get("_cause", r["sample_key"]) not in have])
