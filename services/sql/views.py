"""Views that make SQL over the studio natural, built from what the database holds now.

- ``samples_full``: each sample with its run (name, backend, status), recipe (name, version) and
  ``tags`` (a list, from ``sample_tags``).
- ``samples_wide``: ``samples_full`` plus one column per dimension of the condition.
- ``samples_columns``: one row per sample (run, item, sample index) with one SQL column per
  column of its recipe and one per field of a structured column (judge: ``score``, ``rationale``;
  a field two columns share is prefixed with its column's name), typed from the values held.
- ``dataset_rows_wide``: the columns of ``dataset_rows`` (a view, migration m009) with their
  dataset's name and one column per attribute, read from the stored list of values by the
  attribute's place in its dataset's ``attribute_columns``.
- ``samples_clusters``: each map point's cluster in the newest clustering that holds it
  (only once the Explore tables exist).
- ``samples_verdicts``: each sample's outcome under the newest filter pipeline applied to its
  run (only once the filter tables exist).

The dimension and attribute columns depend on the data, so the views are (re)built here at run
time, from explicit column lists: a view bound to ``*`` breaks in DuckDB when a table gains a
column. ``refresh_views`` is cheap when nothing changed (it compares the SQL it would write
with what it wrote last) and tolerates tables that other features have not created yet.
"""

from __future__ import annotations

import threading
from typing import Any

from services.core.sql_text import quote_ident, quote_literal

_lock = threading.Lock()
_written: dict[tuple[str, str], str] = {}  # (database path, view name) -> SQL last written


def _tables(store: Any) -> set[str]:
    rows = store.query(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT internal "
        "UNION ALL SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal"
    )
    return {r[0] for r in rows}


def _columns(store: Any, table: str) -> list[str]:
    rows = store.query(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? ORDER BY column_index",
        [table],
    )
    return [r[0] for r in rows]


def _pivot_columns(keys: list[str], taken: set[str], source: str, prefix: str) -> list[str]:
    """``source['key'] AS "key"`` per key; a key that would shadow a column gets ``prefix``.
    ``source`` may hold ``{key}`` for an expression of the key itself."""
    out = []
    for key in keys:
        alias = key if key.lower() not in taken else f"{prefix}{key}"
        taken.add(alias.lower())
        expr = source.format(key=quote_literal(key)) if "{key}" in source else f"{source}[{quote_literal(key)}]"
        out.append(f"{expr} AS {quote_ident(alias)}")
    return out


def condition_keys(store: Any) -> list[str]:
    """Every dimension name that appears in a sample's condition, sorted."""
    rows = store.query("SELECT DISTINCT unnest(map_keys(condition)) AS k FROM samples ORDER BY k")
    return [r[0] for r in rows if r[0] is not None]


def attribute_keys(store: Any) -> list[str]:
    """Every attribute column of an imported dataset (recorded per dataset: no scan of the rows)."""
    rows = store.query("SELECT DISTINCT unnest(attribute_columns) AS k FROM datasets ORDER BY k")
    return [r[0] for r in rows if r[0] is not None]


_JSON_TYPES = {"BIGINT": "BIGINT", "UBIGINT": "BIGINT", "DOUBLE": "DOUBLE", "BOOLEAN": "BOOLEAN"}


def column_fields(store: Any) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The column names samples hold (not the single votes ``name#k``), and per structured column
    its top-level fields with their SQL type, from the values themselves."""
    steps = [r[0] for r in store.query("SELECT DISTINCT step FROM samples WHERE step NOT LIKE '%#%' ORDER BY step")]
    rows = store.query(
        "SELECT step, k, list(DISTINCT json_type(value -> k)) FROM ("
        " SELECT step, value, unnest(json_keys(value)) AS k FROM samples"
        " WHERE value IS NOT NULL AND step NOT LIKE '%#%' AND json_type(value) = 'OBJECT')"
        " GROUP BY step, k ORDER BY step, k"
    )
    fields = []
    for step, key, types in rows:
        kinds = {_JSON_TYPES.get(t, "VARCHAR") for t in types if t != "NULL"}
        if kinds == {"BIGINT", "DOUBLE"}:
            kinds = {"DOUBLE"}
        fields.append((step, key, kinds.pop() if len(kinds) == 1 else "VARCHAR"))
    return steps, fields


def _columns_view(store: Any) -> str:
    steps, fields = column_fields(store)
    select = ["s.run_id", "any_value(r.name) AS run_name", "s.item_key", "min(s.item_idx) AS item_idx", "s.sample_idx",
              "any_value(s.condition) AS condition", "bool_or(s.error IS NOT NULL) AS failed"]
    taken = {"run_id", "run_name", "item_key", "item_idx", "sample_idx", "condition", "failed"}
    for step in steps:
        alias = step if step.lower() not in taken else f"col_{step}"
        taken.add(alias.lower())
        select.append(f"max(s.text) FILTER (WHERE s.step = {quote_literal(step)} AND s.error IS NULL) AS {quote_ident(alias)}")
    shared = {k for _, k, _ in fields if sum(1 for _, kk, _ in fields if kk == k) > 1}
    for step, key, typ in fields:
        alias = key if key not in shared and key.lower() not in taken else f"{step}_{key}"
        taken.add(alias.lower())
        expr = f"s.value ->> {quote_literal(key)}"
        if typ != "VARCHAR":
            expr = f"TRY_CAST({expr} AS {typ})"
        select.append(f"max({expr}) FILTER (WHERE s.step = {quote_literal(step)} AND s.error IS NULL) AS {quote_ident(alias)}")
    return ("SELECT " + ", ".join(select) + " FROM samples s LEFT JOIN runs r ON r.run_id = s.run_id"
            " WHERE s.step NOT LIKE '%#%' GROUP BY s.run_id, s.item_key, s.sample_idx")


def view_definitions(store: Any) -> dict[str, str]:
    """The SELECT of each view this database can have now, by view name."""
    tables = _tables(store)
    views: dict[str, str] = {}
    if {"samples", "runs", "recipe_versions"} <= tables:
        sample_cols = _columns(store, "samples")
        select = [f"s.{quote_ident(c)}" for c in sample_cols]
        taken = {c.lower() for c in sample_cols}
        extra = [("name", "run_name", "r"), ("backend", "backend", "r"), ("status", "run_status", "r"),
                 ("name", "recipe_name", "v"), ("version", "recipe_version", "v")]
        for col, alias, src in extra:
            if alias not in taken:
                select.append(f"{src}.{quote_ident(col)} AS {quote_ident(alias)}")
                taken.add(alias)
        if "sample_tags" in tables and "tags" not in taken:  # tags from map selections, as a list
            select.append("(SELECT list(t.tag ORDER BY t.tag) FROM sample_tags t WHERE t.sample_key = s.sample_key) AS tags")
            taken.add("tags")
        base = (
            "SELECT " + ", ".join(select) + " FROM samples s"
            " LEFT JOIN runs r ON r.run_id = s.run_id"
            " LEFT JOIN recipe_versions v ON v.recipe_hash = s.recipe_hash"
        )
        views["samples_full"] = base
        dims = _pivot_columns(condition_keys(store), set(taken), "s.condition", "dim_")
        views["samples_wide"] = base.replace(" FROM samples s", (", " + ", ".join(dims) if dims else "") + " FROM samples s", 1)
        if "value" in taken:  # the columns migration has run
            views["samples_columns"] = _columns_view(store)
    if {"dataset_row_values", "datasets"} <= tables:
        select = ["v.dataset_id", "v.row_idx", "v.dataset_id || ':' || v.row_idx AS row_key", "v.text",
                  "map(ds.attribute_columns, v.attribute_values) AS attributes", "ds.name AS dataset_name"]
        taken = {"dataset_id", "row_idx", "row_key", "text", "attributes", "dataset_name"}
        attrs = _pivot_columns(attribute_keys(store), taken,
                               "v.attribute_values[list_position(ds.attribute_columns, {key})]", "attr_")
        views["dataset_rows_wide"] = (
            "SELECT " + ", ".join(select + attrs) + " FROM dataset_row_values v JOIN datasets ds ON ds.dataset_id = v.dataset_id"
            " WHERE v.text IS NOT NULL"  # a record that failed to import is kept without text
        )
    if {"map_points", "clusterings"} <= tables:
        views["samples_clusters"] = (
            "SELECT item_id, cluster, x, y, clustering_id, projection_id FROM ("
            " SELECT m.*, row_number() OVER (PARTITION BY m.item_id ORDER BY c.created_at DESC, c.clustering_id) AS rn"
            " FROM map_points m JOIN clusterings c ON c.clustering_id = m.clustering_id) WHERE rn = 1"
        )
    if {"filter_verdicts", "filter_applications", "filter_pipelines"} <= tables:
        # A sample's outcome under the newest pipeline applied to its run: its last verdict row
        # (a sample stops at the first step that drops it).
        views["samples_verdicts"] = (
            "SELECT sample_key, run_id, pipeline_hash, pipeline, pipeline_version, kept, step_name AS decided_by,"
            " reason, score FROM ("
            " SELECT v.*, p.name AS pipeline, p.version AS pipeline_version, row_number() OVER ("
            "  PARTITION BY v.sample_key ORDER BY a.applied_at DESC, v.step_idx DESC) AS rn"
            " FROM filter_verdicts v"
            " JOIN filter_applications a ON a.pipeline_hash = v.pipeline_hash AND a.run_id = v.run_id"
            " LEFT JOIN filter_pipelines p ON p.pipeline_hash = v.pipeline_hash) WHERE rn = 1"
        )
    return views


def refresh_views(store: Any) -> list[str]:
    """Create or replace the views whose definition changed; returns their names."""
    changed: list[str] = []
    with _lock:
        definitions = view_definitions(store)
        existing = _tables(store)
        for name, select in definitions.items():
            key = (str(getattr(store, "path", id(store))), name)
            if _written.get(key) == select and name in existing:
                continue
            with store.write() as cur:
                cur.execute(f"CREATE OR REPLACE VIEW {quote_ident(name)} AS {select}")
            _written[key] = select
            changed.append(name)
    return changed
