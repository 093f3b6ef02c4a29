"""Evaluate: two or more runs (or runs and a dataset) side by side — diversity with intervals,
coverage, cost, faithfulness (classifier and judge), label noise, train on synthetic / test on real.

Everything is computed on one map of the union of the sets (built in the background like
Explore's, so every set shares one embedding space and one projection), once per map and choice
of options; a widget change only redraws.
"""

from __future__ import annotations

import streamlit as st

from components import cluster_names
from components import evaluate_sections as sections
from components.evaluate_judge import calibration_section, judge_section
from components.evaluate_maps import set_panels, show_panels
from components.evaluate_pick import NO_REFERENCE, SHIPPED, pick_sets, report_options
from components.job_progress import job_progress
from resources import backend_secrets, get_embedder, get_local_server, get_map_jobs, get_store
from services.core import settings
from services.evaluation import reference as refs
from services.evaluation.export import report_map, to_html, to_markdown
from services.evaluation.report import build_report, reference_vectors, set_frames, set_masks
from services.explore.items import list_datasets, list_runs
from services.explore.map_jobs import MapRequest, start_map
from services.explore.map_view import cluster_labels

st.title("Evaluate")
st.caption("Is the data faithful, diverse and useful — and is one version better than another?")
store = get_store()
runs = list_runs(store)
runs = runs[runs["n_samples"] > 0]
datasets = list_datasets(store)
if runs.empty:
    st.info("Nothing to evaluate yet: generate runs on the Generate page (the demo ships two).")
    st.stop()

run_ids, dataset_id = pick_sets(runs, datasets)
if len(run_ids) + bool(dataset_id) < 2:
    st.info("Choose two or more runs, or a run and a dataset, to compare.")
    st.stop()

embedder = get_embedder(settings.get("STUDIO_EMBEDDER"))
job = start_map(get_map_jobs(), store, embedder, MapRequest(run_ids=tuple(run_ids), dataset_id=dataset_id))
job.wait(2.0)
if job.running:
    job_progress(job, label="Embedding and mapping the sets (once; cached afterwards)")
    st.stop()
if job.error:
    st.error(f"The sets could not be embedded and mapped: {job.error}")
    st.stop()
data = job.result
items = data.items
for note in data.notes:
    st.info(note)

options = report_options({d: items.name(d) for d in items.dimensions}, datasets)

# One report per (map, options): a rerun after any other widget reads it, and its exports, from the session.
cache = st.session_state.setdefault("evaluate_reports", {})
cache_key = (job.key, options)
if cache_key not in cache:
    with st.spinner("Computing the report (once per choice)…"):
        if options.reference == SHIPPED:
            refs.load_shipped_embeddings(store)
            reference = refs.shipped_reference()
        elif options.reference == NO_REFERENCE:
            reference = None
        else:
            reference = refs.dataset_reference(store, options.reference, options.reference_label)
        ref_vectors, why = reference_vectors(store, embedder, reference) if reference else (None, None)
        if why:
            reference.notes.append(why)
        built = build_report(store, items, data.vectors, data.labels, label_dimension=options.label_column,
                             reference=reference, reference_vectors=ref_vectors)
        maps = report_map(data.layout, set_masks(items), data.labels, items.texts, method="UMAP" if data.xy is not None else "PCA",
                          caption=data.cluster_choice.caption() if data.cluster_choice else "")
        cache.clear()
        cache[cache_key] = (built, to_html(built, maps=maps), to_markdown(built, maps=maps))
report, report_html, report_md = cache[cache_key]
memo = st.session_state.setdefault("evaluate_figures", {})  # figures and the judge's plan, per report
if memo.get("report") != cache_key:
    memo.clear()
    memo["report"] = cache_key

masks = set_masks(items)
colour_by = st.radio("Colour the maps by", ["cluster", *(items.name(d) for d in report.dimensions)], horizontal=True,
                     key="evaluate_map_colour")
colour = cluster_labels(data).astype(str) if colour_by == "cluster" else items.frame[items.column(colour_by)].to_numpy()
method = "UMAP" if data.xy is not None else "PCA"
names = tuple(cluster_names.positions("evaluate", job.key, data, size_px=(320.0, 330.0), max_names=6))  # narrow panels
show_panels(sections.figure(memo, ("panels", colour_by, names), lambda: set_panels(
    data.layout, masks, colour, f"One {method} projection of all {len(items)} texts", names)), len(masks))
if data.cluster_choice is not None:
    st.caption(data.cluster_choice.caption())
cluster_names.choice_details(data)
cluster_names.llm_names_panel("evaluate", data, secrets=backend_secrets, local=get_local_server)

sections.diversity_section(report)
sections.coverage_section(report, memo)
sections.cost_section(report)
sections.faithfulness_section(report, memo)
judge_section(store, lambda: set_frames(items, report.dimensions), [items.name(d) for d in report.dimensions], memo,
              secrets=backend_secrets, local=get_local_server)
sections.echo_section(report)
sections.label_section(report)
sections.tstr_section(report, memo)
calibration_section(store, run_ids)

st.subheader("Export")
c1, c2 = st.columns(2)
c1.download_button("Report as HTML (self-contained)", report_html, "evaluation_report.html", "text/html", key="evaluate_html")
c2.download_button("Report as Markdown", report_md, "evaluation_report.md", "text/markdown", key="evaluate_md")
