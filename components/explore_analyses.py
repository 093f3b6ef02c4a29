"""The analyses under the Explore map: clusters, diversity, heatmap, probes, near-duplicates, coverage.

Each analysis is cached per map and scope (``map_key``: the map job's key and the run analysed)
and its arguments; the map itself is passed unhashed (``_data``) because the key already names
it. Reference rows never enter an analysis (they are for coverage); clusters, heatmap and probes
look at one run at a time by default, so a baseline's "(none)" values do not pool in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from components.explore_map import heatmap_figure
from services.core.store import Store
from services.explore import map_view
from services.explore.diversity import SELF_BLEU_SAMPLE
from services.explore.gaps import MIN_COLLAPSE_CELL, Coverage
from services.explore.map_jobs import MapData
from services.explore.recipe_cells import RecipeCells, recipe_cells, scope_recipe
from services.recipes.recipe import Recipe

_CACHE = dict(show_spinner="Computing…", max_entries=32)


@st.cache_data(**_CACHE)
def _clusters(map_key: str, _data: MapData) -> pd.DataFrame:
    return map_view.cluster_table(_data)


@st.cache_data(**_CACHE)
def _diversity(map_key: str, by: str | None, _data: MapData) -> pd.DataFrame:
    return map_view.diversity(_data, by)


@st.cache_data(**_CACHE)
def _cells(map_key: str, dim_a: str, dim_b: str, _recipe: Recipe | None) -> RecipeCells | None:
    return recipe_cells(_recipe, dim_a, dim_b)


@st.cache_data(**_CACHE)
def _heatmap(map_key: str, dim_a: str, dim_b: str, _data: MapData, _cells: RecipeCells | None) -> pd.DataFrame:
    return map_view.heatmap(_data, dim_a, dim_b, _cells)


@st.cache_data(**_CACHE)
def _probes(map_key: str, _data: MapData) -> pd.DataFrame:
    return map_view.probes(_data)


@st.cache_data(**_CACHE)
def _near_duplicates(map_key: str, threshold: float, _data: MapData) -> pd.DataFrame:
    return map_view.near_duplicates(_data, threshold)


def analyse(store: Store, data: MapData, map_key: str, section: str) -> None:
    """One analysis of the map; clusters, heatmap and probes on the run chosen here."""
    run_id = None
    if section in ("Clusters", "Heatmap", "Probes"):
        run_id = _pick_run(data)
    scoped = map_view.scope(data, run_id)
    if note := map_view.scope_note(data, run_id):
        st.caption(note)
    key = f"{map_key}|{run_id}"
    if section == "Clusters":
        clusters_section(scoped, key)
    elif section == "Diversity":
        diversity_section(scoped, key)
    elif section == "Heatmap":
        runs = [run_id] if run_id else map_view.analysis_runs(scoped)
        heatmap_section(scoped, key, scope_recipe(store, runs))
    elif section == "Probes":
        probes_section(scoped, key)
    elif section == "Near-duplicates":
        near_duplicates_section(scoped, key)


def _pick_run(data: MapData) -> str | None:
    """The run analysed (the first with the most dimensions by default), or None: all pooled."""
    default = map_view.default_analysis_run(data)
    if default is None:
        return None
    options = [*map_view.analysis_runs(data), map_view.ALL_RUNS]
    names = data.items.run_names
    pick = st.selectbox("Run analysed", options, index=options.index(default), key="explore_scope",
                        format_func=lambda r: names.get(r, r),
                        help="Pooling runs mixes their conditions: a run without a dimension adds a '(none)' value.")
    return None if pick == map_view.ALL_RUNS else pick


def clusters_section(data: MapData, map_key: str) -> None:
    if not map_view.has_clusters(data):
        st.info("No clusters: too few points, or no dense groups at this minimum cluster size (try a smaller one).")
        return
    summary = _clusters(map_key, data)
    st.dataframe(summary, hide_index=True)
    pick = st.selectbox("Cluster details", [c for c in summary["cluster"] if c != "noise"], key="explore_cluster")
    st.text("Keywords: " + map_view.cluster_keywords(summary, pick))
    st.caption("Representative samples (closest to the cluster's centre)")
    st.dataframe(map_view.cluster_representatives(data, int(pick)), hide_index=True)
    if data.items.dimensions:
        st.caption("Dominant condition values (lift = share in cluster / share overall)")
        st.dataframe(map_view.cluster_dominant_values(data, int(pick)), hide_index=True)


def diversity_section(data: MapData, map_key: str) -> None:
    by = st.selectbox("Per", map_view.diversity_groups(data.items.dimensions), key="explore_div_by", format_func=data.items.name)
    if len(data.items.frame) < 3:
        st.info("Diversity needs at least 3 texts; only counts are shown.")
    st.dataframe(_diversity(map_key, map_view.diversity_column(by), data), hide_index=True)
    st.caption(f"Self-BLEU on a random sample of at most {SELF_BLEU_SAMPLE} texts per row (self_bleu_n = texts used); "
               "higher Self-BLEU and mean cosine = less diverse; Vendi = effective number of distinct texts.")


def heatmap_section(data: MapData, map_key: str, recipe: Recipe | None) -> None:
    dims, name = data.items.dimensions, data.items.name
    if len(dims) < 2:
        st.info("The heatmap needs two condition dimensions; these texts have " + (f"only '{name(dims[0])}'." if dims else "none."))
        return
    c1, c2 = st.columns(2)
    dim_a = c1.selectbox("Rows", dims, key="explore_hm_a", format_func=name)
    dim_b = c2.selectbox("Columns", [d for d in dims if d != dim_a], key="explore_hm_b", format_func=name)
    rc = _cells(map_key, name(dim_a), name(dim_b), recipe)  # the key names the scope, so the recipe
    cells = _heatmap(map_key, dim_a, dim_b, data, rc)
    sim, counts = map_view.heatmap_grids(cells, dim_a, dim_b)
    st.caption(f"Colour: mean pairwise similarity within each cell (hot = collapsed; blank = fewer than 2 samples). "
               f"A cell is called collapsed only with at least {MIN_COLLAPSE_CELL} samples. "
               + ("Rows and columns are the recipe's values; n/a = a cell the recipe cannot produce."
                  if rc else "Rows and columns are the values found in the texts (no saved recipe for this scope)."))
    st.plotly_chart(heatmap_figure(sim, counts, name(dim_b), name(dim_a)), key="explore_heatmap")
    if left := cells.attrs.get("left_out"):
        st.caption(f"{left} text(s) without one of these dimensions are not in the heatmap.")
    flagged, summary = map_view.flagged_cells(cells)
    if not flagged.empty:
        st.warning(f"{summary}: see Fill the gap.")
        st.dataframe(flagged.rename(columns={dim_a: name(dim_a), dim_b: name(dim_b)}), hide_index=True)


def probes_section(data: MapData, map_key: str) -> None:
    if not data.items.dimensions:
        st.info("These texts have no condition dimensions to probe.")
    elif len(data.items.frame) < 3:
        st.info("Probes need more texts (at least 2 per value).")
    else:
        st.caption("Cross-validated accuracy of a linear probe predicting each dimension from the embedding. "
                   "Near chance: the generator ignored the dimension.")
        st.dataframe(_probes(map_key, data), hide_index=True)


def near_duplicates_section(data: MapData, map_key: str) -> None:
    threshold = st.slider("Cosine threshold", 0.80, 1.00, 0.95, 0.01, key="explore_dup_t")
    groups = _near_duplicates(map_key, float(f"{threshold:.2f}"), data)
    if groups.empty:
        st.success(f"No near-duplicate pairs at cosine ≥ {threshold:.2f}.")
    else:
        spans = int(groups["spans_conditions"].sum())
        st.warning(f"{len(groups)} near-duplicate group(s); {spans} span different conditions.")
        st.dataframe(groups.drop(columns=["ids"]), hide_index=True)


def coverage_section(frame: pd.DataFrame, reference: np.ndarray, cov: Coverage) -> None:
    """How much of the real (reference) data the synthetic texts come near."""
    st.subheader("Coverage of the reference dataset")
    share = cov.uncovered_share
    st.metric("Reference points with no synthetic neighbour", f"{cov.n_uncovered} / {cov.n_reference}",
              f"{share:.0%}" if share is not None else None, delta_color="inverse")
    if cov.n_uncovered:
        st.caption("Colour by 'coverage' to see these regions on the map. Uncovered reference texts:")
        st.dataframe(map_view.uncovered_reference(frame, reference, cov), hide_index=True)
