"""Named SQL queries saved from the console (table saved_queries)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def save_query(store: Any, name: str, sql: str, note: str | None = None) -> None:
    """Save (or overwrite) a query under ``name``."""
    name = (name or "").strip()
    if not name:
        raise ValueError("Give the query a name.")
    if not (sql or "").strip():
        raise ValueError("There is no query to save.")
    with store.write() as cur:
        cur.execute(
            "INSERT INTO saved_queries (name, sql, note) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET sql = excluded.sql, note = excluded.note, updated_at = now()",
            [name, sql, note],
        )


def list_saved(store: Any) -> pd.DataFrame:
    return store.query_df("SELECT name, sql, note, updated_at FROM saved_queries ORDER BY name")


def load_query(store: Any, name: str) -> str | None:
    return store.scalar("SELECT sql FROM saved_queries WHERE name = ?", [name])


def delete_query(store: Any, name: str) -> None:
    with store.write() as cur:
        cur.execute("DELETE FROM saved_queries WHERE name = ?", [name])
