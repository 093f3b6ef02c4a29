"""The Explore map: a plotly scatter (WebGL when large) with escaped hovers and box/lasso selection.

Colours, legend order and hover labels are decided in services.explore.map_view; this module
only draws them. Full texts are shown for the selected points only (a 200-character hover made
50,000 points 10.9 MB per rerun, DESIGN.md section 7).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from services.explore import map_view
from services.explore.items import ItemSet
from services.explore.map_view import Colouring

WEBGL_ABOVE = 5000
SELECTION_ROWS = 1000  # rows of a selection listed under the map (each carries its full text)
SELECTION_IDS = 20  # ids of a selection written out above its table
short_hover = map_view.hover_labels  # the name other pages' components import


def map_figure(
    xy: np.ndarray,
    colour: Colouring | Sequence | np.ndarray,
    *,
    numeric: bool = False,
    hover: np.ndarray | None = None,
    title: str = "",
    height: int = 560,
    rows: np.ndarray | None = None,
    names: Sequence[tuple[float, float, str]] = (),
) -> go.Figure:
    """One trace per category (legend = colour key) or one numeric-coloured trace.

    Each point's ``customdata`` is its row number, so a selection maps back to rows whatever the
    trace. ``colour`` is a ``Colouring`` or raw values (categories unless ``numeric``). ``rows``
    draws only those rows (a thinned map); the legend still counts every point. Without
    ``hover`` the points carry no text at all (the hover names the point's group and number).
    ``names``: (x, y, text) drawn at cluster centres (texts made safe by
    ``cluster_keywords.name_positions``).
    """
    c = colour if isinstance(colour, Colouring) else map_view.colouring(colour, numeric=numeric)
    xy = np.asarray(xy, dtype=np.float32)
    drawn = np.arange(len(xy), dtype=np.int32) if rows is None else np.asarray(rows, dtype=np.int32)
    if hover is not None:
        common = dict(mode="markers", hovertemplate="%{text}<extra></extra>")
        text = lambda sel: hover[sel]  # noqa: E731
    else:  # texts are fetched for the selected or clicked points only
        common = dict(mode="markers", hovertemplate="point %{customdata}")
        text = lambda sel: None  # noqa: E731
    size = 5 if len(drawn) <= WEBGL_ABOVE * 4 else 3
    fig = go.Figure()
    # SVG up to WEBGL_ABOVE points (crisp, works without a GPU); WebGL beyond (fast at 100,000).
    scatter = go.Scattergl if len(drawn) > WEBGL_ABOVE else go.Scatter
    if c.numeric:
        fig.add_trace(scatter(
            x=xy[drawn, 0], y=xy[drawn, 1], customdata=drawn, text=text(drawn), showlegend=False, name="",
            marker=dict(size=size, color=c.values[drawn], colorscale="Viridis", showscale=True, opacity=0.8), **common,
        ))
    else:
        codes = c.codes if c.codes is not None else np.asarray(pd.Categorical(c.values, categories=list(c.categories)).codes)
        counts = np.bincount(codes[codes >= 0], minlength=len(c.categories))
        by_code = drawn[np.argsort(codes[drawn], kind="stable")]
        bounds = np.searchsorted(codes[by_code], np.arange(len(c.categories) + 1))
        for k, (cat, colour_hex) in enumerate(zip(c.categories, c.colours(), strict=True)):
            sel = by_code[bounds[k] : bounds[k + 1]]
            fig.add_trace(scatter(
                x=xy[sel, 0], y=xy[sel, 1], customdata=sel, text=text(sel), name=f"{cat} ({int(counts[k])})",
                marker=dict(size=size, color=colour_hex, opacity=0.8), **common,
            ))
    fig.update_layout(
        title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10), dragmode="lasso",
        xaxis=dict(showticklabels=False, title=None, zeroline=False), yaxis=dict(showticklabels=False, title=None, zeroline=False),
        legend=dict(itemsizing="constant"), showlegend=not c.numeric,
    )
    add_names(fig, names)
    return fig


def add_names(fig: go.Figure, names: Sequence[tuple[float, float, str]], **where) -> None:
    """Cluster names as annotations inside the plot (the legend sits outside it), on a pale box so
    they read over points, lifted a little above the centre so a tight cluster stays visible under
    its name; ``where`` places them in a subplot (row=, col=)."""
    for x, y, text in names:
        fig.add_annotation(x=x, y=y, yshift=12, text=text, showarrow=False, font=dict(size=12, color="#222"),
                           bgcolor="rgba(255,255,255,0.65)", bordercolor="rgba(0,0,0,0.2)", borderpad=2, **where)


def show_map(fig: go.Figure, key: str, *, region_xy: np.ndarray | None = None, click: bool = False) -> list[int]:
    """Render the map with box/lasso selection (and a click on one point when ``click``);
    returns the selected row numbers. With ``region_xy`` (the full layout of a thinned map), a
    box or lasso selects every point inside it, drawn or not."""
    modes = ("points", "box", "lasso") if click else ("box", "lasso")
    event = st.plotly_chart(fig, key=key, on_select="rerun", selection_mode=modes, width="stretch")
    if region_xy is not None:
        try:
            inside = map_view.rows_in_region(region_xy, event["selection"])
        except (KeyError, TypeError):
            inside = None
        if inside is not None:
            return inside.tolist()
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


def map_notes(n: int, drawn: int, hover_text: bool, clusters: str = "", named: int | None = None,
              n_clusters: int = 0) -> None:
    """Say what the map leaves out (thinned points, hovers without text, clusters left unnamed)
    and how its clusters were made (``clusters``: the choice's caption)."""
    notes = []
    if clusters:
        notes.append(clusters)
    if named is not None and named < n_clusters:
        notes.append(f"Names are drawn for the {named} largest cluster(s) that have room, of {n_clusters}.")
    if drawn < n:
        notes.append(f"Showing {drawn:,} of {n:,} points: dense areas are thinned, sparse ones drawn whole; "
                     f"a box or lasso selects among all {n:,}.")
    if not hover_text:
        notes.append("Hovers name the point's group only; click or select points to read their texts.")
    if notes:
        st.caption(" ".join(notes))


def map_preview(job) -> None:
    """While a map job runs: a PCA of the texts embedded so far (``job_progress``'s ``extra``)."""
    preview = job.preview
    if preview is not None and len(preview.items) >= 2:
        n = len(preview.items)
        st.caption(f"Preview: PCA of the {n:,} texts embedded so far; the UMAP map follows.")
        drawn = map_view.display_rows(preview.pca)
        hover = short_hover(preview.items.texts) if n <= map_view.hover_text_max() else None
        st.plotly_chart(map_figure(preview.pca, preview.items.frame["source"], hover=hover,
                                   rows=drawn if len(drawn) < n else None), key="explore_preview")


def colour_controls(options: dict[str, str], *, coverage_radius: bool) -> tuple[str, float, bool]:
    """The "colour by" choice (option key -> label), the coverage radius when there is a
    reference dataset, and whether to draw cluster names."""
    c1, c2, c3 = st.columns([2, 1, 4])
    choice = c1.selectbox("Colour by", list(options), format_func=options.get, key="explore_colour")
    names = c2.toggle("Cluster names", value=True, key="explore_cluster_names_on")
    radius = c3.slider("Coverage radius (cosine distance)", 0.05, 0.8, 0.3, 0.05, key="explore_radius") if coverage_radius else 0.3
    return choice, radius, names


def selection_table(items: ItemSet, rows: list[int], clusters: np.ndarray) -> None:
    """The full texts of the selected points (the hovers carry only the start, or nothing on
    large maps); a large selection lists its first SELECTION_ROWS."""
    if rows:
        st.subheader(f"Selected: {len(rows):,} text(s)")
        ids = items.frame["id"].iloc[rows[:SELECTION_IDS]].astype(str).tolist()
        st.caption("Their ids" + (f" (the first {SELECTION_IDS})" if len(rows) > SELECTION_IDS else "") + ":")
        st.code(", ".join(ids), language=None, wrap_lines=True)  # a code block: ids are shown as plain text
        if len(rows) > SELECTION_ROWS:
            st.caption(f"The first {SELECTION_ROWS:,} of the {len(rows):,} selected texts.")
        shown = map_view.selection_frame(items.frame, rows[:SELECTION_ROWS], clusters)
        st.dataframe(map_view.display_frame(items, shown), hide_index=True)


def heatmap_figure(similarity, counts, x_title: str, y_title: str) -> go.Figure:
    """Within-cell mean similarity as colour (hot = collapsed), the count written in each cell;
    empty cells read 'empty', cells the recipe cannot produce (count -1) 'n/a'. Takes two pivoted
    DataFrames with the same index and columns."""
    text = [[("n/a" if int(c) < 0 else "empty" if int(c) == 0 else f"n={int(c)}") for c in row] for row in counts.to_numpy()]
    fig = go.Figure(go.Heatmap(
        z=similarity.to_numpy(dtype=float), x=[html.escape(str(c)) for c in similarity.columns],
        y=[html.escape(str(i)) for i in similarity.index], text=text, texttemplate="%{text}",
        colorscale="YlOrRd", colorbar=dict(title="mean sim"), hoverongaps=True,
        hovertemplate="%{y} × %{x}<br>%{text}<br>mean similarity %{z:.2f}<extra></extra>",
    ))
    fig.update_layout(height=max(260, 60 + 40 * len(similarity.index)), margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title=x_title, type="category"), yaxis=dict(title=y_title, type="category"))
    return fig
