"""Compare Filters: build curation pipelines, compare them side by side on one run, review, save, export."""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.compare_view import distribution_figure, group_table, kept_dropped_figure, pipeline_column, share_columns
from components.explore_map import show_map
from components.export_panel import export_panel, save_apply_panel
from components.filter_form import keep_page_state, pipeline_editor, saved_version_picker
from components.job_progress import job_progress
from components.judge_panel import calibration_note, judge_panel
from components.review_panel import disagreements, review_panel
from components.run_picker import pick_run
from resources import backend_secrets, get_embedder, get_local_server, get_map_jobs, get_score_cache, get_store
from services.core import settings
from services.curation.compare import compare, diversity_before_after, intended_distribution, start_batch_map
from services.curation.pipeline import FilterContext, Pipeline, PipelineError, default_pipeline, load_batch
from services.curation.pipeline_store import list_pipelines, load_pipeline
from services.explore.items import list_runs

P = "compare_filters"
store = get_store()
cache = get_score_cache()
keep_page_state()  # what the user set here survives a visit to another page

st.title("Compare Filters")
st.caption("Build curation pipelines, see side by side what each keeps, drops and why, review samples, and export the curated set.")

# -- which run ---------------------------------------------------------------------------------------
runs = list_runs(store)
if runs.empty:
    st.info("No runs yet. Generate a batch on the **Generate** page (the built-in model works offline), "
            "then come back here to filter it.", icon=":material/info:")
    st.stop()
run_id = pick_run(runs, key=f"{P}_run")
batch = load_batch(store, run_id)
if not len(batch):
    st.warning("This run has no successful samples to filter (all failed, or it has not produced any yet). "
               "Resume or rerun it on the Generate page.")
    st.stop()
if batch.n_edited:
    st.caption(f"{batch.n_edited} sample(s) of this run were edited in review: the filters, the map and the metrics use the edited texts.")
embedder = get_embedder(settings.get("STUDIO_EMBEDDER"))
ctx = FilterContext(store=store, embedder=embedder, max_embed_inline=128)

# -- the map (embeddings + clusters), built in the background -----------------------------------------
map_data = clusters = None
build_map = st.sidebar.toggle("Map and clusters for this run", value=False, key=f"{P}_map",
                              help="Embeds the samples (cached), lays them out with UMAP and clusters them, in the background. "
                                   "Needed for per-cluster shares, the kept/dropped map and cluster review.")
if build_map:
    job = start_batch_map(get_map_jobs(), store, embedder, batch)
    if job.running:
        job_progress(job, label="Map:", every_s=1.5)
    elif job.error:
        st.error(f"The map failed: {job.error}")
    else:
        map_data = job.result
if map_data is not None and map_data.labels is not None:
    clusters = dict(zip(map_data.items.ids, map_data.labels.tolist(), strict=True))

# -- pipelines, side by side ---------------------------------------------------------------------------
saved_labels = {v.pipeline_hash: v.label for v in list_pipelines(store)}
n_pipes = int(st.number_input("Pipelines to compare", min_value=2, max_value=4, value=2, key=f"{P}_n"))
pipelines: list[Pipeline | None] = []
result_slots = []
for i, col in enumerate(st.columns(n_pipes, border=True)):
    with col:
        # Results first, the editor below: the columns' figures stay level however long the editors are.
        result_slots.append(st.container())
        with st.expander("Steps and parameters", expanded=True):
            saved_version_picker(i, saved_labels, lambda h: load_pipeline(store, h))
            raw = pipeline_editor(i, batch.dimensions, default_pipeline(i, batch), judge_note=calibration_note(store, batch.keys))
        try:
            pipelines.append(Pipeline.parse(raw))
        except PipelineError as exc:
            with result_slots[-1]:
                st.subheader(raw.get("name") or f"Pipeline {i + 1}")
                for problem in exc.problems:
                    st.error(problem)
            pipelines.append(None)

valid = [p for p in pipelines if p is not None]
if len(valid) < len(pipelines):
    st.warning("Fix the pipelines marked in red: the comparison shows the valid ones.")
if not valid:
    st.stop()
with st.spinner("Filtering…"):
    comparison = compare(batch, valid, ctx, cache, clusters=clusters, intended=intended_distribution(store, run_id))
names = comparison.names
for k, slot in enumerate(slot for slot, p in zip(result_slots, pipelines, strict=True) if p is not None):
    with slot:
        st.subheader(names[k])
        pipeline_column(comparison, k)

judge_panel(store, valid, batch.texts, prefix=P, secrets=backend_secrets, local=get_local_server)
tab_compare, tab_review, tab_out = st.tabs(["Compare", "Review", "Save, apply, export"])

with tab_compare:
    st.subheader("Diversity before and after")
    vectors = map_data.vectors if map_data is not None and map_data.items.ids == batch.keys else None
    bleu = st.checkbox("Include Self-BLEU (about a second per pipeline)", key=f"{P}_bleu")
    st.dataframe(diversity_before_after(comparison, vectors, cache, self_bleu=bleu), hide_index=True, width="stretch")
    if vectors is None:
        st.caption("Embedding metrics (mean cosine, Vendi) and cluster figures appear once the map is built (sidebar).")

    st.subheader("Map of kept and dropped points")
    if map_data is None:
        st.caption("Turn on 'Map and clusters' in the sidebar to see where each pipeline cuts.")
    else:
        which = st.radio("Pipeline", names, horizontal=True, key=f"{P}_map_pipeline")
        r = comparison.results[names.index(which)]
        pos = {k: n for n, k in enumerate(batch.keys)}
        rows = np.array([pos[k] for k in map_data.items.ids])  # the map's order, not the batch's
        show_map(kept_dropped_figure(map_data.layout, [batch.texts[j] for j in rows], r.code[rows], r.kept[rows], which), key=f"{P}_map_fig")

    st.subheader("Which conditions and clusters each pipeline hits")
    by_cond = group_table(comparison.by_condition, names)
    if by_cond.empty:
        st.caption("The samples of this run carry no condition.")
    else:
        st.dataframe(by_cond, hide_index=True, width="stretch", column_config=share_columns(by_cond))
    if clusters is not None:
        by_cluster = group_table(comparison.by_cluster, names).rename(columns={"value": "cluster"})
        st.dataframe(by_cluster, hide_index=True, width="stretch", column_config=share_columns(by_cluster))

    st.subheader("Intended vs remaining distribution")
    for d in list(dict.fromkeys(comparison.distribution.get("dimension", ())))[:6]:  # an empty frame has no columns
        st.plotly_chart(distribution_figure(comparison.distribution, d, names), key=f"{P}_dist_{d}")

    disagreements(comparison)

with tab_review:
    review_panel(store, comparison, clusters, prefix=P)

with tab_out:
    which = st.radio("Pipeline", names, horizontal=True, key=f"{P}_out_pipeline")
    result = comparison.results[names.index(which)]
    save_apply_panel(store, result, run_id, prefix=P)
    export_panel(store, comparison, result, cache, prefix=P)
