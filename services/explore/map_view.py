"""What the Explore page shows for a finished map, decided without Streamlit.

Colours and legend order for a "colour by" choice, escaped hover labels, the tables behind the
map, and one plain function per analysis (clusters, diversity, heatmap, probes, near-duplicates)
so the page can cache each by the map's key. Everything here reads a ``MapData``; nothing
recomputes the map itself.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from services.explore.cluster_keywords import cluster_summary, dominant_values, representatives
from services.explore.diversity import diversity_table
from services.explore.gaps import Coverage, condition_heatmap, coverage, near_duplicate_groups, probe_separability
from services.explore.map_jobs import MapData

HOVER_CHARS = 80
MAX_LEGEND = 30  # more categories than this cannot be told apart: the rest become "other"
GREY = ("noise", "other")
NOISE_COLOUR = "#c8c8c8"
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#e6550d", "#31a354", "#756bb1", "#637939", "#843c39", "#7b4173", "#3182bd", "#fd8d3c", "#74c476",
)
UNCOVERED = "reference: NO synthetic neighbour"
DIVERSITY_OVERALL = "(overall)"


@dataclass(frozen=True)
class Colouring:
    """One colour value per point, and the legend order when the values are categories."""

    values: np.ndarray  # str labels, or float64 when numeric
    numeric: bool = False
    categories: tuple[str, ...] = ()

    def colours(self) -> list[str]:
        """A hex colour per category, in legend order (noise and "other" are grey)."""
        return [NOISE_COLOUR if c in GREY else PALETTE[i % len(PALETTE)] for i, c in enumerate(self.categories)]


def category_order(c: str) -> tuple[int, int, str]:
    """Cluster numbers in numeric order, then names alphabetically, then noise and "other"."""
    if c in GREY:
        return (2, 0, c)
    return (0, int(c), "") if c.lstrip("-").isdigit() else (1, 0, c)


def colouring(values: Sequence | np.ndarray, *, numeric: bool = False, max_legend: int = MAX_LEGEND) -> Colouring:
    """Numbers as they are; categories as strings in legend order, the smallest lumped into "other"."""
    if numeric:
        return Colouring(np.asarray(values, dtype=np.float64), numeric=True)
    labels = np.asarray([str(c) for c in values], dtype=object)
    cats = sorted(set(labels.tolist()), key=category_order)
    if len(cats) > max_legend:
        counts = {c: int((labels == c).sum()) for c in cats}
        keep = sorted(cats, key=lambda c: -counts[c])[: max_legend - 1]
        labels = np.where(np.isin(labels, keep), labels, "other").astype(object)
        cats = sorted(set(labels.tolist()), key=category_order)
    return Colouring(labels, categories=tuple(cats))


# -- what the map is made of ---------------------------------------------------------------


def cluster_labels(data: MapData) -> np.ndarray:
    """Cluster per point; -1 (noise) everywhere when the map has no clustering."""
    return data.labels if data.labels is not None else np.full(len(data.items.frame), -1)


def cluster_names(labels: np.ndarray) -> np.ndarray:
    return np.where(np.asarray(labels) < 0, "noise", np.asarray(labels).astype(str))


def has_clusters(data: MapData) -> bool:
    return data.labels is not None and bool((data.labels >= 0).any())


def reference_mask(frame: pd.DataFrame) -> np.ndarray:
    """True for the points of the reference dataset (loaded with a "reference:" source)."""
    return frame["source"].astype(str).str.startswith("reference:").to_numpy()


def mapped_runs(frame: pd.DataFrame) -> list[str]:
    """The runs on the map (whose filter verdicts can colour it)."""
    return frame["run_id"].dropna().unique().tolist()


def reference_coverage(data: MapData, reference: np.ndarray, radius: float) -> Coverage | None:
    if not reference.any():
        return None
    return coverage(data.vectors[~reference], data.vectors[reference], radius)


def colour_options(dimensions: Sequence[str], *, has_verdicts: bool, has_reference: bool) -> list[str]:
    return (["cluster", *dimensions, "run", "source", "length"] + (["filter verdict"] if has_verdicts else [])
            + (["coverage"] if has_reference else []))


def colour_by(
    choice: str,
    frame: pd.DataFrame,
    *,
    clusters: np.ndarray,
    verdicts: Mapping[str, str] | None = None,
    reference: np.ndarray | None = None,
    cov: Coverage | None = None,
) -> Colouring:
    """The colouring for a "colour by" choice: a dimension or one of ``colour_options``' extras."""
    if choice == "cluster":
        return colouring(clusters)
    if choice == "run":
        return colouring(frame["run_id"].fillna("(dataset)").to_numpy())
    if choice == "length":
        return colouring(frame["text"].str.len().to_numpy(), numeric=True)
    if choice == "filter verdict":  # the pipeline last applied to each run (Compare Filters, "Apply")
        return colouring(frame["id"].map(dict(verdicts or {})).fillna("not filtered").to_numpy())
    if choice == "coverage":
        if reference is None or cov is None:
            raise ValueError("colouring by coverage needs a reference dataset")
        values = np.where(reference, "reference: covered", "synthetic").astype(object)
        values[np.flatnonzero(reference)[cov.uncovered]] = UNCOVERED
        return colouring(values)
    return colouring(frame[choice].to_numpy())


def condition_lines(frame: pd.DataFrame, dimensions: Sequence[str]) -> np.ndarray | None:
    """"dim=value, dim=value" per point, or None without dimensions (vectorised: a row-wise join
    cost 1 s at 20,000 points)."""
    lines = None
    for d in dimensions:
        part = d + "=" + frame[d].astype(str)
        lines = part if lines is None else lines + ", " + part
    return lines.to_numpy() if lines is not None else None


def hover_labels(texts: Sequence[str], extra: Sequence[str] | None = None, n: int = HOVER_CHARS) -> np.ndarray:
    """Escaped, one-line, shortened hover labels (plus an escaped extra line per point).

    Plotly renders a subset of HTML in hovers and texts are untrusted, hence the escaping; the
    cut keeps a 50,000-point map small (full texts are shown for selected points only).
    """
    out = []
    for i, t in enumerate(texts):
        t = " ".join(str(t or "").split())
        line = html.escape(t[:n] + ("…" if len(t) > n else ""))
        if extra is not None and extra[i]:
            line += "<br>" + html.escape(str(extra[i])[:n])
        out.append(line)
    return np.array(out, dtype=object)


def map_title(data: MapData) -> str:
    n = len(data.items.frame)
    method = "UMAP" if data.xy is not None and n >= 10 else "PCA"
    return f"{n} texts · {method} · {data.model}"


def selection_frame(frame: pd.DataFrame, rows: Sequence[int], clusters: np.ndarray) -> pd.DataFrame:
    """The selected points' rows, with their cluster name."""
    return frame.iloc[list(rows)].assign(cluster=clusters[list(rows)])


def uncovered_reference(frame: pd.DataFrame, reference: np.ndarray, cov: Coverage) -> pd.DataFrame:
    """Reference texts with no synthetic neighbour within the radius, with their distance."""
    rows = np.flatnonzero(reference)[cov.uncovered]
    return pd.DataFrame({"text": frame["text"].iloc[rows].to_numpy(), "distance": cov.nearest_distance[cov.uncovered]})


# -- analyses, one function each (the page caches them by map key) ---------------------------


def cluster_table(data: MapData) -> pd.DataFrame:
    return cluster_summary(data.items.frame["text"].tolist(), cluster_labels(data))


def cluster_keywords(summary: pd.DataFrame, cluster: str) -> str:
    return summary.loc[summary["cluster"] == cluster, "keywords"].item() or "(none)"


def cluster_representatives(data: MapData, cluster: int) -> pd.DataFrame:
    """The texts closest to the cluster's centre, with their conditions."""
    rows = representatives(data.vectors, cluster_labels(data), cluster)
    return data.items.frame.iloc[rows][["text", *data.items.dimensions]]


def cluster_dominant_values(data: MapData, cluster: int) -> pd.DataFrame:
    return dominant_values(data.items.frame, cluster_labels(data), cluster, data.items.dimensions)


def diversity_groups(dimensions: Sequence[str]) -> list[str]:
    return [DIVERSITY_OVERALL, "run", "source", *dimensions]


def diversity_column(group: str) -> str | None:
    """The frame column behind a "Per" choice (None: one overall row)."""
    return None if group == DIVERSITY_OVERALL else ("run_id" if group == "run" else group)


def diversity(data: MapData, by: str | None) -> pd.DataFrame:
    return diversity_table(data.items.frame, data.vectors, data.labels, by=by)


def probes(data: MapData) -> pd.DataFrame:
    return probe_separability(data.items.frame, data.vectors, data.items.dimensions)


def near_duplicates(data: MapData, threshold: float) -> pd.DataFrame:
    return near_duplicate_groups(data.items.frame, data.vectors, data.items.dimensions, threshold=threshold)


def heatmap(data: MapData, dim_a: str, dim_b: str) -> pd.DataFrame:
    return condition_heatmap(data.items.frame, data.vectors, dim_a, dim_b)


def heatmap_grids(cells: pd.DataFrame, dim_a: str, dim_b: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean similarity and count per cell, rows = ``dim_a`` values, columns = ``dim_b`` values."""
    return (cells.pivot(index=dim_a, columns=dim_b, values="mean_similarity"),
            cells.pivot(index=dim_a, columns=dim_b, values="count"))


def flagged_cells(cells: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The collapsed, empty or thin cells, and a one-line count of each kind."""
    flagged = cells[cells["collapsed"] | cells["empty"] | cells["thin"]]
    summary = (f"{int(cells['collapsed'].sum())} collapsed, {int(cells['empty'].sum())} empty and "
               f"{int(cells['thin'].sum())} thin cell(s)")
    return flagged, summary


# -- fill the gap ----------------------------------------------------------------------------


def gap_recipe_choices(runs: pd.DataFrame, run_ids: Sequence[str], versions: Mapping[str, str]) -> list[str]:
    """Saved recipes to extend: those of the mapped runs, else every saved version."""
    hashes = sorted(set(runs.loc[runs["run_id"].isin(list(run_ids)), "recipe_hash"]))
    return [h for h in hashes if h in versions] or list(versions)


def split_values(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def gap_demonstrations(frame: pd.DataFrame, dimensions: Sequence[str], rows: Sequence[int], limit: int = 20) -> list[tuple[str, dict[str, str]]]:
    """Selected texts with their conditions, as demonstrations for a new recipe version."""
    return [(frame["text"].iloc[i], {k: str(frame[k].iloc[i]) for k in dimensions}) for i in list(rows)[:limit]]
