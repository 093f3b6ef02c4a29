"""Columns: each sample row is one column's value; its kind and, for structured kinds, the value."""

VERSION = 7
NAME = "columns: kind and structured value of each sample row"

STATEMENTS = [
    # text, structured, judge, candidates, pairwise, expression, or output (the sample's text).
    "ALTER TABLE samples ADD COLUMN column_kind VARCHAR",
    # The validated JSON of a structured, judge or pairwise answer, the list of candidates, or a vote.
    "ALTER TABLE samples ADD COLUMN value JSON",
]
