"""Dataset rows: a JSONL or CSV record that fails to import is kept without text.

The import numbers records by their place in a stage DuckDB fills in parallel, then copies the
whole stage: leaving the failed records out of that copy made DuckDB re-pack the rows it writes
in order, a third of the import's time. So a failed record stays in ``dataset_row_values`` with
``text`` NULL, and ``dataset_rows`` (like ``dataset_rows_wide`` and every reader in the services)
leaves it out; ``datasets.n_rows`` and ``n_failed`` count rows with text and failed records.
"""

VERSION = 11
NAME = "datasets: failed records kept without text; dataset_rows leaves them out"

STATEMENTS = [
    """CREATE OR REPLACE VIEW dataset_rows AS
       SELECT v.dataset_id, v.row_idx, v.dataset_id || ':' || v.row_idx AS row_key, v.text,
              map(ds.attribute_columns, v.attribute_values) AS attributes
       FROM dataset_row_values v JOIN datasets ds ON ds.dataset_id = v.dataset_id
       WHERE v.text IS NOT NULL""",
    "COMMENT ON TABLE dataset_row_values IS 'Stored rows of imported datasets: text and attribute values in the order of"
    " datasets.attribute_columns; a record that failed to import is kept without text. Read dataset_rows or"
    " dataset_rows_wide.'",
]
