"""Datasets imported for audit, as a coverage reference, or as demonstrations.

Shared contract: a dataset row is a text with attributes, like a sample is a text with its
condition, so the map, metrics and filters take either.
"""

VERSION = 4
NAME = "datasets: imported texts with attributes"

STATEMENTS = [
    """CREATE TABLE datasets (
        dataset_id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        source VARCHAR,
        purpose VARCHAR NOT NULL DEFAULT 'audit',
        text_column VARCHAR NOT NULL,
        attribute_columns VARCHAR[] NOT NULL,
        n_rows INTEGER NOT NULL DEFAULT 0,
        n_failed INTEGER NOT NULL DEFAULT 0,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    )""",
    """CREATE TABLE dataset_rows (
        dataset_id VARCHAR NOT NULL,
        row_idx INTEGER NOT NULL,
        row_key VARCHAR NOT NULL,
        text VARCHAR,
        attributes MAP(VARCHAR, VARCHAR) NOT NULL
    )""",
    # No primary key: the importer numbers rows itself inside one transaction, and keeping an
    # index up to date doubled the cost of importing 100,000 rows (bench/import_jsonl.py).
]
