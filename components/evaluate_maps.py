"""Evaluate: the same projection for every set, one panel each, so a region one set fills and the
other leaves empty shows at a glance (the other sets' points are drawn grey underneath)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from components.explore_map import add_names
from services.explore.map_view import NOISE_COLOUR, PALETTE, category_order

MAX_PANELS = 4


def set_panels(xy: np.ndarray, masks: dict[str, np.ndarray], colour: np.ndarray, title: str,
               centre_names: Sequence[tuple[float, float, str]] = ()) -> go.Figure:
    """One panel per set on the shared projection; ``centre_names`` (cluster names at their centres, made
    safe by ``cluster_keywords.name_positions``) are drawn in every panel, so a cluster one set
    leaves empty is named where it would be."""
    names = list(masks)[:MAX_PANELS]
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[n[:60] for n in names], shared_xaxes=True, shared_yaxes=True)
    values = sorted({str(v) for v in colour.tolist()}, key=lambda v: (v in ("-1", "noise"), category_order(v)))  # noise last
    colour = np.asarray([str(v) for v in colour.tolist()], dtype=object)
    palette = PALETTE
    shown: set[str] = set()  # one legend entry per value, wherever it first appears
    for c, name in enumerate(names, start=1):
        m = masks[name]
        fig.add_trace(go.Scattergl(x=xy[~m, 0], y=xy[~m, 1], mode="markers", marker={"size": 4, "color": "#dddddd"},
                                   name="other sets", showlegend=c == 1, hoverinfo="skip"), row=1, col=c)
        for i, v in enumerate(values):
            sel = m & (colour == v)
            if sel.any():
                noise = v in ("-1", "noise")
                fig.add_trace(go.Scattergl(x=xy[sel, 0], y=xy[sel, 1], mode="markers", name="noise" if noise else v, legendgroup=v,
                                           marker={"size": 5, "color": NOISE_COLOUR if noise else palette[i % len(palette)]},
                                           showlegend=v not in shown,
                                           hoverinfo="skip"), row=1, col=c)
                shown.add(str(v))
        add_names(fig, centre_names, row=1, col=c)
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 60, "b": 10}, title=title)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def show_panels(fig: go.Figure, n_sets: int) -> None:
    st.plotly_chart(fig, key="evaluate_maps", width="stretch")
    if n_sets > MAX_PANELS:
        st.caption(f"The first {MAX_PANELS} sets are drawn; every set is in the tables below.")
