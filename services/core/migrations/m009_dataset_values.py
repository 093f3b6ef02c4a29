"""Dataset rows store their attribute values as a list; the keys are kept once, per dataset.

A ``MAP`` per row made the attributes most of an import's cost (a million rows imported at 3×
DuckDB's own ``read_json``; without it 1.3×): the keys were written again on every row. Rows now
go to ``dataset_row_values(dataset_id, row_idx, text, attribute_values VARCHAR[])``, whose values
follow ``datasets.attribute_columns``, and ``dataset_rows`` becomes a view with the same columns as
the table it replaces (``row_key``, ``attributes`` MAP rebuilt from the keys), so SQL such as
``attributes['label']`` keeps working.

Existing rows are converted: a key that a row holds beyond its dataset's ``attribute_columns`` is
added to them (sorted), and rows whose dataset is not recorded get a dataset named by its id.
"""

VERSION = 9
NAME = "datasets: attribute values as a list, keys per dataset; dataset_rows becomes a view"

STATEMENTS = [
    """INSERT INTO datasets (dataset_id, name, purpose, text_column, attribute_columns, n_rows)
       SELECT d.dataset_id, d.dataset_id, 'audit', 'text', [], count(*) FROM dataset_rows d
       WHERE d.dataset_id NOT IN (SELECT dataset_id FROM datasets) GROUP BY d.dataset_id""",
    """UPDATE datasets SET attribute_columns = list_concat(datasets.attribute_columns, e.extra)
       FROM (SELECT x.dataset_id, list_sort(list_distinct(list(x.k))) AS extra
             FROM (SELECT dataset_id, unnest(map_keys(attributes)) AS k FROM dataset_rows) x
             JOIN datasets ds ON ds.dataset_id = x.dataset_id
             WHERE NOT list_contains(ds.attribute_columns, x.k) GROUP BY x.dataset_id) e
       WHERE datasets.dataset_id = e.dataset_id""",
    """CREATE TABLE dataset_row_values (
        dataset_id VARCHAR NOT NULL,
        row_idx INTEGER NOT NULL,
        text VARCHAR,
        attribute_values VARCHAR[] NOT NULL
    )""",
    # No primary key, as before: keeping an index up to date doubled the cost of an import.
    """INSERT INTO dataset_row_values
       SELECT d.dataset_id, d.row_idx, d.text, list_transform(ds.attribute_columns, lambda k: d.attributes[k])
       FROM dataset_rows d JOIN datasets ds ON ds.dataset_id = d.dataset_id
       ORDER BY d.dataset_id, d.row_idx""",
    "DROP VIEW IF EXISTS dataset_rows_wide",  # read the table; rebuilt by services.sql.views
    "DROP TABLE dataset_rows",
    """CREATE VIEW dataset_rows AS
       SELECT v.dataset_id, v.row_idx, v.dataset_id || ':' || v.row_idx AS row_key, v.text,
              map(ds.attribute_columns, v.attribute_values) AS attributes
       FROM dataset_row_values v JOIN datasets ds ON ds.dataset_id = v.dataset_id""",
    "COMMENT ON TABLE dataset_row_values IS 'Stored rows of imported datasets: text and attribute values in the order of"
    " datasets.attribute_columns. Read dataset_rows or dataset_rows_wide.'",
]
