"""Evaluate: the report's offline sections, each with the sentences that say what it leaves out.

Sample texts are shown in dataframes only (never as HTML): model output is untrusted.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from services.evaluation.report import Report


def figure(memo: dict, key: object, build: Callable[[], go.Figure]) -> go.Figure:
    """A figure built once per report and widget value: building plotly figures is most of a rerun."""
    if key not in memo:
        memo[key] = build()
    return memo[key]


def _notes(lines: list[str]) -> None:
    for line in lines:
        st.caption(line)


def _table(frame: pd.DataFrame | None, empty: str) -> None:
    if frame is None or frame.empty:
        st.caption(empty)
    else:
        st.dataframe(frame, hide_index=True, width="stretch")


def diversity_section(r: Report) -> None:
    st.subheader("Diversity")
    st.caption(f"Median and 95% interval per set; the 'difference' columns compare each set with the first ({r.baseline}) "
               "and name a difference only where the intervals do not overlap.")
    _table(r.diversity_table, "No set has two or more texts.")
    _notes(r.notes["diversity"])


def coverage_section(r: Report, memo: dict) -> None:
    st.subheader("Coverage")
    _table(r.coverage.summary, "Nothing to count.")
    _notes(r.coverage.notes)
    if not r.coverage.shares.empty:
        dims = list(dict.fromkeys(r.coverage.shares["dimension"]))
        dim = st.selectbox("Shares of", dims, key="evaluate_share_dim")
        st.plotly_chart(figure(memo, ("shares", dim), lambda: _shares(r, dim)), key="evaluate_shares", width="stretch")
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Empty cells** (another set fills them)")
        _table(r.coverage.empty, "None.")
    with c2:
        st.markdown("**Collapsed cells** (texts nearly alike)")
        _table(r.coverage.collapsed, "None.")


def _shares(r: Report, dim: str) -> go.Figure:
    s = r.coverage.shares[r.coverage.shares["dimension"] == dim]
    fig = go.Figure([go.Bar(x=g["value"], y=g["share"], name=name[:50]) for name, g in s.groupby("set", sort=False)])
    fig.update_layout(barmode="group", height=300, margin={"t": 20, "b": 10}, yaxis_title="share of the set's texts")
    return fig


def cost_section(r: Report) -> None:
    st.subheader("Cost")
    frame = r.cost
    if frame is not None and not frame.empty:  # readable precision; the report's export keeps full figures
        frame = frame.round({"seconds": 1, "tokens / kept": 1, "seconds / kept": 2, "dollars": 6, "dollars / kept": 8})
    _table(frame, "No run in the comparison.")
    _notes(r.notes["cost"])


def _faith(f: pd.DataFrame) -> go.Figure:
    fig = go.Figure([go.Bar(x=g["dimension"], y=g["accuracy"], name=name[:50], customdata=g["chance"],
                            hovertemplate="accuracy %{y:.2f}<br>chance %{customdata:.2f}<extra></extra>")
                     for name, g in f.groupby("set", sort=False)])
    for name, g in f.groupby("set", sort=False):
        fig.add_trace(go.Scatter(x=g["dimension"], y=g["chance"], mode="markers", marker={"symbol": "line-ew-open", "size": 18},
                                 name=f"chance · {name[:30]}", showlegend=False, hoverinfo="skip"))
    fig.update_layout(barmode="group", height=320, margin={"t": 20, "b": 10}, yaxis={"range": [0, 1], "title": "accuracy"})
    return fig


def faithfulness_section(r: Report, memo: dict) -> None:
    st.subheader("Faithfulness by an embedding classifier")
    st.caption("For each condition dimension, a logistic regression on the embeddings predicts the requested value "
               "(5-fold cross-validation: no sample is predicted by a model that saw it). Chance: always the commonest value.")
    f = r.faithfulness
    if f.empty:
        st.caption("No dimension could be probed.")
    else:
        st.plotly_chart(figure(memo, "faith", lambda: _faith(f)), key="evaluate_faith", width="stretch")
        _table(f, "")
    st.markdown("**Worst cells**, with one sample the classifier read as another value")
    _table(r.worst_cells.head(12), "None.")
    _notes(r.notes["faithfulness"])


def echo_section(r: Report) -> None:
    st.subheader("Prompt echo")
    _table(r.echo, "Datasets have no prompt to echo.")
    if not r.echo_examples.empty:
        _table(r.echo_examples, "")
    _notes(r.notes["echo"])


def label_section(r: Report) -> None:
    st.subheader("Label noise: review queue")
    st.caption("Samples whose requested label a cross-validated classifier confidently disagrees with (cleanlab's confident "
               "learning), least confident first. The 'label disagreement' filter step on Compare Filters drops them.")
    _table(r.label_queue, "No doubtful label found." if r.label_dimension else "Choose a label dimension.")
    _notes(r.notes["labels"])


def _curve(table: pd.DataFrame, metric: str) -> go.Figure:
    fig = go.Figure([go.Scatter(x=g["n_train"], y=g[metric], mode="lines+markers", name=name[:50])
                     for name, g in table.groupby("run", sort=False)])
    fig.update_layout(height=320, margin={"t": 20, "b": 10}, xaxis={"type": "log", "title": "synthetic samples trained on"},
                      yaxis={"title": metric, "range": [0, 1]})
    return fig


def tstr_section(r: Report, memo: dict) -> None:
    st.subheader("Train on synthetic, test on real")
    c = r.tstr
    if c is None or c.table.empty:
        st.caption("No learning curve.")
    else:
        st.caption(f"A classifier per run, trained on its samples' embeddings and requested {r.label_dimension}, tested on "
                   f"{c.test_size} real texts it never saw; each point is the mean of 3 random subsets of that size.")
        metric = st.radio("Metric", ["macro_f1", "accuracy"], horizontal=True, key="evaluate_tstr_metric")
        st.plotly_chart(figure(memo, ("tstr", metric), lambda: _curve(c.table, metric)), key="evaluate_tstr", width="stretch")
    _notes(r.notes["tstr"])
