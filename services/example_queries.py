"""Example queries to start from in the SQL console.

Some read tables that other features create (map clusters, filter verdicts). An example whose
tables do not exist yet is returned with ``available=False`` and the reason, never broken SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.sql_views import quote_ident


@dataclass(frozen=True)
class ExampleQuery:
    title: str
    description: str
    sql: str
    available: bool = True
    reason: str = ""


SAMPLES_PER_CONDITION_VALUE = """-- How many samples each value of each dimension produced
SELECT dim AS dimension, condition[dim] AS value, count(*) AS samples
FROM (SELECT condition, unnest(map_keys(condition)) AS dim FROM samples WHERE step = 'output')
GROUP BY ALL
ORDER BY dimension, samples DESC"""

AVERAGE_LENGTH_PER_RUN = """-- Length of the generated texts per run
SELECT s.run_id, any_value(r.name) AS run_name, count(*) AS samples,
       round(avg(length(s.text)), 1) AS avg_chars,
       round(avg(length(string_split(s.text, ' '))), 1) AS avg_words,
       min(length(s.text)) AS min_chars, max(length(s.text)) AS max_chars
FROM samples s LEFT JOIN runs r ON r.run_id = s.run_id
WHERE s.text IS NOT NULL AND s.error IS NULL
GROUP BY s.run_id
ORDER BY s.run_id"""

TOKENS_AND_COST_PER_RUN = """-- Tokens, cost, latency and errors per run
SELECT s.run_id, any_value(r.name) AS run_name, any_value(s.model) AS model, count(*) AS samples,
       sum(s.prompt_tokens) AS prompt_tokens, sum(s.completion_tokens) AS completion_tokens,
       round(sum(s.cost_usd), 4) AS cost_usd, round(avg(s.latency_ms)) AS avg_latency_ms,
       count(s.error) AS errors
FROM samples s LEFT JOIN runs r ON r.run_id = s.run_id
GROUP BY s.run_id
ORDER BY s.run_id"""

CLUSTERS_PER_CONDITION_VALUE = """-- How many map clusters each condition value spreads over (few clusters: possible collapse)
SELECT dim AS dimension, condition[dim] AS value,
       count(DISTINCT cluster) FILTER (WHERE cluster >= 0) AS clusters,
       count(*) AS points, round(avg((cluster < 0)::INT), 3) AS noise_share
FROM (SELECT s.condition, c.cluster, unnest(map_keys(s.condition)) AS dim
      FROM samples s JOIN samples_clusters c ON c.item_id = s.sample_key)
GROUP BY ALL
ORDER BY dimension, clusters"""

DATASET_ROWS_PER_ATTRIBUTE_VALUE = """-- Imported dataset rows per attribute value
SELECT ds.name AS dataset, attr AS attribute, d.attributes[attr] AS value, count(*) AS rows
FROM (SELECT dataset_id, attributes, unnest(map_keys(attributes)) AS attr FROM dataset_rows) d
JOIN datasets ds ON ds.dataset_id = d.dataset_id
GROUP BY ALL
ORDER BY dataset, attribute, rows DESC"""

DUPLICATE_TEXTS = """-- Texts generated more than once (exact duplicates)
SELECT text, count(*) AS copies, count(DISTINCT run_id) AS runs
FROM samples
WHERE text IS NOT NULL AND step = 'output'
GROUP BY text HAVING count(*) > 1
ORDER BY copies DESC
LIMIT 100"""

# The column that names a filter in a verdicts table, in order of preference.
_FILTER_COLUMNS = ("filter", "filter_name", "step", "step_name", "filter_id", "pipeline", "pipeline_id")


def _relations(store: Any) -> dict[str, list[str]]:
    rows = store.query(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main' ORDER BY table_name, column_index"
    )
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def _kept_share(relations: dict[str, list[str]]) -> ExampleQuery:
    title = "Kept share per filter"
    description = "What share of the samples each filter keeps."
    cols = relations.get("verdicts")
    if cols is None:
        return ExampleQuery(title, description, "", False, "needs the verdicts table (filters have not run here yet)")
    group = next((c for c in _FILTER_COLUMNS if c in cols), None)
    if "kept" not in cols or group is None:
        return ExampleQuery(title, description, "", False, "the verdicts table has no kept/filter columns to group by")
    g = quote_ident(group)
    sql = (f"-- {description}\nSELECT {g}, count(*) AS verdicts, sum(kept::INT) AS kept,\n"
           f"       round(avg(kept::INT), 3) AS kept_share\nFROM verdicts\nGROUP BY {g}\nORDER BY kept_share")
    return ExampleQuery(title, description, sql)


def example_queries(store: Any) -> list[ExampleQuery]:
    """All example queries; those whose tables are missing have available=False and a reason."""
    relations = _relations(store)
    has_clusters = "samples_clusters" in relations
    return [
        ExampleQuery("Samples per condition value", "How many samples each value of each dimension produced.",
                     SAMPLES_PER_CONDITION_VALUE),
        ExampleQuery("Average length per run", "Characters and words of the generated texts, per run.",
                     AVERAGE_LENGTH_PER_RUN),
        ExampleQuery("Tokens and cost per run", "Prompt and completion tokens, cost, latency and errors per run.",
                     TOKENS_AND_COST_PER_RUN),
        ExampleQuery("Clusters per condition value", "How many map clusters each condition value spreads over.",
                     CLUSTERS_PER_CONDITION_VALUE if has_clusters else "", has_clusters,
                     "" if has_clusters else "needs a map: build one on the Explore page first"),
        _kept_share(relations),
        ExampleQuery("Dataset rows per attribute value", "Rows of imported datasets per attribute value.",
                     DATASET_ROWS_PER_ATTRIBUTE_VALUE),
        ExampleQuery("Duplicate texts", "Exact duplicate outputs across runs.", DUPLICATE_TEXTS),
    ]
