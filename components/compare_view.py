"""Rendering a comparison: a pipeline's column, group shares, distributions, kept/dropped map.

Texts are untrusted: they go to dataframes and ``st.code`` only; plot labels are escaped.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components.explore_map import map_figure, short_hover


def pipeline_column(comparison, index: int) -> None:
    """Counts, steps with their drops, reasons, flags and notes of one pipeline."""
    r = comparison.results[index]
    name = r.pipeline.name
    c1, c2, c3 = st.columns(3)
    c1.metric("Kept", f"{r.n_kept:,}")
    c2.metric("Dropped", f"{r.n_dropped:,}")
    c3.metric("Kept share", f"{r.n_kept / r.n:.0%}" if r.n else "–")
    steps = comparison.steps[comparison.steps.pipeline == name].drop(columns=["pipeline", "note"])
    st.dataframe(steps, hide_index=True, width="stretch")
    reasons = comparison.reasons[comparison.reasons.pipeline == name].drop(columns=["pipeline"])
    if len(reasons):
        st.caption("Why samples were dropped")
        st.dataframe(reasons, hide_index=True, width="stretch")
    for flag in comparison.flags:
        if flag.pipeline != name:
            continue
        (st.error if flag.level == "wiped_out" else st.warning)(flag.message, icon=":material/flag:")
    for note in r.notes:
        st.info(note)


def group_table(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """One row per group value, the share each pipeline removes side by side."""
    if table.empty:
        return table
    wide = table.pivot_table(index=["group", "value", "n"], columns="pipeline", values="share_removed", sort=False).reset_index()
    cols = ["group", "value", "n", *[n for n in names if n in wide.columns]]
    wide = wide[cols]
    wide.columns = ["dimension", "value", "samples", *[f"{n}: removed" for n in cols[3:]]]
    return wide


def share_columns(frame: pd.DataFrame) -> dict:
    return {c: st.column_config.ProgressColumn(c, format="percent", min_value=0.0, max_value=1.0)
            for c in frame.columns if c.endswith(": removed") or c in ("intended", "generated") or c.startswith("after ")}


def distribution_figure(dist: pd.DataFrame, dimension: str, names: list[str]) -> go.Figure:
    """Grouped bars per value: intended (the plan), generated, and what each pipeline leaves."""
    d = dist[dist.dimension == dimension]
    labels = [html.escape(str(v)) for v in d["value"]]
    fig = go.Figure()
    series = [("intended", "#bbbbbb"), ("generated", "#7f7f7f")] + [(n, None) for n in names]
    for col, colour in series:
        if col in d and not d[col].isna().all():
            fig.add_trace(go.Bar(x=labels, y=d[col].fillna(0), name=html.escape(col), marker_color=colour))
    fig.update_layout(barmode="group", height=260, margin=dict(l=10, r=10, t=30, b=10), title=html.escape(dimension),
                      yaxis=dict(tickformat=".0%"), legend=dict(orientation="h"))
    return fig


def kept_dropped_figure(xy: np.ndarray, texts: list[str], codes: np.ndarray, kept: np.ndarray, title: str) -> go.Figure:
    """The map coloured by kept / the reason a point was dropped."""
    colour = np.where(kept, "kept", np.array([f"dropped: {c}" for c in codes], dtype=object))
    return map_figure(xy, colour, hover=short_hover(texts, colour.tolist()), title=html.escape(title), height=460)


def sample_view(text: str, condition: dict, verdicts: list[tuple[str, str]]) -> None:
    """One sample as plain text, its condition and each pipeline's verdict."""
    if condition:
        st.caption(" · ".join(f"{k} = {v}" for k, v in condition.items()))
    st.code(text or "(empty)", language=None, wrap_lines=True)
    if verdicts:
        st.dataframe(pd.DataFrame(verdicts, columns=["pipeline", "verdict"]), hide_index=True, width="stretch")
