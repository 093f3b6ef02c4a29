"""Imported datasets: the import form (upload or path, preview, columns) and the list, with delete.

The panel calls the data services itself; the page decides what follows a successful import
(refreshing the SQL views, which the data package may not touch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from components.sql_view import confirm_action, import_report
from services.data.importer import import_dataset, import_roots, import_upload, preview_upload, server_path
from services.data.readers import DatasetImportError, ImportReport, SourcePreview, preview_source
from services.sql.console import display_frame

FILE_TYPES = ["csv", "tsv", "jsonl", "ndjson", "json", "parquet", "arrow"]
PURPOSES = ["audit", "reference", "demonstrations"]
TEXT_NAMES = ("text", "sentence", "content", "output")


def _source(key: str) -> tuple[Any, str]:
    """The uploaded file or the local path the user gave (one of them, or neither yet)."""
    kind = st.radio("Source", ["Upload a file", "Folder or file on this machine"], horizontal=True, key=f"{key}_source")
    if kind == "Upload a file":
        return st.file_uploader("File", type=FILE_TYPES, key=f"{key}_upload"), ""
    roots = import_roots()
    path = st.text_input("Path", key=f"{key}_path", placeholder=f"{roots[0] / 'imports' if roots else '/path'}/file.jsonl")
    st.caption("Only files and folders inside these folders can be imported by path (set `STUDIO_IMPORT_DIRS` to change them): "
               + ", ".join(f"`{r}`" for r in roots) + ". Uploads are not limited.")
    if not path.strip():
        return None, ""
    try:
        return None, str(server_path(path))
    except DatasetImportError as exc:
        st.error(str(exc))
        return None, ""


def _preview(store: Any, upload: Any, path: str, key: str) -> SourcePreview | None:
    """The source's first rows, read once per source (reruns reuse it)."""
    source_key = (upload.file_id if upload is not None else None, path)
    cached = st.session_state.get(f"{key}_preview")
    if cached and cached[0] == source_key:
        return cached[1]
    if upload is None and not path:
        return None
    try:
        preview = preview_upload(store, upload.name, upload.getvalue()) if upload is not None else preview_source(store, path)
    except DatasetImportError as exc:
        st.error(str(exc))
        return None
    st.session_state[f"{key}_preview"] = (source_key, preview)
    return preview


def _run_import(store: Any, upload: Any, path: str, options: dict[str, Any]) -> ImportReport | None:
    bar = st.progress(0.0, text="Importing…")

    def on_progress(done: int, total: int | None) -> None:
        # Until the end, the total is estimated from the bytes read so far: say "about".
        bar.progress(min(1.0, done / total) if total else 0.0,
                     text=f"Imported {done:,} of about {total:,} rows…" if total else f"Importing… {done:,} rows so far")

    try:
        if upload is not None:
            report = import_upload(store, upload.name, upload.getvalue(), progress=on_progress, **options)
        else:
            report = import_dataset(store, path, progress=on_progress, **options)
    except DatasetImportError as exc:
        bar.empty()
        st.error(str(exc))
        if exc.errors:
            st.dataframe([{"line": e.line, "reason": e.reason} for e in exc.errors], hide_index=True)
        return None
    bar.progress(1.0, text="Done")
    import_report(report)
    return report


def import_panel(store: Any, *, key: str) -> ImportReport | None:
    """The whole import form; returns the report of an import that succeeded in this run."""
    upload, path = _source(key)
    preview = _preview(store, upload, path, key)
    if preview is None:
        return None
    st.caption(f"Format: {preview.fmt} · first rows:")
    st.dataframe(display_frame(preview.rows), hide_index=True, width="stretch")
    guess = next((i for i, c in enumerate(preview.columns) if c.lower() in TEXT_NAMES), 0)
    text_col = st.selectbox("Text column", preview.columns, index=guess, key=f"{key}_text")
    attr_cols = st.multiselect("Attribute columns", [c for c in preview.columns if c != text_col], key=f"{key}_attrs")
    name1, name2 = st.columns(2)
    default_name = upload.name.rsplit(".", 1)[0] if upload is not None else path.rstrip("/").rsplit("/", 1)[-1]
    name = name1.text_input("Dataset name", value=default_name, key=f"{key}_name")
    purpose = name2.selectbox("Purpose", PURPOSES, key=f"{key}_purpose")
    if not st.button("Import", type="primary", key=f"{key}_go"):
        return None
    options = dict(text_column=text_col, attribute_columns=attr_cols, name=name, purpose=purpose)
    return _run_import(store, upload, path, options)


def datasets_table(datasets: pd.DataFrame, *, key: str, on_delete: Callable[[str], None]) -> None:
    """The imported datasets; deleting one (its rows go with it) asks first."""
    if datasets.empty:
        return
    st.subheader("Imported datasets")
    st.dataframe(display_frame(datasets), hide_index=True, width="stretch")
    rows = {r.dataset_id: (str(r.name), int(r.n_rows)) for r in datasets.itertuples()}
    pick = st.selectbox("Delete a dataset", list(rows), index=None, placeholder="Choose a dataset to delete",
                        format_func=lambda i: f"{rows[i][0]} · {rows[i][1]:,} rows", key=f"{key}_pick")
    if pick is not None:
        name, n_rows = rows[pick]
        confirm_action("Delete dataset", f"Delete “{name}” and its {n_rows:,} rows? This cannot be undone.",
                       key=f"{key}_delete", target=pick, on_confirm=lambda: on_delete(pick))
