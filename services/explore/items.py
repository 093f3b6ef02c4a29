"""Texts with attributes, from runs or datasets, as one frame for the map and the metrics.

A sample is a text with its condition; a dataset row is a text with its attributes. Both load
as one frame with columns ``id, text, source, run_id`` plus one column per attribute, so the
map, the diversity metrics and the gap finders take either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from services.core.store import Store

BASE_COLUMNS = ("id", "text", "source", "run_id")
# Attribute names that would shadow a base or derived column get a prefix.
_RESERVED = {*BASE_COLUMNS, "length", "cluster", "x", "y", "hover", "text_hash", "covered"}


@dataclass
class ItemSet:
    """Texts with attributes. ``dimensions`` names the attribute columns of ``frame``."""

    frame: pd.DataFrame
    dimensions: list[str] = field(default_factory=list)
    label: str = ""

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def ids(self) -> list[str]:
        return self.frame["id"].tolist()

    @property
    def texts(self) -> list[str]:
        return self.frame["text"].tolist()


def _attr_column(name: str) -> str:
    return f"attr_{name}" if name in _RESERVED else name


def _frame(rows: list[tuple]) -> ItemSet:
    """rows: (id, text, attributes dict, run_id, source)."""
    dims: list[str] = []
    seen: set[str] = set()
    records = []
    for item_id, text, attrs, run_id, source in rows:
        rec = {"id": item_id, "text": text if text is not None else "", "source": source, "run_id": run_id}
        for k, v in (attrs or {}).items():
            col = _attr_column(str(k))
            if col not in seen:
                seen.add(col)
                dims.append(col)
            rec[col] = "" if v is None else str(v)
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=[*BASE_COLUMNS, *dims])
    for d in dims:
        frame[d] = frame[d].fillna("(none)")
    return ItemSet(frame=frame, dimensions=dims)


def list_runs(store: Store) -> pd.DataFrame:
    """Runs that have successful output samples: run_id, name, model, recipe_hash, n_samples."""
    return store.query_df(
        """SELECT r.run_id, coalesce(r.name, r.run_id) AS name, r.model, r.recipe_hash, r.status,
                  count(s.sample_key) AS n_samples, r.created_at
           FROM runs r LEFT JOIN samples s
             ON s.run_id = r.run_id AND s.step = 'output' AND s.error IS NULL
           GROUP BY ALL ORDER BY r.created_at DESC"""
    )


def list_datasets(store: Store) -> pd.DataFrame:
    return store.query_df("SELECT dataset_id, name, purpose, n_rows, created_at FROM datasets ORDER BY created_at DESC")


def load_runs(store: Store, run_ids: list[str]) -> ItemSet:
    """Successful output samples of the given runs (step 'output', no error)."""
    if not run_ids:
        return ItemSet(frame=pd.DataFrame(columns=list(BASE_COLUMNS)))
    rows = store.query(
        """SELECT s.sample_key, s.text, s.condition, s.run_id, 'run:' || coalesce(r.name, s.run_id)
           FROM samples s LEFT JOIN runs r ON r.run_id = s.run_id
           WHERE s.run_id IN (SELECT unnest(?::VARCHAR[])) AND s.step = 'output' AND s.error IS NULL
           ORDER BY s.run_id, s.item_idx, s.sample_idx""",
        [list(run_ids)],
    )
    items = _frame(rows)
    items.label = ", ".join(run_ids)
    return items


def load_dataset(store: Store, dataset_id: str) -> ItemSet:
    """Rows of an imported dataset; ids are ``<dataset_id>:<row_idx>`` (unique across datasets)."""
    rows = store.query(
        """SELECT d.dataset_id || ':' || d.row_idx, d.text, d.attributes, NULL, 'dataset:' || coalesce(ds.name, d.dataset_id)
           FROM dataset_rows d LEFT JOIN datasets ds ON ds.dataset_id = d.dataset_id
           WHERE d.dataset_id = ? ORDER BY d.row_idx""",
        [dataset_id],
    )
    items = _frame(rows)
    items.label = dataset_id
    return items


def combine(*sets: ItemSet) -> ItemSet:
    """One item set from several (e.g. synthetic samples + a reference dataset)."""
    frames = [s.frame for s in sets if len(s.frame)]
    dims: list[str] = []
    for s in sets:
        dims.extend(d for d in s.dimensions if d not in dims)
    if not frames:
        return ItemSet(frame=pd.DataFrame(columns=[*BASE_COLUMNS, *dims]), dimensions=dims)
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.drop_duplicates("id", keep="first").reset_index(drop=True)
    for d in dims:
        frame[d] = frame[d].fillna("(none)")
    return ItemSet(frame=frame, dimensions=dims, label=" + ".join(s.label for s in sets if s.label))


@dataclass
class Checked:
    """An item set ready for the map, plus what was left out and why (in words)."""

    items: ItemSet
    notes: list[str]


def usable(items: ItemSet) -> Checked:
    """Drop empty and whitespace-only texts (they have no meaning to embed); say so."""
    notes: list[str] = []
    f = items.frame
    if not len(f):
        return Checked(items, notes)
    empty = f["text"].fillna("").str.strip() == ""
    if empty.any():
        notes.append(f"{int(empty.sum())} empty text(s) left out of the map and the metrics.")
    kept = f[~empty].reset_index(drop=True)
    long = kept["text"].str.len() > 20_000
    if long.any():
        notes.append(
            f"{int(long.sum())} very long text(s) (over 20,000 characters): the embedder reads only their beginning."
        )
    return Checked(ItemSet(frame=kept, dimensions=items.dimensions, label=items.label), notes)
