"""Explore: the embedding map of runs or a dataset, its clusters, diversity and gaps.

The map is built in the background (embeddings cached by text, UMAP and clusters cached by the
set of samples and parameters); this script only reads the finished job, so changing the colour,
the hover or the selection never recomputes anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from components.explore_map import heatmap_figure, map_figure, short_hover, show_map
from resources import get_embedder, get_map_jobs, get_store
from services.core import settings
from services.curation.pipeline_store import latest_verdicts
from services.explore.cluster_keywords import cluster_summary, dominant_values, representatives
from services.explore.diversity import SELF_BLEU_SAMPLE, diversity_table
from services.explore.gaps import (
    GapError,
    condition_heatmap,
    coverage,
    fill_gap_recipe,
    near_duplicate_groups,
    probe_separability,
    save_gap_version,
)
from services.explore.items import list_datasets, list_runs
from services.explore.map_jobs import MapRequest, start_map
from services.explore.projection import LayoutParams
from services.recipes.version_store import list_versions, load_version

st.title("Explore")
store = get_store()
jobs = get_map_jobs()

# -- what to map ---------------------------------------------------------------------------
runs = list_runs(store)
runs = runs[runs["n_samples"] > 0]
datasets = list_datasets(store)
if runs.empty and datasets.empty:
    st.info("Nothing to map yet: generate a run on the Generate page, or import a dataset on the SQL page.")
    st.stop()

kinds = [k for k, ok in (("Runs", not runs.empty), ("Dataset", not datasets.empty)) if ok]
kind = st.radio("Map", kinds, horizontal=True, key="explore_kind")
run_label = {r.run_id: f"{r.name} · {r.model} · {r.n_samples} samples" for r in runs.itertuples()}
ds_label = {d.dataset_id: f"{d.name} · {d.n_rows} rows" for d in datasets.itertuples()}
run_ids: list[str] = []
dataset_id = None
if kind == "Runs":
    run_ids = st.multiselect("Runs", list(run_label), default=list(run_label)[: 5 if len(run_label) <= 5 else 1], format_func=run_label.get, key="explore_runs")
else:
    dataset_id = st.selectbox("Dataset", list(ds_label), format_func=ds_label.get, key="explore_dataset")

with st.expander("Map settings: embedder, UMAP, clusters, reference"):
    default_spec = settings.get("STUDIO_EMBEDDER")
    specs = list(dict.fromkeys([default_spec, "full", "static"]))
    names = {"full": "all-MiniLM-L6-v2 (full model, ~35 texts/s on 2 cores)", "static": "static model2vec distillation (fast)"}
    c1, c2 = st.columns(2)
    spec = c1.selectbox("Embedder", specs, format_func=lambda s: names.get(s, s), key="explore_embedder")
    custom = c2.text_input("…or another sentence-transformers model (name or local path)", key="explore_custom_model")
    if custom.strip():
        spec = custom.strip()
    c1, c2, c3, c4, c5 = st.columns(5)
    n_neighbors = c1.number_input("UMAP n_neighbors", 2, 200, 15, key="explore_nn")
    min_dist = c2.number_input("UMAP min_dist", 0.0, 1.0, 0.1, step=0.05, key="explore_md")
    seed = c3.number_input("UMAP seed", 0, 2**31 - 1, 42, key="explore_seed")
    min_cluster = c4.number_input("Min cluster size (0 = auto)", 0, 5000, 0, key="explore_mcs")
    min_samples = c5.number_input("HDBSCAN min samples (0 = auto)", 0, 5000, 0, key="explore_ms")
    ref_options = [None, *ds_label]
    reference_id = st.selectbox("Reference dataset for coverage (real data)", ref_options, key="explore_reference",
                                format_func=lambda d: "none" if d is None else ds_label[d])

if not run_ids and not dataset_id:
    st.info("Choose one or more runs to map.")
    st.stop()

request = MapRequest(
    run_ids=tuple(run_ids), dataset_id=dataset_id, reference_id=reference_id,
    layout=LayoutParams(n_neighbors=int(n_neighbors), min_dist=float(min_dist), seed=int(seed)),
    min_cluster_size=int(min_cluster) or None, min_samples=int(min_samples) or None,
)
job = start_map(jobs, store, get_embedder(spec), request)
job.wait(2.0)  # a cached map is ready within this; otherwise show progress and a preview

if job.running:
    @st.fragment(run_every=1.0)
    def _progress() -> None:
        if not job.running:
            st.rerun()
        st.progress(job.fraction, text=f"{job.stage}: {job.message}" if job.message else job.stage)
        preview = job.preview
        if preview is not None and len(preview.items) >= 2:
            st.caption(f"Preview: PCA of the {len(preview.items)} texts embedded so far; the UMAP map follows.")
            st.plotly_chart(map_figure(preview.pca, preview.items.frame["source"], hover=short_hover(preview.items.texts)),
                            key="explore_preview")

    _progress()
    st.stop()

if job.error:
    st.error(f"The map could not be built: {job.error}")
    st.stop()

data = job.result
frame = data.items.frame
dims = data.items.dimensions
for note in data.notes:
    st.info(note)
if frame.empty:
    st.warning("No texts to map: the selection has no successful samples with text.")
    st.stop()

# -- the map -------------------------------------------------------------------------------
n = len(frame)
labels = data.labels if data.labels is not None else np.full(n, -1)
cluster_names = np.where(labels < 0, "noise", labels.astype(str))
is_ref = frame["source"].astype(str).str.startswith("reference:").to_numpy()
verdicts = latest_verdicts(store, [r for r in frame["run_id"].dropna().unique().tolist()]) if frame["run_id"].notna().any() else {}
colour_options = (["cluster", *dims, "run", "source", "length"] + (["filter verdict"] if verdicts else [])
                  + (["coverage"] if is_ref.any() else []))
c1, c2 = st.columns([1, 3])
colour_by = c1.selectbox("Colour by", colour_options, key="explore_colour")
radius = c2.slider("Coverage radius (cosine distance)", 0.05, 0.8, 0.3, 0.05, key="explore_radius") if is_ref.any() else 0.3

cov = coverage(data.vectors[~is_ref], data.vectors[is_ref], radius) if is_ref.any() else None
numeric = colour_by == "length"
if colour_by == "cluster":
    colour = cluster_names
elif colour_by == "run":
    colour = frame["run_id"].fillna("(dataset)").to_numpy()
elif colour_by == "length":
    colour = frame["text"].str.len().to_numpy()
elif colour_by == "filter verdict":  # the pipeline last applied to each run (Compare Filters, "Apply")
    colour = frame["id"].map(verdicts).fillna("not filtered").to_numpy()
elif colour_by == "coverage":
    colour = np.where(is_ref, "reference: covered", "synthetic").astype(object)
    colour[np.flatnonzero(is_ref)[cov.uncovered]] = "reference: NO synthetic neighbour"
else:
    colour = frame[colour_by].to_numpy()

conditions = None
for d in dims:  # "dim=value, dim=value" per point (vectorised: a row-wise join cost 1 s at 20,000)
    part = d + "=" + frame[d].astype(str)
    conditions = part if conditions is None else conditions + ", " + part
conditions = conditions.to_numpy() if conditions is not None else None
method = "UMAP" if data.xy is not None and n >= 10 else "PCA"
fig = map_figure(data.layout, colour, numeric=numeric, hover=short_hover(frame["text"].to_numpy(), conditions),
                 title=f"{n} texts · {method} · {data.model}")
selected = show_map(fig, key="explore_map")
if n < 3:
    st.caption("Fewer than 3 texts: no clusters or pairwise metrics; the texts are listed below.")
    st.dataframe(frame, hide_index=True)

if selected:
    st.subheader(f"Selected: {len(selected)} text(s)")
    st.dataframe(frame.iloc[selected].assign(cluster=cluster_names[selected]), hide_index=True)


# -- analyses (one at a time; results cached per map) ---------------------------------------
@st.cache_data(show_spinner="Computing…", max_entries=32)
def _cached(kind: str, map_key: str, arg: str, _data) -> object:
    f, v = _data.items.frame, _data.vectors
    lab = _data.labels if _data.labels is not None else np.full(len(f), -1)
    if kind == "clusters":
        return cluster_summary(f["text"].tolist(), lab)
    if kind == "diversity":
        return diversity_table(f, v, _data.labels, by=arg or None)
    if kind == "probes":
        return probe_separability(f, v, _data.items.dimensions)
    if kind == "neardup":
        return near_duplicate_groups(f, v, _data.items.dimensions, threshold=float(arg))
    a, b = arg.split("\x1f")
    return condition_heatmap(f, v, a, b)


section = st.segmented_control(
    "Analyse", ["Clusters", "Diversity", "Heatmap", "Probes", "Near-duplicates", "Fill the gap"],
    default="Clusters", key="explore_section",
)
too_small = n < 3

if section == "Clusters":
    if data.labels is None or not (labels >= 0).any():
        st.info("No clusters: too few points, or no dense groups at this minimum cluster size (try a smaller one).")
    else:
        summary = _cached("clusters", job.key, "", data)
        st.dataframe(summary, hide_index=True)
        ids = [c for c in summary["cluster"] if c != "noise"]
        pick = st.selectbox("Cluster details", ids, key="explore_cluster")
        c = int(pick)
        st.text("Keywords: " + (summary.loc[summary["cluster"] == pick, "keywords"].item() or "(none)"))
        st.caption("Representative samples (closest to the cluster's centre)")
        st.dataframe(frame.iloc[representatives(data.vectors, labels, c)][["text", *dims]], hide_index=True)
        if dims:
            st.caption("Dominant condition values (lift = share in cluster / share overall)")
            st.dataframe(dominant_values(frame, labels, c, dims), hide_index=True)

elif section == "Diversity":
    groups = ["(overall)", "run", "source", *dims]
    by = st.selectbox("Per", groups, key="explore_div_by")
    if too_small:
        st.info("Diversity needs at least 3 texts; only counts are shown.")
    table = _cached("diversity", job.key, "" if by == "(overall)" else ("run_id" if by == "run" else by), data)
    st.dataframe(table, hide_index=True)
    st.caption(f"Self-BLEU on a random sample of at most {SELF_BLEU_SAMPLE} texts per row (self_bleu_n = texts used); "
               "higher Self-BLEU and mean cosine = less diverse; Vendi = effective number of distinct texts.")

elif section == "Heatmap":
    if len(dims) < 2:
        st.info("The heatmap needs two condition dimensions; these texts have " + (f"only '{dims[0]}'." if dims else "none."))
    else:
        c1, c2 = st.columns(2)
        dim_a = c1.selectbox("Rows", dims, key="explore_hm_a")
        dim_b = c2.selectbox("Columns", [d for d in dims if d != dim_a], key="explore_hm_b")
        cells = _cached("heatmap", job.key, f"{dim_a}\x1f{dim_b}", data)
        sim = cells.pivot(index=dim_a, columns=dim_b, values="mean_similarity")
        counts = cells.pivot(index=dim_a, columns=dim_b, values="count")
        st.caption("Colour: mean pairwise similarity within each cell (hot = collapsed; blank = fewer than 2 samples).")
        st.plotly_chart(heatmap_figure(sim, counts, dim_b, dim_a), key="explore_heatmap")
        flagged = cells[cells["collapsed"] | cells["empty"] | cells["thin"]]
        if not flagged.empty:
            st.warning(f"{int(cells['collapsed'].sum())} collapsed, {int(cells['empty'].sum())} empty and "
                       f"{int(cells['thin'].sum())} thin cell(s): see Fill the gap.")
            st.dataframe(flagged, hide_index=True)

elif section == "Probes":
    if not dims:
        st.info("These texts have no condition dimensions to probe.")
    elif too_small:
        st.info("Probes need more texts (at least 2 per value).")
    else:
        st.caption("Cross-validated accuracy of a linear probe predicting each dimension from the embedding. "
                   "Near chance: the generator ignored the dimension.")
        st.dataframe(_cached("probes", job.key, "", data), hide_index=True)

elif section == "Near-duplicates":
    threshold = st.slider("Cosine threshold", 0.80, 1.00, 0.95, 0.01, key="explore_dup_t")
    groups_df = _cached("neardup", job.key, f"{threshold:.2f}", data)
    if groups_df.empty:
        st.success(f"No near-duplicate pairs at cosine ≥ {threshold:.2f}.")
    else:
        spans = int(groups_df["spans_conditions"].sum())
        st.warning(f"{len(groups_df)} near-duplicate group(s); {spans} span different conditions.")
        st.dataframe(groups_df.drop(columns=["ids"]), hide_index=True)

elif section == "Fill the gap":
    recipe_hashes = sorted(set(runs.loc[runs["run_id"].isin(run_ids), "recipe_hash"]))
    versions = {v.recipe_hash: v.label for v in list_versions(store)}
    choices = [h for h in recipe_hashes if h in versions] or list(versions)
    if not choices:
        st.info("No saved recipe to build on: save a recipe in the Prompt Builder first.")
    else:
        parent = st.selectbox("Recipe to extend", choices, format_func=versions.get, key="explore_gap_recipe")
        recipe = load_version(store, parent)
        recipe_dims = [d.name for d in recipe.dimensions if d.kind == "categorical"]
        how = st.radio("Target", ["a cell (restrict values)", "new values", "selected texts as demonstrations"],
                       horizontal=True, key="explore_gap_how")
        changes: dict = {}
        if how.startswith("a cell"):
            picked = st.multiselect("Dimensions to restrict", recipe_dims, default=recipe_dims[:2], key="explore_gap_dims")
            restrict = {}
            for d in picked:
                vals = [v.text for v in recipe.dimension(d).all_values()]
                have = frame[d].value_counts().to_dict() if d in frame else {}
                restrict[d] = st.multiselect(f"{d} (samples so far per value in brackets)", vals, key=f"explore_gap_v_{d}",
                                             format_func=lambda v, have=have: f"{v} ({have.get(v, 0)})")
            changes = {"restrict": {d: v for d, v in restrict.items() if v}}
        elif how == "new values":
            d = st.selectbox("Dimension", recipe_dims, key="explore_gap_add_dim")
            new = st.text_input("New values (comma-separated)", key="explore_gap_add_vals")
            changes = {"add_values": {d: [v.strip() for v in new.split(",") if v.strip()]}} if d else {}
        else:
            if not selected:
                st.info("Select points on the map (box or lasso) first.")
            changes = {"demos": [(frame["text"].iloc[i], {k: str(frame[k].iloc[i]) for k in dims}) for i in selected[:20]]}
        if st.button("Create recipe version", key="explore_gap_go", type="primary"):
            try:
                target = fill_gap_recipe(recipe, **changes)
                saved = save_gap_version(store, parent, target, note=f"fill the gap ({how})")
                st.success(f"Saved {saved.label}. Plan and run it on the Generate page.")
            except (GapError, ValueError) as exc:
                st.error(f"Cannot build that recipe: {exc}")

if cov is not None:
    st.subheader("Coverage of the reference dataset")
    share = cov.uncovered_share
    st.metric("Reference points with no synthetic neighbour", f"{cov.n_uncovered} / {cov.n_reference}",
              f"{share:.0%}" if share is not None else None, delta_color="inverse")
    if cov.n_uncovered:
        ref_rows = np.flatnonzero(is_ref)[cov.uncovered]
        st.caption("Colour by 'coverage' to see these regions on the map. Uncovered reference texts:")
        st.dataframe(pd.DataFrame({"text": frame["text"].iloc[ref_rows].to_numpy(), "distance": cov.nearest_distance[cov.uncovered]}),
                     hide_index=True)
