"""Example queries to start from in the SQL console.

Some read tables that other features create (map clusters, filter verdicts). An example whose
tables do not exist yet is returned with ``available=False`` and the reason, never broken SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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

KEPT_SHARE_PER_FILTER = """-- What share of the samples reaching each filter step it keeps
SELECT p.name AS pipeline, p.version, v.step_idx, v.step_name,
       count(*) AS reached, sum(v.kept::INT) AS kept, round(avg(v.kept::INT), 3) AS kept_share
FROM filter_verdicts v LEFT JOIN filter_pipelines p ON p.pipeline_hash = v.pipeline_hash
GROUP BY ALL
ORDER BY pipeline, p.version, v.step_idx"""

SAMPLES_PER_TAG = """-- Samples per tag (tags are put on map selections on the Explore page), per run
SELECT t.tag, s.run_id, any_value(r.name) AS run_name, count(*) AS samples
FROM sample_tags t JOIN samples s ON s.sample_key = t.sample_key LEFT JOIN runs r ON r.run_id = s.run_id
GROUP BY t.tag, s.run_id
ORDER BY samples DESC, t.tag"""


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
    description = "What share of the samples reaching each filter step it keeps."
    needed = {"filter_verdicts": {"step_idx", "step_name", "kept", "pipeline_hash"}, "filter_pipelines": {"name", "version"}}
    for table, cols in needed.items():
        if not cols <= set(relations.get(table, [])):
            return ExampleQuery(title, description, "", False, f"needs the {table} table (from the filters feature)")
    return ExampleQuery(title, description, KEPT_SHARE_PER_FILTER)


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
        ExampleQuery("Samples per tag", "Tags put on map selections (Explore), per run.", SAMPLES_PER_TAG,
                     "sample_tags" in relations, "" if "sample_tags" in relations else "needs the sample_tags table (tags)"),
    ]
