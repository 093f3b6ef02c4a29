"""Tags on samples: named marks a user puts on a map selection (Explore), queryable with SQL.

One row per (sample, tag): ``SELECT tag, count(*) FROM sample_tags GROUP BY tag``; the views
``samples_full`` and ``samples_wide`` carry each sample's tags as a list column ``tags``.
Dataset rows are not samples and carry no tags.
"""

VERSION = 10
NAME = "curation: tags on samples"

STATEMENTS = [
    """CREATE TABLE sample_tags (
        sample_key VARCHAR NOT NULL,
        tag VARCHAR NOT NULL,
        tagged_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (sample_key, tag)
    )""",
    # Shown by the SQL page's schema browser.
    "COMMENT ON TABLE sample_tags IS 'Tags put on samples from a map selection (Explore): one row per sample and tag.'",
]
