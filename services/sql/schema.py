"""What the database holds: tables and views, their columns, types, row counts and purpose."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.core.sql_text import quote_ident

# One line on what each known table or view holds. Unknown ones show their DuckDB comment.
DESCRIPTIONS: dict[str, str] = {
    "recipe_versions": "Immutable recipe versions: name, version, content hash and the full recipe body (JSON).",
    "plans": "Plans: the materialised list of items for one recipe version and sampling strategy.",
    "plan_items": "Plan items: index, deterministic key, condition (MAP), demo ids and rendered messages.",
    "runs": "Runs: one execution of a plan against one backend, model and parameters, with status.",
    "samples": "Samples: generated texts with full provenance (condition, prompt, model, params, tokens, cost, error).",
    "run_events": "What happened during each run, in words (started, quota, cancelled...).",
    "model_prices": "Price per million input and output tokens, per model.",
    "embeddings": "Embedding cache keyed by (model, hash of the text).",
    "projections": "2-D projections (UMAP/PCA) of a set of items, cached by their parameters.",
    "projection_points": "x, y of each item in a projection.",
    "clusterings": "Clusterings (HDBSCAN) of a projection, with their parameters.",
    "cluster_assignments": "The cluster of each item in a clustering (-1 is noise).",
    "map_points": "View: each point of a clustered map (projection, clustering, item, x, y, cluster).",
    "datasets": "Imported datasets: name, source, purpose, text and attribute columns, row counts.",
    "dataset_rows": "View: rows of imported datasets: text with attributes (MAP).",
    "dataset_row_values": "Stored dataset rows: text and attribute values in the order of datasets.attribute_columns;"
                          " a record that failed to import is kept without text (read dataset_rows or dataset_rows_wide).",
    "saved_queries": "Named SQL queries saved from this console.",
    "schema_migrations": "Applied schema migrations.",
    "samples_full": "View: samples with their run (name, backend, status) and recipe (name, version).",
    "samples_wide": "View: samples_full plus one column per dimension of the condition.",
    "samples_columns": "View: one row per sample with one column per recipe column and per structured field (label, score, ...).",
    "dataset_rows_wide": "View: dataset rows with the dataset's name and one column per attribute.",
    "samples_clusters": "View: each map item's cluster in the newest clustering that holds it.",
    "samples_verdicts": "View: each sample's outcome (kept, decided by, reason) under the newest pipeline applied to its run.",
    "filter_pipelines": "Filter pipelines: immutable versions of an ordered list of curation steps.",
    "filter_applications": "A pipeline applied to a run: samples in and kept.",
    "filter_verdicts": "Verdicts: each step's kept/dropped decision on a sample, with reason and score.",
    "judge_scores": "LLM-as-judge scores cached by (rubric, judge model, text hash).",
    "review_decisions": "The latest human keep/drop decision per sample.",
    "sample_edits": "Edited texts of samples, as new versions (the original stays in samples).",
    "samples_latest": "View: output samples with their newest (edited) text and the original beside it.",
}


@dataclass
class Relation:
    name: str
    kind: str                 # 'table' or 'view'
    description: str
    row_count: int | None     # None for views (counting may run a join)
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, type)


def list_relations(store: Any) -> list[Relation]:
    """Tables and views of the studio's main schema, with columns and row counts for tables."""
    rows = store.query(
        "SELECT table_name, 'table', comment FROM duckdb_tables() WHERE schema_name = 'main' AND NOT internal AND NOT temporary"
        " UNION ALL SELECT view_name, 'view', comment FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal"
        " AND NOT temporary ORDER BY 2, 1"
    )
    cols = store.query(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' ORDER BY table_name, column_index"
    )
    by_table: dict[str, list[tuple[str, str]]] = {}
    for table, col, typ in cols:
        by_table.setdefault(table, []).append((col, typ))
    out = []
    for name, kind, comment in rows:
        count = int(store.scalar(f"SELECT count(*) FROM {quote_ident(name)}")) if kind == "table" else None
        out.append(Relation(name=name, kind=kind, description=DESCRIPTIONS.get(name) or (comment or ""),
                            row_count=count, columns=by_table.get(name, [])))
    return out
