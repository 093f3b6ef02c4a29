"""SQL: query everything in the studio's database, read-only; import datasets for audit."""

from __future__ import annotations

from functools import partial

import streamlit as st

from components.dataset_import import datasets_table, import_panel
from components.flash import flash, show_flash
from components.sql_view import chart_controls, confirm_action, result_table, schema_browser
from resources import get_store
from services.data.catalog import delete_dataset, list_datasets
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


def _delete_query(name: str) -> None:
    saved_queries.delete_query(store, name)
    st.session_state.pop("sql_saved_pick", None)
    flash("sql_query_flash", "success", f"Deleted the saved query “{name}”.")


def _delete_dataset(dataset_id: str) -> None:
    delete_dataset(store, dataset_id)
    refresh_views(store)  # its attribute columns leave dataset_rows_wide
    st.session_state.pop("sql_dataset_pick", None)
    flash("sql_dataset_flash", "success", "Deleted the dataset and its rows.")


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
        with start2:
            show_flash("sql_query_flash")
            if not saved.empty:
                name = st.selectbox("Saved queries", saved["name"].tolist(), index=None,
                                    placeholder="Open a saved query", key="sql_saved_pick")
                if name:
                    if st.button("Open", key="sql_open_saved"):
                        st.session_state["sql_editor"] = saved_queries.load_query(store, name) or ""
                    confirm_action("Delete", f"Delete the saved query “{name}”?", key="sql_saved_delete", target=name,
                                   on_confirm=partial(_delete_query, name))

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
    if import_panel(store, key="sql_import") is not None:
        refresh_views(store)  # new attribute columns in dataset_rows_wide; the data package leaves views alone
    show_flash("sql_dataset_flash")
    datasets_table(list_datasets(store), key="sql_dataset", on_delete=_delete_dataset)
