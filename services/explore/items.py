"""Texts with attributes, from runs or datasets, as one frame for the map and the metrics.

A sample is a text with its condition; a dataset row is a text with its attributes. Both load
as one frame with columns ``id, text, source, run_id`` plus one column per attribute, so the
map, the diversity metrics and the gap finders take either. A run's samples load with their
latest text (a reviewer's edit, from ``samples_latest``), and everything left out on the way
(failed samples, empty texts, a row selected twice) is counted and said in ``notes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

from services.core.sql_text import quote_ident
from services.core.store import Store

BASE_COLUMNS = ("id", "text", "source", "run_id")
# A dimension whose name is a base column or a "colour by" key of the map (cluster, length…)
# cannot share that column or key: it gets an internal column name, and ``ItemSet.names`` keeps
# the user's name, which is the only one the page shows (a dimension ``length`` reads "length").
_RESERVED = {*BASE_COLUMNS, "cluster", "run", "length", "filter verdict", "coverage", "tag"}
NONE = "(none)"  # the value of a dimension a text does not have (e.g. a baseline run's)


@dataclass
class ItemSet:
    """Texts with attributes. ``dimensions`` names the attribute columns of ``frame``.

    ``names`` maps an internal column to the dimension's own name (only where they differ);
    ``run_names`` gives each run a unique label; ``selected`` counts the texts asked for before
    anything was left out (None: not counted); ``notes`` says what was left out and why.
    """

    frame: pd.DataFrame
    dimensions: list[str] = field(default_factory=list)
    label: str = ""
    names: dict[str, str] = field(default_factory=dict)
    run_names: dict[str, str] = field(default_factory=dict)
    selected: int | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def ids(self) -> list[str]:
        return self.frame["id"].tolist()

    @property
    def texts(self) -> list[str]:
        return self.frame["text"].tolist()

    def name(self, column: str) -> str:
        """The name a user gave the dimension stored in ``column``."""
        return self.names.get(column, column)

    def column(self, name: str) -> str | None:
        """The frame column of the dimension the user named ``name`` (None when absent)."""
        col = next((c for c, n in self.names.items() if n == name), name)
        return col if col in self.dimensions else None


def _attr_column(name: str) -> str:
    return f"attr_{name}" if name in _RESERVED else name


def _frame(rows: list[tuple]) -> ItemSet:
    """rows: (id, text, attributes dict, run_id, source)."""
    dims: list[str] = []
    names: dict[str, str] = {}
    records = []
    for item_id, text, attrs, run_id, source in rows:
        rec = {"id": item_id, "text": text if text is not None else "", "source": source, "run_id": run_id}
        for k, v in (attrs or {}).items():
            col = _attr_column(str(k))
            if col not in names and col not in dims:
                dims.append(col)
                if col != str(k):
                    names[col] = str(k)
            rec[col] = "" if v is None else str(v)
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=[*BASE_COLUMNS, *dims])
    for d in dims:
        frame[d] = frame[d].fillna(NONE)
    return ItemSet(frame=frame, dimensions=dims, names=names, selected=len(frame))


def run_names(runs: pd.DataFrame) -> dict[str, str]:
    """A unique label per run (frame with run_id, name, optional created_at): its name, with its
    start time where two runs share a name, or its id where the times do not tell them apart."""
    names = {r.run_id: str(r.name or r.run_id) for r in runs.itertuples()}
    times = {r.run_id: f"{pd.Timestamp(r.created_at):%Y-%m-%d %H:%M}" for r in runs.itertuples()
             if "created_at" in runs and pd.notna(r.created_at)}
    groups: dict[str, list[str]] = {}
    for rid, name in names.items():
        groups.setdefault(name, []).append(rid)
    out = {}
    for name, ids in groups.items():
        stamps = [times.get(rid) for rid in ids]
        by_time = all(stamps) and len(set(stamps)) == len(ids)
        for rid, stamp in zip(ids, stamps, strict=True):
            out[rid] = name if len(ids) == 1 else f"{name} ({stamp if by_time else rid})"
    return out


def list_runs(store: Store) -> pd.DataFrame:
    """Runs with their successful output samples: run_id, name, model, recipe_hash, status,
    n_samples, item_limit (set for a preview), created_at; newest first."""
    return store.query_df(
        """SELECT r.run_id, coalesce(r.name, r.run_id) AS name, r.model, r.recipe_hash, r.status,
                  count(s.sample_key) AS n_samples, r.item_limit, r.created_at
           FROM runs r LEFT JOIN samples s
             ON s.run_id = r.run_id AND s.step = 'output' AND s.error IS NULL
           GROUP BY ALL ORDER BY r.created_at DESC"""
    )


def list_datasets(store: Store) -> pd.DataFrame:
    return store.query_df("SELECT dataset_id, name, purpose, n_rows, created_at FROM datasets ORDER BY created_at DESC")


def _run_notes(store: Store, run_ids: list[str], labels: dict[str, str]) -> list[str]:
    """Failed samples (no text: not mapped) and edited texts (mapped as edited), per run."""
    rows = store.query(
        """SELECT run_id, count(*) FILTER (WHERE error IS NOT NULL),
                  count(*) FILTER (WHERE error IS NULL AND edit_version > 0)
           FROM samples_latest WHERE run_id IN (SELECT unnest(?::VARCHAR[])) AND step = 'output'
           GROUP BY run_id ORDER BY run_id""",
        [run_ids],
    )
    notes = []
    failed = {labels.get(r, r): n for r, n, _ in rows if n}
    if failed:
        notes.append(f"{sum(failed.values())} failed sample(s) have no text and are not mapped ({_per(failed)}).")
    edited = sum(e for _, _, e in rows)
    if edited:
        notes.append(f"{edited} text(s) were edited by a reviewer: the map and the metrics use the edited texts.")
    return notes


def _per(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items())


def load_runs(store: Store, run_ids: Sequence[str]) -> ItemSet:
    """Successful output samples of the given runs (step 'output', no error), each with its
    latest text: a reviewer's edit replaces the generated text."""
    if not run_ids:
        return ItemSet(frame=pd.DataFrame(columns=list(BASE_COLUMNS)), selected=0)
    ids = list(run_ids)
    labels = run_names(store.query_df(
        "SELECT run_id, coalesce(name, run_id) AS name, created_at FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [ids]))
    rows = store.query(
        """SELECT s.sample_key, s.text, s.condition, s.run_id, s.run_id
           FROM samples_latest s
           WHERE s.run_id IN (SELECT unnest(?::VARCHAR[])) AND s.step = 'output' AND s.error IS NULL
           ORDER BY s.run_id, s.item_idx, s.sample_idx""",
        [ids],
    )
    rows = [(k, t, c, r, "run:" + labels.get(r, r)) for k, t, c, r, _ in rows]
    items = _frame(rows)
    items.run_names = labels
    items.label = ", ".join(labels.get(r, r) for r in ids)
    items.notes = _run_notes(store, ids, labels)
    return items


def load_dataset(store: Store, dataset_id: str) -> ItemSet:
    """Rows of an imported dataset; ids are ``<dataset_id>:<row_idx>`` (unique across datasets).

    One column per attribute, straight from the stored list of values (no Python step per row:
    a million rows load in seconds); a row without a value for it has ``NONE`` there."""
    found = store.query("SELECT name, attribute_columns FROM datasets WHERE dataset_id = ?", [dataset_id])
    name, keys = (found[0][0] or dataset_id, list(found[0][1])) if found else (dataset_id, [])
    dims = [_attr_column(str(k)) for k in keys]
    values = "".join(f", coalesce(attribute_values[{i + 1}], $none) AS {quote_ident(d)}" for i, d in enumerate(dims))
    frame = store.query_df(
        f"SELECT dataset_id || ':' || row_idx AS id, text, $source AS source, NULL::VARCHAR AS run_id{values}"
        " FROM dataset_row_values WHERE dataset_id = $dataset AND text IS NOT NULL ORDER BY row_idx",
        {"source": "dataset:" + name, "dataset": dataset_id, **({"none": NONE} if dims else {})},
    )
    frame = frame.astype({c: "str" for c in frame.columns if c != "run_id"})  # as _frame makes them
    frame["run_id"] = pd.Series([None] * len(frame), dtype=object)
    names = {d: str(k) for d, k in zip(dims, keys, strict=True) if d != str(k)}
    return ItemSet(frame=frame, dimensions=dims, names=names, selected=len(frame), label=dataset_id)


def combine(*sets: ItemSet) -> ItemSet:
    """One item set from several (e.g. synthetic samples + a reference dataset)."""
    frames = [s.frame for s in sets if len(s.frame)]
    dims: list[str] = []
    for s in sets:
        dims.extend(d for d in s.dimensions if d not in dims)
    merged = dict(
        dimensions=dims, label=" + ".join(s.label for s in sets if s.label),
        names={k: v for s in sets for k, v in s.names.items()}, run_names={k: v for s in sets for k, v in s.run_names.items()},
        selected=sum(s.selected if s.selected is not None else len(s) for s in sets), notes=[n for s in sets for n in s.notes],
    )
    if not frames:
        return ItemSet(frame=pd.DataFrame(columns=[*BASE_COLUMNS, *dims]), **merged)
    frame = pd.concat(frames, ignore_index=True)
    twice = frame.duplicated("id", keep="first")
    if twice.any():  # the same sample or row asked for twice: shown once, and said so
        merged["notes"].append(f"{int(twice.sum())} text(s) selected twice (same sample or row) are shown once.")
        frame = frame[~twice].reset_index(drop=True)
    for d in dims:
        frame[d] = frame[d].fillna(NONE)
    return ItemSet(frame=frame, **merged)


@dataclass
class Checked:
    """An item set ready for the map, plus what was left out and why (in words)."""

    items: ItemSet
    notes: list[str]


def _source_counts(sources: pd.Series) -> dict[str, int]:
    return {str(k).split(":", 1)[-1]: int(v) for k, v in sources.value_counts(sort=False).items()}


def usable(items: ItemSet) -> Checked:
    """Drop empty and whitespace-only texts (they have no meaning to embed); say so, per source."""
    notes = list(items.notes)
    f = items.frame
    if not len(f):
        return Checked(replace(items, notes=notes), notes)
    empty = f["text"].fillna("").astype(str).str.strip() == ""
    if empty.any():
        per = _per(_source_counts(f.loc[empty, "source"])) if "source" in f else ""
        notes.append(f"{int(empty.sum())} empty text(s) left out of the map and the metrics" + (f" ({per})." if per else "."))
    kept = f[~empty].reset_index(drop=True)
    long = kept["text"].str.len() > 20_000
    if long.any():
        notes.append(
            f"{int(long.sum())} very long text(s) (over 20,000 characters): the embedder reads only their beginning."
        )
    selected = items.selected if items.selected is not None else len(f)
    return Checked(replace(items, frame=kept, selected=selected, notes=notes), notes)
