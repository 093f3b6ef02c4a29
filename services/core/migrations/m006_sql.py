"""The SQL console's saved queries.

The console's views (samples with one column per dimension, samples with their run and recipe)
are built by services/sql_views.py at run time rather than here: they depend on which
dimensions exist and on tables other features add later, and DuckDB views bound to ``*``
break when a table gains a column.
"""

VERSION = 6
NAME = "sql console: saved queries"

STATEMENTS = [
    """CREATE TABLE saved_queries (
        name VARCHAR PRIMARY KEY,
        sql VARCHAR NOT NULL,
        note VARCHAR,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    )""",
]
