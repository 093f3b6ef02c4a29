"""The catalog of imported datasets: list them, delete one (its rows go with it)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def list_datasets(store: Any) -> pd.DataFrame:
    return store.query_df(
        "SELECT dataset_id, name, purpose, n_rows, n_failed, text_column, attribute_columns, source, created_at"
        " FROM datasets ORDER BY created_at DESC"
    )


def delete_dataset(store: Any, dataset_id: str) -> None:
    with store.write() as cur:
        cur.execute("DELETE FROM dataset_row_values WHERE dataset_id = ?", [dataset_id])
        cur.execute("DELETE FROM datasets WHERE dataset_id = ?", [dataset_id])
