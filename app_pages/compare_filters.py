"""Compare Filters: build curation pipelines, compare them side by side on one run, review, save, export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from components.compare_view import (
    distribution_figure,
    group_table,
    kept_dropped_figure,
    pipeline_column,
    sample_view,
    share_columns,
)
from components.explore_map import show_map
from components.filter_form import load_into_state, pipeline_editor
from resources import backend_secrets, get_embedder, get_local_server, get_map_jobs, get_score_cache, get_store
from services.core import settings
from services.curation.compare import compare, diversity_before_after, intended_distribution
from services.curation.export import curated_frame, data_card, hf_zip, to_csv, to_jsonl, to_parquet
from services.curation.judge_step import judge_backend_factory, score_missing
from services.curation.pipeline import FilterContext, Pipeline, PipelineError, load_batch
from services.curation.pipeline_store import (
    applications,
    apply_pipeline,
    list_pipelines,
    load_pipeline,
    save_pipeline,
)
from services.curation.review_store import edit_sample, review_decisions, sample_history, set_review
from services.explore.items import list_runs
from services.explore.map_jobs import MapRequest, start_map
from services.generation.backends import PRESETS, key_from

P = "compare_filters"
store = get_store()
cache = get_score_cache()

st.title("Compare Filters")
st.caption("Build curation pipelines, see side by side what each keeps, drops and why, review samples, and export the curated set.")

# -- which run ---------------------------------------------------------------------------------------
runs = list_runs(store)
if runs.empty:
    st.info("No runs yet. Generate a batch on the **Generate** page (the built-in model works offline), "
            "then come back here to filter it.", icon=":material/info:")
    st.stop()
labels = {r.run_id: f"{r.name} · {r.model} · {r.n_samples} samples" for r in runs.itertuples()}
with_samples = [i for i, n in enumerate(runs.n_samples) if n > 0]
run_id = st.selectbox("Run", list(labels), index=with_samples[0] if with_samples else 0, format_func=labels.get, key=f"{P}_run")
batch = load_batch(store, run_id)
if not len(batch):
    st.warning("This run has no successful samples to filter (all failed, or it has not produced any yet). "
               "Resume or rerun it on the Generate page.")
    st.stop()

embedder = get_embedder(settings.get("STUDIO_EMBEDDER"))
ctx = FilterContext(store=store, embedder=embedder, max_embed_inline=128)

# -- the map (embeddings + clusters), built in the background -----------------------------------------
map_data = None
with st.sidebar:
    build_map = st.toggle("Map and clusters for this run", value=False, key=f"{P}_map",
                          help="Embeds the samples (cached), lays them out with UMAP and clusters them, in the background. "
                               "Needed for per-cluster shares, the kept/dropped map and cluster review.")
if build_map:
    job = start_map(get_map_jobs(), store, embedder, MapRequest(run_ids=(run_id,)))
    if job.running:
        @st.fragment(run_every=1.5)
        def _map_progress() -> None:
            if not job.running:
                st.rerun()
            st.progress(job.fraction, text=f"Map: {job.stage} {job.message}")

        _map_progress()
    elif job.error:
        st.error(f"The map failed: {job.error}")
    else:
        map_data = job.result
clusters = None
if map_data is not None and map_data.labels is not None:
    clusters = dict(zip(map_data.items.ids, map_data.labels.tolist(), strict=True))

# -- pipelines, side by side ---------------------------------------------------------------------------
saved = list_pipelines(store)
saved_labels = {v.pipeline_hash: v.label for v in saved}
n_pipes = int(st.number_input("Pipelines to compare", min_value=2, max_value=4, value=2, key=f"{P}_n"))
columns = st.columns(n_pipes, border=True)
pipelines: list[Pipeline] = []
result_slots = []
for i, col in enumerate(columns):
    with col:
        # Results first, the editor below: the columns' figures stay level however long the editors are.
        result_slots.append(st.container())
        with st.expander("Steps and parameters", expanded=True):
            if saved:

                def _load(i: int = i) -> None:
                    h = st.session_state.get(f"{P}_p{i}_load")
                    if h:
                        p = load_pipeline(store, h)
                        load_into_state(i, p.name, p.canonical_steps())

                st.selectbox("Start from a saved version", [None, *saved_labels], format_func=lambda h: "—" if h is None else saved_labels[h],
                             key=f"{P}_p{i}_load", on_change=_load)
            raw = pipeline_editor(i, batch.dimensions)
        try:
            pipelines.append(Pipeline.parse(raw))
        except PipelineError as exc:
            with result_slots[-1]:
                st.subheader(raw.get("name") or f"Pipeline {i + 1}")
                for problem in exc.problems:
                    st.error(problem)
            pipelines.append(None)  # type: ignore[arg-type]

valid = [p for p in pipelines if p is not None]
if len(valid) < len(pipelines):
    st.warning("Fix the pipelines marked in red: the comparison shows the valid ones.")
if not valid:
    st.stop()

with st.spinner("Filtering…"):
    comparison = compare(batch, valid, ctx, cache, clusters=clusters, intended=intended_distribution(store, run_id))
names = comparison.names
slot_of = [slot for slot, p in zip(result_slots, pipelines, strict=True) if p is not None]
for k, slot in enumerate(slot_of):
    with slot:
        st.subheader(comparison.names[k])
        pipeline_column(comparison, k)

# -- the judge: scoring is an explicit, paid action ---------------------------------------------------
judge_steps = {(s.rubric, s.judge_model): s for p in valid for s in p.steps if s.kind == "judge"}
if judge_steps:
    with st.expander("LLM judge: score the samples not scored yet", expanded=True):
        st.caption("Scores are stored by (rubric, judge, text): a text is never scored twice. Failures are kept as unscored; run again to retry them.")
        rubric, label = next(iter(judge_steps))
        preset = st.selectbox("Backend", list(PRESETS), format_func=lambda k: PRESETS[k].label, key=f"{P}_judge_preset")
        model = st.text_input("Model", value=label.split("/", 1)[1] if "/" in label else PRESETS[preset].model, key=f"{P}_judge_model")
        base_url = st.text_input("Base URL", value=PRESETS[preset].base_url, key=f"{P}_judge_url", disabled=preset == "local")
        if f"{preset}/{model}" != label:
            st.info(f"The judge step's label is '{label}': scores are stored under that label.")
        if st.button(f"Score {len(batch)} samples (only those not scored yet)", key=f"{P}_judge_go"):
            factory = judge_backend_factory(preset, model, base_url=base_url or None, api_key=key_from(PRESETS[preset], backend_secrets()),
                                            local=get_local_server())
            with st.spinner("Scoring…"):
                try:
                    report = score_missing(store, factory, label, rubric, batch.texts)
                except Exception as exc:  # a sentence, never a traceback
                    st.error(f"Scoring failed: {type(exc).__name__}: {exc}")
                else:
                    (st.warning if report.failed else st.success)(report.summary())

tab_compare, tab_review, tab_out = st.tabs(["Compare", "Review", "Save, apply, export"])

# -- comparison details --------------------------------------------------------------------------------
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
        rows = np.array([pos[k] for k in map_data.items.ids])
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
    dims = list(dict.fromkeys(comparison.distribution["dimension"])) if len(comparison.distribution) else []
    for d in dims[:6]:
        st.plotly_chart(distribution_figure(comparison.distribution, d, names), key=f"{P}_dist_{d}")

    st.subheader("Kept by one, dropped by the other")
    pairs = [(a, b) for a in range(len(names)) for b in range(len(names)) if a != b]
    tabs = st.tabs([f"Kept by {names[a]}, dropped by {names[b]}" for a, b in pairs]) if pairs else []
    if not pairs:
        st.caption("Needs two valid pipelines.")
    for tab, (a, b) in zip(tabs, pairs, strict=True):
        with tab:
            diff = comparison.kept_by_dropped_by(a, b)
            st.caption(f"{diff.attrs['total']} sample(s)" + (" (first 500 shown)" if diff.attrs["total"] > len(diff) else ""))
            st.dataframe(diff, hide_index=True, width="stretch")

# -- review ----------------------------------------------------------------------------------------------
with tab_review:
    st.caption("Mark samples keep or drop (a 'Human review' step then keeps only what you kept); an edit is stored as a new version, the original is kept.")
    mode = st.radio("Review", ["One by one", "A cluster at a time"], horizontal=True, key=f"{P}_review_mode")
    sources = ["All samples", "Not reviewed yet", *[f"Dropped by {n}" for n in names], *[f"Kept by {n}" for n in names]]
    source = st.selectbox("Samples", sources, key=f"{P}_review_source")
    decisions = review_decisions(store, batch.keys)
    if source == "Not reviewed yet":
        pick = np.array([k not in decisions for k in batch.keys])
    elif source.startswith("Dropped by "):
        pick = ~comparison.results[names.index(source.removeprefix("Dropped by "))].kept
    elif source.startswith("Kept by "):
        pick = comparison.results[names.index(source.removeprefix("Kept by "))].kept
    else:
        pick = np.ones(len(batch), dtype=bool)
    chosen = np.flatnonzero(pick)

    if mode == "One by one":
        if not len(chosen):
            st.info("No samples in this selection.")
        else:
            pos_key = f"{P}_review_pos"
            at = min(st.session_state.get(pos_key, 0), len(chosen) - 1)
            j = int(chosen[at])
            key = batch.keys[j]
            st.markdown(f"**Sample {at + 1} of {len(chosen)}** · `{key}` · decision: **{decisions.get(key, 'not reviewed')}**")
            verdicts = [(r.pipeline.name, "kept" if r.kept[j] else f"dropped: {r.reason[j] or r.code[j]}") for r in comparison.results]
            sample_view(batch.texts[j], batch.conditions[j], verdicts)
            b1, b2, b3, b4 = st.columns(4)
            if b1.button("Previous", key=f"{P}_prev", disabled=at == 0, width="stretch"):
                st.session_state[pos_key] = at - 1
                st.rerun()
            if b2.button("Keep", key=f"{P}_keep", type="primary", width="stretch"):
                set_review(store, [key], "keep")
                st.session_state[pos_key] = min(at + 1, len(chosen) - 1)
                st.rerun()
            if b3.button("Drop", key=f"{P}_drop", width="stretch"):
                set_review(store, [key], "drop")
                st.session_state[pos_key] = min(at + 1, len(chosen) - 1)
                st.rerun()
            if b4.button("Next", key=f"{P}_next", disabled=at >= len(chosen) - 1, width="stretch"):
                st.session_state[pos_key] = at + 1
                st.rerun()
            with st.expander("Edit this sample"):
                new_text = st.text_area("Text", value=batch.texts[j], key=f"{P}_edit_{key}", height=160)
                if st.button("Save edit as a new version", key=f"{P}_save_edit"):
                    if not new_text.strip():
                        st.error("An edit cannot be empty: drop the sample instead.")
                    else:
                        version = edit_sample(store, key, new_text)
                        st.success(f"Saved as version {version}; the original is kept.")
                        st.rerun()
                history = sample_history(store, key)
                if len(history) > 1:
                    st.dataframe(pd.DataFrame(history, columns=["version", "text"]), hide_index=True, width="stretch")
    else:
        if clusters is None:
            st.info("Turn on 'Map and clusters' in the sidebar to review a cluster at a time.")
        else:
            cluster_of = np.array([clusters.get(k, -1) for k in batch.keys])
            present = sorted(set(cluster_of[chosen].tolist()))
            cl = st.selectbox("Cluster", present, format_func=lambda c: "noise" if c == -1 else f"cluster {c}", key=f"{P}_review_cluster")
            rows = [j for j in chosen.tolist() if cluster_of[j] == cl]
            table = pd.DataFrame({
                "sample_key": [batch.keys[j] for j in rows],
                "decision": [decisions.get(batch.keys[j], "—") for j in rows],
                "text": [batch.texts[j] for j in rows],
            })
            edited = st.data_editor(table, hide_index=True, width="stretch", disabled=["sample_key", "text"], key=f"{P}_cluster_editor",
                                    column_config={"decision": st.column_config.SelectboxColumn("decision", options=["—", "keep", "drop"])})
            c1, c2, c3 = st.columns(3)
            if c1.button("Keep the whole cluster", key=f"{P}_keep_cluster"):
                set_review(store, table["sample_key"].tolist(), "keep")
                st.rerun()
            if c2.button("Drop the whole cluster", key=f"{P}_drop_cluster"):
                set_review(store, table["sample_key"].tolist(), "drop")
                st.rerun()
            if c3.button("Save decisions", key=f"{P}_save_cluster"):
                for decision in ("keep", "drop"):
                    set_review(store, edited.loc[edited.decision == decision, "sample_key"].tolist(), decision)
                st.rerun()

# -- save, apply, export -------------------------------------------------------------------------------------
with tab_out:
    which = st.radio("Pipeline", names, horizontal=True, key=f"{P}_out_pipeline")
    result = comparison.results[names.index(which)]
    c1, c2 = st.columns(2)
    if c1.button("Save as a version", key=f"{P}_save"):
        v = save_pipeline(store, result.pipeline)
        st.success(f"Saved {v.label}.")
    if c2.button(f"Apply to this run ({result.n_kept} kept of {result.n})", key=f"{P}_apply", type="primary"):
        v = apply_pipeline(store, result)
        st.success(f"Applied {v.label}: verdicts are in table filter_verdicts (try it on the SQL page).")
    applied = applications(store, run_id)
    if len(applied):
        st.caption("Pipelines applied to this run")
        st.dataframe(applied, hide_index=True, width="stretch")

    st.subheader("Export the curated dataset")
    st.caption(f"{result.n_kept} samples kept by {which}, with their condition and provenance as columns; never an API key.")
    stem = f"{run_id}-{which}".replace(" ", "_")

    def _frame() -> pd.DataFrame:
        return curated_frame(store, result)

    def _card(frame: pd.DataFrame) -> str:
        return data_card(store, result, frame, diversity_before_after(comparison, None, cache))

    e1, e2, e3, e4 = st.columns(4)
    e1.download_button("JSONL", lambda: to_jsonl(_frame()), file_name=f"{stem}.jsonl", mime="application/jsonl", key=f"{P}_jsonl")
    e2.download_button("CSV", lambda: to_csv(_frame()), file_name=f"{stem}.csv", mime="text/csv", key=f"{P}_csv")
    e3.download_button("Parquet", lambda: to_parquet(_frame()), file_name=f"{stem}.parquet", key=f"{P}_parquet")
    e4.download_button("Hugging Face folder (zip)", lambda: hf_zip(f := _frame(), _card(f)), file_name=f"{stem}-hf.zip",
                       mime="application/zip", key=f"{P}_hf", help="Unzip, then datasets.load_dataset('<folder>')")
