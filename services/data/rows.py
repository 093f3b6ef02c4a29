"""A dataset's rows as template variables, for recipes that annotate it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.core.errors import StudioError
from services.core.paths import DATA_DIR


class DatasetNotFound(StudioError, LookupError):
    title = "No such dataset"


def annotation_rows(store: Any, name: str, limit: int | None = None) -> list[dict[str, str]]:
    """The rows of the newest dataset called ``name``, in import order: each row's text as ``text``
    and under its column's own name, and its attributes (a value that is missing is left out)."""
    found = store.query("SELECT dataset_id, text_column, attribute_columns FROM datasets WHERE name = ?"
                        " ORDER BY created_at DESC LIMIT 1", [name])
    if not found:
        names = [r[0] for r in store.query("SELECT DISTINCT name FROM datasets ORDER BY name")]
        raise DatasetNotFound(f"no dataset is called '{name}' (imported: {', '.join(names) or 'none'})")
    dataset_id, text_column, keys = found[0]
    # The values follow the dataset's attribute columns; a record that failed to import has no text.
    sql = "SELECT text, attribute_values FROM dataset_row_values WHERE dataset_id = ? AND text IS NOT NULL ORDER BY row_idx"
    params: list[Any] = [dataset_id]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    out = []
    for text, values in store.query(sql, params):
        row = {k: v for k, v in zip(keys, values, strict=True) if v is not None}
        row["text"] = text
        row.setdefault(text_column, text)
        out.append(row)
    return out


def source_rows(store: Any, dataset: str, *, file: str | None = None, text_column: str = "text",
                attribute_columns: list[str] | None = None, limit: int | None = None) -> list[dict[str, str]]:
    """``annotation_rows`` of ``dataset``, importing ``file`` under that name first when no dataset
    has it (a shipped recipe brings its own data)."""
    from services.data.importer import import_dataset

    try:
        return annotation_rows(store, dataset, limit)
    except DatasetNotFound:
        if not file:
            raise
    path = Path(file) if Path(file).is_absolute() else DATA_DIR / file
    import_dataset(store, path, text_column=text_column, attribute_columns=attribute_columns or [], name=dataset,
                   purpose="annotation", source=str(path))
    return annotation_rows(store, dataset, limit)
