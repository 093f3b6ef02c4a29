"""Datasets from outside: format readers, staging, import into DuckDB, the catalog."""
