"""What the Explore page shows for a finished map, decided without Streamlit.

Colours and legend order for a "colour by" choice, escaped hover labels, the tables behind the
map, and one plain function per analysis (clusters, diversity, heatmap, probes, near-duplicates)
so the page can cache each by the map's key. Everything here reads a ``MapData``; nothing
recomputes the map itself.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from services.explore.cluster_keywords import cluster_summary, dominant_values, representatives
from services.explore.diversity import diversity_table
from services.explore.gaps import Coverage, condition_heatmap, coverage, near_duplicate_groups, probe_separability
from services.explore.items import NONE, ItemSet
from services.explore.map_jobs import MapData
from services.explore.recipe_cells import RecipeCells

HOVER_CHARS = 80
HOVER_TEXT_MAX = 20_000  # above this many points hovers carry no text (select or click to read)
DISPLAY_MAX = 100_000  # plotly's WebGL scatter stays interactive up to about this many points
MAX_LEGEND = 30  # more categories than this cannot be told apart: the rest become "other"
GREY = ("noise", "other")
NOISE_COLOUR = "#c8c8c8"
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#e6550d", "#31a354", "#756bb1", "#637939", "#843c39", "#7b4173", "#3182bd", "#fd8d3c", "#74c476",
)
UNCOVERED = "reference: NO synthetic neighbour"
DIVERSITY_OVERALL = "(overall)"
TEXT_LENGTH = "length"  # the option key (kept for links and scripts); it reads "text length"
EXTRA_LABELS = {TEXT_LENGTH: "text length"}  # so a dimension called "length" keeps that name
ALL_RUNS = "(all runs pooled)"


@dataclass(frozen=True)
class Colouring:
    """One colour value per point, and the legend order when the values are categories."""

    values: np.ndarray  # str labels, or float64 when numeric
    numeric: bool = False
    categories: tuple[str, ...] = ()
    codes: np.ndarray | None = None  # each point's index in ``categories`` (when known)

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
    # One hashing pass (pandas) and arithmetic on codes: per-category masks and per-element str()
    # cost 0.9 s per rerun with 200 clusters at 100,000 points.
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    names = [str(c) for c in uniques]
    if (codes < 0).any() or len(set(names)) < len(names):  # missing values, or values that read alike
        return colouring(np.array([str(v) for v in np.asarray(values, dtype=object)], dtype=object), max_legend=max_legend)
    counts = np.bincount(codes, minlength=len(names))
    legend = sorted(names, key=category_order)
    if len(legend) > max_legend:
        count = dict(zip(names, counts.tolist(), strict=True))
        keep = set(sorted(legend, key=lambda c: -count[c])[: max_legend - 1])
        legend = sorted(keep | {"other"}, key=category_order)
        names = [n if n in keep else "other" for n in names]
    position = {c: k for k, c in enumerate(legend)}
    remap = np.array([position[n] for n in names], dtype=np.int32)
    new_codes = remap[codes] if len(codes) else np.zeros(0, dtype=np.int32)
    return Colouring(np.array(legend, dtype=object)[new_codes], categories=tuple(legend), codes=new_codes)


# -- what the map is made of ---------------------------------------------------------------


def cluster_labels(data: MapData) -> np.ndarray:
    """Cluster per point; -1 (noise) everywhere when the map has no clustering."""
    return data.labels if data.labels is not None else np.full(len(data.items.frame), -1)


def cluster_names(labels: np.ndarray) -> np.ndarray:
    """"noise" or the cluster number, per point (via the distinct labels: fast at 10^6 points)."""
    uniq, inverse = np.unique(np.asarray(labels, dtype=np.int64), return_inverse=True)
    names = np.array(["noise" if u < 0 else str(u) for u in uniq.tolist()], dtype=object)
    return names[inverse.ravel()] if len(uniq) else np.zeros(0, dtype=object)


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


def colour_options(dimensions: Sequence[str], *, has_verdicts: bool, has_reference: bool, has_tags: bool = False) -> list[str]:
    """Option keys: the map's extras and the dimensions' columns (never equal: see items._RESERVED)."""
    return (["cluster", *dimensions, "run", "source", TEXT_LENGTH] + (["filter verdict"] if has_verdicts else [])
            + (["tag"] if has_tags else []) + (["coverage"] if has_reference else []))


def option_labels(options: Sequence[str], items: ItemSet) -> dict[str, str]:
    """What each option reads as: a dimension by the name its user gave it; one of the map's own
    by its label, with " (map)" only when a dimension has the same name."""
    dims = {items.name(d) for d in items.dimensions}

    def label(o: str) -> str:
        if o in items.dimensions:
            return items.name(o)
        text = EXTRA_LABELS.get(o, o)
        return f"{text} (map)" if text in dims else text

    return {o: label(o) for o in options}


def colour_by(
    choice: str,
    frame: pd.DataFrame,
    *,
    clusters: np.ndarray,
    run_names: Mapping[str, str] | None = None,
    verdicts: Mapping[str, str] | None = None,
    reference: np.ndarray | None = None,
    cov: Coverage | None = None,
    tags: Mapping[str, str] | None = None,
) -> Colouring:
    """The colouring for a "colour by" choice: a dimension or one of ``colour_options``' extras."""
    if choice == "cluster":
        return colouring(clusters)
    if choice == "run":
        return colouring(run_column(frame, run_names).to_numpy())
    if choice == TEXT_LENGTH:
        return colouring(frame["text"].str.len().to_numpy(), numeric=True)
    if choice == "filter verdict":  # the pipeline last applied to each run (Compare Filters, "Apply")
        return colouring(frame["id"].map(dict(verdicts or {})).fillna("not filtered").to_numpy())
    if choice == "tag":  # tags put on map selections (services.curation.selection_actions)
        return colouring(frame["id"].map(dict(tags or {})).fillna("untagged").to_numpy())
    if choice == "coverage":
        if reference is None or cov is None:
            raise ValueError("colouring by coverage needs a reference dataset")
        values = np.where(reference, "reference: covered", "synthetic").astype(object)
        values[np.flatnonzero(reference)[cov.uncovered]] = UNCOVERED
        return colouring(values)
    return colouring(frame[choice].to_numpy())


def run_column(frame: pd.DataFrame, run_names: Mapping[str, str] | None = None) -> pd.Series:
    """Each point's run by its unique label (its id where no label is known; "(dataset)" for rows)."""
    ids = frame["run_id"]
    return ids.map(dict(run_names or {})).fillna(ids).fillna("(dataset)").astype(str)


def condition_lines(frame: pd.DataFrame, dimensions: Sequence[str], names: Mapping[str, str] | None = None) -> np.ndarray | None:
    """"dim=value, dim=value" per point (dimensions by their users' names), or None without
    dimensions (vectorised: a row-wise join cost 1 s at 20,000 points)."""
    lines = None
    for d in dimensions:
        part = (names or {}).get(d, d) + "=" + frame[d].astype(str)
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


def display_rows(xy: np.ndarray, max_points: int | None = None, grid: int = 256, seed: int = 0) -> np.ndarray:
    """The rows to draw: all of them up to ``max_points``; beyond, a density-based sample that
    keeps every point of sparse grid cells and thins only the dense ones (at most ``cap`` per
    cell, the largest cap that fits), so outliers and small clusters stay visible."""
    n = len(xy)
    max_points = DISPLAY_MAX if max_points is None else max_points
    if n <= max_points:
        return np.arange(n)
    xy = np.asarray(xy, dtype=np.float64)
    lo, span = xy.min(axis=0), np.ptp(xy, axis=0)
    cell_xy = np.minimum((grid * (xy - lo) / np.where(span > 0, span, 1)).astype(np.int64), grid - 1)
    cell = cell_xy[:, 0] * grid + cell_xy[:, 1]
    counts = np.bincount(cell, minlength=grid * grid)
    low, high = 0, int(counts.max())  # the largest cap with sum(min(count, cap)) <= max_points
    while low < high:
        mid = (low + high + 1) // 2
        if np.minimum(counts, mid).sum() <= max_points:
            low = mid
        else:
            high = mid - 1
    order = np.lexsort((np.random.default_rng(seed).random(n), cell))  # random order inside each cell
    first = np.concatenate([[0], np.cumsum(counts)])[cell[order]]
    rank = np.arange(n) - first
    return np.sort(order[rank < max(low, 1)])


def hover_text_max() -> int:
    """Up to how many points hovers carry texts (read at call time, so tests can lower it)."""
    return HOVER_TEXT_MAX


def _inside_polygon(xy: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Even-odd rule: True for the points inside the polygon (px, py), vectorised over points."""
    x, y = xy[:, 0], xy[:, 1]
    inside = np.zeros(len(xy), dtype=bool)
    for k in range(len(px)):
        x1, y1, x2, y2 = px[k - 1], py[k - 1], px[k], py[k]
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        inside ^= crosses & (x < x1 + (y - y1) * (x2 - x1) / (y2 - y1))
    return inside


def rows_in_region(xy: np.ndarray, selection: Mapping) -> np.ndarray | None:
    """Rows of every point (drawn or thinned out) inside a chart selection's boxes and lassos;
    None when the selection has no region (e.g. a clicked point)."""
    boxes, lassos = selection.get("box") or [], selection.get("lasso") or []
    if not boxes and not lassos:
        return None
    xy = np.asarray(xy, dtype=np.float64)
    inside = np.zeros(len(xy), dtype=bool)
    for b in boxes:
        (x0, x1), (y0, y1) = sorted(b["x"][:2]), sorted(b["y"][:2])
        inside |= (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    for lasso in lassos:
        inside |= _inside_polygon(xy, np.asarray(lasso["x"], float), np.asarray(lasso["y"], float))
    return np.flatnonzero(inside)


def map_title(data: MapData) -> str:
    """"N texts", or "N of M texts" when some of the selected ones were left out (notes say why)."""
    n = len(data.items.frame)
    method = "UMAP" if data.xy is not None and n >= 10 else "PCA"
    asked = data.items.selected
    count = f"{n:,} of {asked:,} texts ({asked - n:,} left out)" if asked is not None and asked > n else f"{n:,} texts"
    return f"{count} · {method} · {data.model}"


def display_frame(items: ItemSet, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with dimensions under their users' names (" (dimension)" added where the name is
    taken by one of the map's own columns)."""
    taken = set(frame.columns)
    cols = {c: (n if n not in taken else f"{n} (dimension)") for c, n in items.names.items() if c in taken}
    return frame.rename(columns=cols)


def selection_frame(frame: pd.DataFrame, rows: Sequence[int], clusters: np.ndarray) -> pd.DataFrame:
    """The selected points' rows, with their cluster name."""
    return frame.iloc[list(rows)].assign(cluster=clusters[list(rows)])


def uncovered_reference(frame: pd.DataFrame, reference: np.ndarray, cov: Coverage) -> pd.DataFrame:
    """Reference texts with no synthetic neighbour within the radius, with their distance."""
    rows = np.flatnonzero(reference)[cov.uncovered]
    return pd.DataFrame({"text": frame["text"].iloc[rows].to_numpy(), "distance": cov.nearest_distance[cov.uncovered]})


# -- what the analyses look at --------------------------------------------------------------


def run_dimensions(data: MapData, run_id: str | None) -> list[str]:
    """The dimensions the run's texts carry (values other than "(none)")."""
    f = data.items.frame
    rows = f if run_id is None else f[f["run_id"] == run_id]
    return [d for d in data.items.dimensions if (rows[d].astype(str) != NONE).any()]


def analysis_runs(data: MapData) -> list[str]:
    """The runs an analysis can be restricted to, in map order."""
    return mapped_runs(data.items.frame)


def default_analysis_run(data: MapData) -> str | None:
    """The first run with the most dimensions (pooling a baseline in would add "(none)" values);
    None for a map of one run or of a dataset (nothing to choose)."""
    runs = analysis_runs(data)
    if len(runs) < 2:
        return None
    counts = [len(run_dimensions(data, r)) for r in runs]
    return runs[counts.index(max(counts))]


def scope(data: MapData, run_id: str | None) -> MapData:
    """The map's points an analysis looks at: never the reference dataset's (coverage only), and
    only ``run_id``'s when given; dimensions the kept texts do not carry are dropped."""
    f = data.items.frame
    keep = ~reference_mask(f)
    if run_id is not None:
        keep &= (f["run_id"] == run_id).to_numpy()
    if keep.all():
        return data
    idx = np.flatnonzero(keep)
    frame = f.iloc[idx].reset_index(drop=True)
    sub = replace(data.items, frame=frame)
    sub.dimensions = [d for d in data.items.dimensions if (frame[d].astype(str) != NONE).any()]
    pick = lambda a: None if a is None else a[idx]  # noqa: E731 - aligned row selection
    return replace(data, items=sub, vectors=data.vectors[idx], pca=data.pca[idx], xy=pick(data.xy), labels=pick(data.labels))


def scope_note(data: MapData, run_id: str | None) -> str:
    """What the analyses below look at, in words."""
    parts = []
    if reference_mask(data.items.frame).any():
        parts.append("the reference dataset is left out (it is for coverage only)")
    if run_id is not None:
        parts.append(f"only run '{data.items.run_names.get(run_id, run_id)}'")
    return ("Analyses: " + "; ".join(parts) + ".") if parts else ""


# -- analyses, one function each (the page caches them by map key) ---------------------------


def cluster_table(data: MapData) -> pd.DataFrame:
    return cluster_summary(data.items.frame["text"].tolist(), cluster_labels(data))


def cluster_keywords(summary: pd.DataFrame, cluster: str) -> str:
    return summary.loc[summary["cluster"] == cluster, "keywords"].item() or "(none)"


def cluster_representatives(data: MapData, cluster: int) -> pd.DataFrame:
    """The texts closest to the cluster's centre, with their conditions."""
    rows = representatives(data.vectors, cluster_labels(data), cluster)
    return display_frame(data.items, data.items.frame.iloc[rows][["text", *data.items.dimensions]])


def cluster_dominant_values(data: MapData, cluster: int) -> pd.DataFrame:
    out = dominant_values(data.items.frame, cluster_labels(data), cluster, data.items.dimensions)
    return out.assign(dimension=out["dimension"].map(data.items.name))


def diversity_groups(dimensions: Sequence[str]) -> list[str]:
    """"Per" choices: extras, then dimension columns (shown by ``option_labels``)."""
    return [DIVERSITY_OVERALL, "run", "source", *dimensions]


def diversity_column(group: str) -> str | None:
    """The frame column behind a "Per" choice (None: one overall row)."""
    return None if group == DIVERSITY_OVERALL else ("run_id" if group == "run" else group)


def diversity(data: MapData, by: str | None) -> pd.DataFrame:
    """Diversity overall or per group; runs by their unique labels."""
    frame = data.items.frame
    if by == "run_id":
        frame = frame.assign(run_id=run_column(frame, data.items.run_names))
    return diversity_table(frame, data.vectors, data.labels, by=by)


def probes(data: MapData) -> pd.DataFrame:
    out = probe_separability(data.items.frame, data.vectors, data.items.dimensions)
    return out.assign(dimension=out["dimension"].map(data.items.name))


def near_duplicates(data: MapData, threshold: float) -> pd.DataFrame:
    return near_duplicate_groups(data.items.frame, data.vectors, data.items.dimensions, threshold=threshold)


def heatmap(data: MapData, dim_a: str, dim_b: str, recipe: RecipeCells | None = None) -> pd.DataFrame:
    """The cells of two dimensions; with the recipe's cells, its unseen values show as empty
    rows/columns and the pairs it cannot produce as impossible (never "empty")."""
    if recipe is None:
        return condition_heatmap(data.items.frame, data.vectors, dim_a, dim_b)
    return condition_heatmap(data.items.frame, data.vectors, dim_a, dim_b, values_a=recipe.values_a,
                             values_b=recipe.values_b, possible=recipe.possible)


def heatmap_grids(cells: pd.DataFrame, dim_a: str, dim_b: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean similarity and count per cell, rows = ``dim_a`` values, columns = ``dim_b`` values, in
    the cells' order (the recipe's values first); an impossible cell's count is -1."""
    order_a, order_b = list(dict.fromkeys(cells[dim_a])), list(dict.fromkeys(cells[dim_b]))
    impossible = cells["impossible"].astype(bool) if "impossible" in cells else pd.Series(False, index=cells.index)
    counts = cells["count"].where(~impossible, -1)
    sim = cells.pivot(index=dim_a, columns=dim_b, values="mean_similarity").reindex(index=order_a, columns=order_b)
    n = cells.assign(count=counts).pivot(index=dim_a, columns=dim_b, values="count").reindex(index=order_a, columns=order_b)
    return sim, n


def flagged_cells(cells: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The collapsed, empty or thin cells, and a one-line count of each kind."""
    flagged = cells[cells["collapsed"] | cells["empty"] | cells["thin"]]
    summary = (f"{int(cells['collapsed'].sum())} collapsed, {int(cells['empty'].sum())} empty and "
               f"{int(cells['thin'].sum())} thin cell(s)")
    impossible = int(cells["impossible"].sum()) if "impossible" in cells else 0
    if impossible:
        summary += f"; {impossible} cell(s) the recipe cannot produce are not counted as empty"
    return flagged, summary


# -- fill the gap ----------------------------------------------------------------------------


def gap_recipe_choices(runs: pd.DataFrame, run_ids: Sequence[str], versions: Mapping[str, str]) -> list[str]:
    """Saved recipes to extend: those of the mapped runs, else every saved version."""
    hashes = sorted(set(runs.loc[runs["run_id"].isin(list(run_ids)), "recipe_hash"]))
    return [h for h in hashes if h in versions] or list(versions)


def split_values(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def gap_demonstrations(frame: pd.DataFrame, dimensions: Sequence[str], rows: Sequence[int], limit: int = 20,
                       names: Mapping[str, str] | None = None) -> list[tuple[str, dict[str, str]]]:
    """Selected texts with their conditions (by the dimensions' own names), as demonstrations
    for a new recipe version."""
    name = lambda k: (names or {}).get(k, k)  # noqa: E731
    return [(frame["text"].iloc[i], {name(k): str(frame[k].iloc[i]) for k in dimensions}) for i in list(rows)[:limit]]
