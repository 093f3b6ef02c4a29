"""The Explore map: a plotly scatter (WebGL) with short, escaped hovers and box/lasso selection.

Hovers carry at most ``HOVER_CHARS`` characters of each text, HTML-escaped (plotly renders a
subset of HTML in hover labels, and texts are untrusted); full texts are shown for the selected
points only (a 200-character hover made 50,000 points 10.9 MB per rerun, DESIGN.md section 7).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

HOVER_CHARS = 80
NOISE_COLOUR = "#c8c8c8"
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#e6550d", "#31a354", "#756bb1", "#637939", "#843c39", "#7b4173", "#3182bd", "#fd8d3c", "#74c476",
]
MAX_LEGEND = 30
WEBGL_ABOVE = 5000


def short_hover(texts: Sequence[str], extra: Sequence[str] | None = None, n: int = HOVER_CHARS) -> np.ndarray:
    """Escaped, one-line, shortened hover labels (plus an escaped extra line per point)."""
    out = []
    for i, t in enumerate(texts):
        t = " ".join(str(t or "").split())
        line = html.escape(t[:n] + ("…" if len(t) > n else ""))
        if extra is not None and extra[i]:
            line += "<br>" + html.escape(str(extra[i])[:n])
        out.append(line)
    return np.array(out, dtype=object)


def map_figure(
    xy: np.ndarray,
    colour: Sequence | np.ndarray,
    *,
    numeric: bool = False,
    hover: np.ndarray | None = None,
    title: str = "",
    height: int = 560,
    symbol: Sequence[str] | None = None,
) -> go.Figure:
    """One trace per category (legend = colour key) or one numeric-coloured trace.

    Each point's ``customdata`` is its row number, so a selection maps back to rows whatever the
    trace. ``colour`` values of "noise" are grey.
    """
    xy = np.asarray(xy)
    rows = np.arange(len(xy))
    hover = hover if hover is not None else np.array([""] * len(xy), dtype=object)
    common = dict(mode="markers", hovertemplate="%{text}<extra></extra>")
    fig = go.Figure()
    # SVG up to WEBGL_ABOVE points (crisp, works without a GPU); WebGL beyond (fast at 50,000).
    scatter = go.Scattergl if len(xy) > WEBGL_ABOVE else go.Scatter
    if numeric:
        values = np.asarray(colour, dtype=np.float64)
        fig.add_trace(scatter(
            x=xy[:, 0], y=xy[:, 1], customdata=rows, text=hover, showlegend=False,
            marker=dict(size=5, color=values, colorscale="Viridis", showscale=True, opacity=0.8), **common,
        ))
    else:
        labels = np.asarray([str(c) for c in colour], dtype=object)
        cats = sorted(set(labels.tolist()), key=_category_order)
        if len(cats) > MAX_LEGEND:  # too many to tell apart: the largest keep a colour
            counts = {c: int((labels == c).sum()) for c in cats}
            keep = set(sorted(cats, key=lambda c: -counts[c])[: MAX_LEGEND - 1])
            labels = np.where(np.isin(labels, list(keep)), labels, "other")
            cats = sorted(set(labels.tolist()), key=_category_order)
        for i, cat in enumerate(cats):
            mask = labels == cat
            colour_hex = NOISE_COLOUR if cat in ("noise", "other") else PALETTE[i % len(PALETTE)]
            fig.add_trace(scatter(
                x=xy[mask, 0], y=xy[mask, 1], customdata=rows[mask], text=hover[mask], name=f"{cat} ({int(mask.sum())})",
                marker=dict(size=5, color=colour_hex, opacity=0.8), **common,
            ))
    fig.update_layout(
        title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10), dragmode="lasso",
        xaxis=dict(showticklabels=False, title=None, zeroline=False), yaxis=dict(showticklabels=False, title=None, zeroline=False),
        legend=dict(itemsizing="constant"), showlegend=not numeric,
    )
    return fig


def _category_order(c: str):
    if c in ("noise", "other"):
        return (2, 0, c)
    return (0, int(c), "") if c.lstrip("-").isdigit() else (1, 0, c)


def show_map(fig: go.Figure, key: str) -> list[int]:
    """Render the map with box/lasso selection; returns the selected row numbers."""
    event = st.plotly_chart(fig, key=key, on_select="rerun", selection_mode=("box", "lasso"), width="stretch")
    return selected_rows(event)


def selected_rows(event) -> list[int]:
    """Row numbers (customdata) of the selected points in a plotly_chart selection event."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    rows = []
    for p in points or []:
        cd = p.get("customdata")
        if isinstance(cd, list):
            cd = cd[0] if cd else None
        if cd is not None:
            rows.append(int(cd))
    return sorted(set(rows))


def heatmap_figure(similarity, counts, x_title: str, y_title: str) -> go.Figure:
    """Within-cell mean similarity as colour (hot = collapsed), the count written in each cell;
    empty cells read 'empty'. Takes two pivoted DataFrames with the same index and columns."""
    text = [[("empty" if int(c) == 0 else f"n={int(c)}") for c in row] for row in counts.to_numpy()]
    fig = go.Figure(go.Heatmap(
        z=similarity.to_numpy(dtype=float), x=[html.escape(str(c)) for c in similarity.columns],
        y=[html.escape(str(i)) for i in similarity.index], text=text, texttemplate="%{text}",
        colorscale="YlOrRd", colorbar=dict(title="mean sim"), hoverongaps=True,
        hovertemplate="%{y} × %{x}<br>%{text}<br>mean similarity %{z:.2f}<extra></extra>",
    ))
    fig.update_layout(height=max(260, 60 + 40 * len(similarity.index)), margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title=x_title, type="category"), yaxis=dict(title=y_title, type="category"))
    return fig
