"""Render helpers for the SQL page: schema browser, result table, charts, import reports, confirmations."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import pandas as pd
import plotly.express as px
import streamlit as st

CHART_KINDS = ("bar", "line", "scatter", "histogram")


def schema_browser(relations: Sequence) -> None:
    """One expander per table or view: what it holds, its row count, its columns and types."""
    for rel in relations:
        count = f" · {rel.row_count:,} row{'' if rel.row_count == 1 else 's'}" if rel.row_count is not None else ""
        with st.expander(f"{rel.name} ({rel.kind}{count})"):
            if rel.description:
                st.caption(rel.description)
            st.dataframe(pd.DataFrame(rel.columns, columns=["column", "type"]), hide_index=True, width="stretch")


def result_table(result, display: pd.DataFrame) -> None:
    st.caption(f"{result.row_count:,} row(s) in {result.elapsed_s * 1000:.0f} ms")
    if result.truncated:
        st.warning(f"Rows were cut: only the first {result.row_count:,} rows are shown. Add a LIMIT or raise the row cap.")
    st.dataframe(display, hide_index=True, width="stretch")


def _safe(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    # Values are untrusted: plotly reads some HTML in labels, so text is escaped before plotting.
    out = df[list(dict.fromkeys(c for c in cols if c))].copy()
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].map(lambda v: v if v is None else html.escape(str(v)))
    return out


def chart_figure(df: pd.DataFrame, kind: str, x: str, y: str | None = None, color: str | None = None):
    """A plotly figure of the chosen columns (y is ignored for histograms)."""
    data = _safe(df, [x, y or "", color or ""])
    if kind == "histogram":
        return px.histogram(data, x=x, color=color or None)
    fn = {"bar": px.bar, "line": px.line, "scatter": px.scatter}[kind]
    return fn(data, x=x, y=y, color=color or None)


def chart_controls(df: pd.DataFrame, key: str):
    """Chart type and columns; returns a figure or None when there is nothing to chart."""
    cols = [str(c) for c in df.columns]
    if df.empty or not cols:
        return None
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(df[c])]
    c1, c2, c3, c4 = st.columns(4)
    kind = c1.selectbox("Chart", CHART_KINDS, key=f"{key}_kind")
    x = c2.selectbox("x", cols, key=f"{key}_x")
    y_options = numeric or cols
    y = None
    if kind != "histogram":
        default_y = next((i for i, c in enumerate(y_options) if c != x), 0)
        y = c3.selectbox("y", y_options, index=default_y, key=f"{key}_y")
    color = c4.selectbox("colour", ["(none)", *cols], key=f"{key}_color")
    return chart_figure(df, kind, x, y, None if color == "(none)" else color)


def import_report(report) -> None:
    if report.n_failed:
        st.warning(f"Imported {report.n_rows:,} rows into “{report.name}”; {report.n_failed:,} row(s) failed "
                   f"and were left out (listed below{' — the first 1,000' if report.n_failed > 1000 else ''}).")
        st.dataframe(report.errors_df, hide_index=True, width="stretch")
    else:
        st.success(f"Imported {report.n_rows:,} rows into “{report.name}” in {report.seconds:.1f} s.")


def confirm_action(label: str, question: str, *, key: str, target: str, on_confirm: Callable[[], None],
                   confirm_label: str = "Yes, delete") -> None:
    """A destructive action in two clicks: ``label`` asks ``question`` about ``target``; the answer
    runs ``on_confirm`` as a callback (so the page that follows already shows the result). Choosing
    another target puts the first button back, so a question never outlives what it was about."""
    pending = f"{key}_pending"
    if st.session_state.get(pending) != target:
        st.button(label, key=key, on_click=_remember, args=(pending, target))
        return
    st.warning(question)
    yes, no = st.columns(2)
    yes.button(confirm_label, type="primary", key=f"{key}_yes", on_click=_confirmed, args=(pending, on_confirm))
    no.button("Cancel", key=f"{key}_no", on_click=_forget, args=(pending,))


def _remember(pending: str, target: str) -> None:
    st.session_state[pending] = target


def _forget(pending: str) -> None:
    st.session_state.pop(pending, None)


def _confirmed(pending: str, on_confirm: Callable[[], None]) -> None:
    _forget(pending)
    on_confirm()
