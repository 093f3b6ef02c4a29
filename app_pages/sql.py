"""SQL: query everything in the studio's database, read-only; import datasets for audit."""

from __future__ import annotations

import streamlit as st

from components.sql_view import chart_controls, import_report, result_table, schema_browser
from resources import get_store
from services.data.catalog import list_datasets
from services.data.importer import import_dataset, import_upload, preview_upload
from services.data.readers import DatasetImportError, preview_source
from services.sql import saved_query_store as saved_queries
from services.sql.console import (
    DEFAULT_MAX_ROWS,
    DEFAULT_TIMEOUT_S,
    QueryFailed,
    QueryRefused,
    QueryTimeout,
    display_frame,
    run_query,
    to_csv_bytes,
    to_parquet_bytes,
)
from services.sql.example_queries import example_queries
from services.sql.schema import list_relations
from services.sql.views import refresh_views

st.title("SQL")
store = get_store()
refresh_views(store)  # one column per dimension in samples_wide, as of the latest runs and imports

query_tab, import_tab = st.tabs(["Query", "Import a dataset"])

# -- query ---------------------------------------------------------------------------------
with query_tab:
    browse, work = st.columns([1, 3])
    with browse:
        st.subheader("Tables and views")
        schema_browser(list_relations(store))

    with work:
        st.caption("One read-only statement at a time (SELECT, WITH, FROM, DESCRIBE, SUMMARIZE). "
                   "Files, the network and writes are out of reach.")
        examples = example_queries(store)
        saved = saved_queries.list_saved(store)
        start1, start2 = st.columns(2)
        titles = [e.title + ("" if e.available else " (not available yet)") for e in examples]
        picked = start1.selectbox("Example queries", range(len(examples)), format_func=titles.__getitem__,
                                  index=None, placeholder="Start from an example", key="sql_example")
        if picked is not None:
            example = examples[picked]
            if not example.available:
                start1.info(f"{example.title}: {example.reason}.")
            elif start1.button("Use this example", key="sql_use_example"):
                st.session_state["sql_editor"] = example.sql
        if not saved.empty:
            name = start2.selectbox("Saved queries", saved["name"].tolist(), index=None,
                                    placeholder="Open a saved query", key="sql_saved_pick")
            if name and start2.button("Open", key="sql_open_saved"):
                st.session_state["sql_editor"] = saved_queries.load_query(store, name) or ""

        sql = st.text_area("Query", key="sql_editor", height=180,
                           placeholder="SELECT run_id, count(*) FROM samples GROUP BY run_id")
        opt1, opt2, opt3 = st.columns([1, 1, 2], vertical_alignment="bottom")
        max_rows = opt1.number_input("Row cap", 1, 1_000_000, DEFAULT_MAX_ROWS, step=1000, key="sql_max_rows")
        timeout_s = opt2.number_input("Time limit (s)", 0.5, 300.0, DEFAULT_TIMEOUT_S, step=1.0, key="sql_timeout")
        if opt3.button("Run", type="primary", key="sql_run"):
            st.session_state.pop("sql_result", None)
            st.session_state.pop("sql_error", None)
            try:
                st.session_state["sql_result"] = run_query(store, sql, max_rows=int(max_rows), timeout_s=float(timeout_s))
            except QueryTimeout as exc:
                st.session_state["sql_error"] = ("Time limit", str(exc))
            except QueryRefused as exc:
                st.session_state["sql_error"] = ("Refused", str(exc))
            except QueryFailed as exc:
                st.session_state["sql_error"] = ("DuckDB error", str(exc))

        if "sql_error" in st.session_state:
            title, message = st.session_state["sql_error"]
            st.error(f"**{title}**")
            st.code(message, language=None)

        result = st.session_state.get("sql_result")
        if result is not None:
            shown = display_frame(result.df)
            result_table(result, shown)
            down1, down2, _ = st.columns([1, 1, 2])
            down1.download_button("Download CSV", to_csv_bytes(result.df), "query.csv", "text/csv",
                                  key="sql_dl_csv", on_click="ignore")
            down2.download_button("Download Parquet", to_parquet_bytes(result.df), "query.parquet",
                                  "application/vnd.apache.parquet", key="sql_dl_parquet", on_click="ignore")
            with st.expander("Chart", expanded=True):
                figure = chart_controls(shown, key="sql_chart")
                if figure is not None:
                    st.plotly_chart(figure, key="sql_chart_figure")
                else:
                    st.caption("No rows to chart.")

        with st.form("sql_save_form", clear_on_submit=False, border=False):
            save1, save2 = st.columns([3, 1], vertical_alignment="bottom")
            save_name = save1.text_input("Save this query as", key="sql_save_name")
            if save2.form_submit_button("Save query"):
                try:
                    saved_queries.save_query(store, save_name, sql)
                    st.success(f"Saved “{save_name.strip()}”.")
                except ValueError as exc:
                    st.error(str(exc))

# -- import ----------------------------------------------------------------------------------
with import_tab:
    st.caption("Import a dataset for audit, as a reference for coverage, or as demonstrations: CSV, JSONL, "
               "Parquet, or a folder in Hugging Face datasets layout (save_to_disk or Parquet shards). "
               "It can then be mapped on the Explore page and queried here (dataset_rows, dataset_rows_wide).")
    source_kind = st.radio("Source", ["Upload a file", "Folder or file on this machine"], horizontal=True,
                           key="sql_import_source")
    upload = None
    local_path = ""
    if source_kind == "Upload a file":
        upload = st.file_uploader("File", type=["csv", "tsv", "jsonl", "ndjson", "json", "parquet", "arrow"],
                                  key="sql_import_upload")
    else:
        local_path = st.text_input("Path", key="sql_import_path",
                                   placeholder="/path/to/hf_dataset_folder or /path/to/file.jsonl").strip()

    preview = None
    source_key = (upload.file_id if upload is not None else None, local_path)
    cached = st.session_state.get("sql_import_preview")
    if cached and cached[0] == source_key:
        preview = cached[1]
    elif upload is not None or local_path:
        try:
            if upload is not None:
                preview = preview_upload(store, upload.name, upload.getvalue())
            else:
                preview = preview_source(store, local_path)
            st.session_state["sql_import_preview"] = (source_key, preview)
        except DatasetImportError as exc:
            st.error(str(exc))

    if preview is not None:
        st.caption(f"Format: {preview.fmt} · first rows:")
        st.dataframe(display_frame(preview.rows), hide_index=True, width="stretch")
        guess = next((i for i, c in enumerate(preview.columns) if c.lower() in ("text", "sentence", "content", "output")), 0)
        text_col = st.selectbox("Text column", preview.columns, index=guess, key="sql_import_text")
        attr_cols = st.multiselect("Attribute columns", [c for c in preview.columns if c != text_col],
                                   key="sql_import_attrs")
        name1, name2 = st.columns(2)
        default_name = upload.name.rsplit(".", 1)[0] if upload is not None else local_path.rstrip("/").rsplit("/", 1)[-1]
        ds_name = name1.text_input("Dataset name", value=default_name, key="sql_import_name")
        purpose = name2.selectbox("Purpose", ["audit", "reference", "demonstrations"], key="sql_import_purpose")
        if st.button("Import", type="primary", key="sql_import_go"):
            bar = st.progress(0.0, text="Importing…")

            def on_progress(done: int, total: int | None) -> None:
                bar.progress(min(1.0, done / total) if total else 0.0, text=f"Imported {done:,} rows…")

            options = dict(text_column=text_col, attribute_columns=attr_cols, name=ds_name, purpose=purpose,
                           progress=on_progress)
            try:
                if upload is not None:
                    report = import_upload(store, upload.name, upload.getvalue(), **options)
                else:
                    report = import_dataset(store, local_path, **options)
                bar.progress(1.0, text="Done")
                import_report(report)
            except DatasetImportError as exc:
                bar.empty()
                st.error(str(exc))
                if exc.errors:
                    st.dataframe([{"line": e.line, "reason": e.reason} for e in exc.errors], hide_index=True)

    existing = list_datasets(store)
    if not existing.empty:
        st.subheader("Imported datasets")
        st.dataframe(display_frame(existing), hide_index=True, width="stretch")
