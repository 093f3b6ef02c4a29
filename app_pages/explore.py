"""Explore: the embedding map of runs or a dataset, its clusters, diversity and gaps.

The map is built in the background (embeddings cached by text, UMAP and clusters cached by the
set of samples and parameters); this script only reads the finished job, so changing the colour,
the hover or the selection never recomputes anything.
"""

from __future__ import annotations

import streamlit as st

from components import cluster_names
from components.explore_analyses import analyse, coverage_section
from components.explore_controls import map_settings, pick_source
from components.explore_gap import fill_the_gap
from components.explore_map import colour_controls, map_figure, map_notes, map_preview, selection_table, show_map
from components.explore_selection import selection_actions
from components.explore_state import keep_page_state
from components.job_progress import job_progress
from resources import backend_secrets, get_embedder, get_local_server, get_map_jobs, get_store
from services.curation.pipeline_store import latest_verdicts
from services.curation.selection_actions import tags_of_runs
from services.explore import map_view
from services.explore.items import list_datasets, list_runs
from services.explore.map_jobs import start_map

st.title("Explore")
store = get_store()
keep_page_state()  # the runs and settings chosen here survive a visit to another page

# -- what to map ---------------------------------------------------------------------------
runs = list_runs(store)
runs = runs[runs["n_samples"] > 0]
datasets = list_datasets(store)
if runs.empty and datasets.empty:
    st.info("Nothing to map yet: generate a run on the Generate page, or import a dataset on the SQL page.")
    st.stop()

run_ids, dataset_id = pick_source(runs, datasets)
options = map_settings(datasets)
if not run_ids and not dataset_id:
    st.info("Choose one or more runs to map.")
    st.stop()

# -- the map job: ready at once when cached, else progress with a PCA preview ----------------
job = start_map(get_map_jobs(), store, get_embedder(options.embedder), options.request(run_ids, dataset_id))
job.wait(2.0)
if job.running:
    job_progress(job, extra=map_preview)
    st.stop()
if job.error:
    st.error(f"The map could not be built: {job.error}")
    st.stop()

data = job.result
items = data.items
frame, dims = items.frame, items.dimensions
for note in data.notes:
    st.info(note)
if frame.empty:
    st.warning("No texts to map: the selection has no successful samples with text.")
    st.stop()

# -- the map -------------------------------------------------------------------------------
clusters = map_view.cluster_names(map_view.cluster_labels(data))
reference = map_view.reference_mask(frame)
mapped = map_view.mapped_runs(frame)
verdicts = latest_verdicts(store, mapped) if mapped else {}
tags = tags_of_runs(store, mapped)
options = map_view.colour_options(dims, has_verdicts=bool(verdicts), has_reference=bool(reference.any()), has_tags=bool(tags))
colour_choice, radius, show_names = colour_controls(map_view.option_labels(options, items), coverage_radius=bool(reference.any()))
cov = map_view.reference_coverage(data, reference, radius)
colouring = map_view.colour_by(colour_choice, frame, clusters=clusters, run_names=items.run_names, verdicts=verdicts,
                               reference=reference, cov=cov, tags=tags)
# Large maps: hovers without texts, and past DISPLAY_MAX points a density-thinned drawing.
hover = (map_view.hover_labels(frame["text"].to_numpy(), map_view.condition_lines(frame, dims, items.names))
         if len(frame) <= map_view.hover_text_max() else None)
drawn = map_view.display_rows(data.layout)
thinned = len(drawn) < len(frame)
names = cluster_names.positions("explore", job.key, data) if show_names else []
fig = map_figure(data.layout, colouring, hover=hover, title=map_view.map_title(data), rows=drawn if thinned else None, names=names)
selected = show_map(fig, key="explore_map", region_xy=data.layout if thinned else None, click=True)
n_clusters = len(set(map_view.cluster_labels(data).tolist()) - {-1})
map_notes(len(frame), len(drawn), hover is not None, data.cluster_choice.caption() if data.cluster_choice else "",
          len(names) if show_names else None, n_clusters)
cluster_names.choice_details(data, "Set a min cluster size, min samples or a selection in Map settings to choose yourself.")
cluster_names.llm_names_panel("explore", data, secrets=backend_secrets, local=get_local_server)
if len(frame) < 3:
    st.caption("Fewer than 3 texts: no clusters or pairwise metrics; the texts are listed below.")
    st.dataframe(map_view.display_frame(items, frame), hide_index=True)
selection_table(items, selected, clusters)
selection_actions(store, items, selected)  # tag, drop in review, export, generate more like these

# -- analyses (one at a time; each cached per map) -------------------------------------------
section = st.segmented_control(
    "Analyse", ["Clusters", "Diversity", "Heatmap", "Probes", "Near-duplicates", "Fill the gap"],
    default="Clusters", key="explore_section",
)
# Clicking the active section deselects it: keep showing the last one rather than an empty page.
section = st.session_state["explore_last_section"] = section or st.session_state.get("explore_last_section", "Clusters")
if section == "Fill the gap":
    fill_the_gap(store, runs, run_ids, items, selected)
elif section:
    analyse(store, data, job.key, section)

if cov is not None:
    coverage_section(frame, reference, cov)
