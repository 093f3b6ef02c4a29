"""The real labelled texts that runs are tested against: the shipped demo reference (Yelp labelled
sentences, data/demo/reference/README.md is its data card) or an imported dataset's label column."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from services.core.paths import DATA_DIR
from services.core.store import Store

REFERENCE_DIR = DATA_DIR / "demo" / "reference"
SHIPPED_ID = "shipped:yelp_labelled"
SHIPPED_NAME = "Yelp labelled sentences (UCI, CC BY 4.0)"


@dataclass
class Reference:
    """Real texts with a label each; ``notes`` say what was left out and why."""

    name: str
    texts: list[str]
    labels: list[str]
    notes: list[str] = field(default_factory=list)


def shipped_reference(directory: Path = REFERENCE_DIR) -> Reference:
    frame = pd.read_csv(directory / "yelp_labelled.tsv", sep="\t", keep_default_na=False, dtype=str)
    return Reference(SHIPPED_NAME, frame["text"].tolist(), frame["label"].tolist())


def load_shipped_embeddings(store: Store, directory: Path = REFERENCE_DIR) -> int:
    """Copy the shipped reference vectors into the embedding cache (idempotent); returns rows added."""
    path = directory / "embeddings.parquet"
    if not path.exists():
        return 0
    table = pq.read_table(path)
    with store.write() as cur:
        before = cur.execute("SELECT count(*) FROM embeddings").fetchall()[0][0]
        cur.register("_ref_vectors", table)
        try:
            cur.execute("INSERT INTO embeddings (model, text_hash, dim, vector) SELECT model, text_hash, dim, vector::FLOAT[]"
                        " FROM _ref_vectors ON CONFLICT DO NOTHING")
        finally:
            cur.unregister("_ref_vectors")
        return cur.execute("SELECT count(*) FROM embeddings").fetchall()[0][0] - before


def dataset_reference(store: Store, dataset_id: str, label_column: str | None) -> Reference:
    """An imported dataset's rows with a non-empty ``label_column`` attribute."""
    from services.explore.items import load_dataset

    items = load_dataset(store, dataset_id)
    name = str(items.frame["source"].iloc[0]).split(":", 1)[-1] if len(items) else dataset_id
    col = items.column(label_column) if label_column else None
    if col is None:
        have = ", ".join(items.name(d) for d in items.dimensions) or "none"
        return Reference(name, [], [], [f"the dataset {name} has no label column {label_column!r} (its columns: {have})."])
    f = items.frame
    ok = (f[col].astype(str).str.strip() != "") & (f[col] != "(none)") & (f["text"].astype(str).str.strip() != "")
    notes = [f"{int((~ok).sum())} row(s) of {name} without a text or a label were left out."] if (~ok).any() else []
    return Reference(name, f.loc[ok, "text"].tolist(), f.loc[ok, col].astype(str).tolist(), notes)
