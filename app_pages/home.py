"""Home: what the studio does, the state of the database, backends, warm-up, and a guided tour."""

from __future__ import annotations

import streamlit as st

from components.flash import flash, show_flash
from resources import get_local_server, get_store
from services.core import settings
from services.core.overview import overview
from services.demo.recipe_files import demo_available
from services.generation.presets import PRESETS, key_from

store = get_store()

st.title("Synthetic Data Studio")
st.markdown(
    "Build **conditional prompts** (task, dimensions, demonstrations, template) and sample them into a plan.  \n"
    "**Generate** batches live from the built-in offline model or any OpenAI-compatible backend.  \n"
    "**See** the outputs as an embedding map, **compare** curation filters, and **query** everything with SQL."
)

ov = overview(store)
c = st.columns(4)
c[0].metric("Recipes", ov.recipes, help=f"{ov.recipe_versions} saved versions")
c[1].metric("Runs", ov.runs, help=f"{ov.running} running, {ov.interrupted} interrupted")
c[2].metric("Samples", f"{ov.samples:,}", help=f"{ov.failed_samples:,} failed generations kept with their errors")
c[3].metric("Datasets", ov.datasets, help=f"{ov.dataset_rows:,} imported rows")
if ov.interrupted:
    st.warning(f"{ov.interrupted} run(s) were interrupted (the studio stopped while they ran). Resume them on the Generate page.")

left, right = st.columns([3, 2])
with left:
    st.subheader("Guided tour")
    if demo_available():
        if st.button("Load the demo", type="primary", icon=":material/play_arrow:",
                     help="Adds the demo recipes and two demo runs (generated offline by the built-in model). Loading twice adds nothing."):
            from services.demo.loader import load_demo

            with st.spinner("Loading the demo…"):
                report = load_demo(store)
            if report.nothing_new:
                flash("home_flash", "info", "The demo is already loaded: nothing was added.")
            else:
                flash("home_flash", "success", f"Loaded {report.added.get('runs', 0)} runs and "
                      f"{report.added.get('samples', 0):,} samples. Follow the tour below.")
            st.rerun()  # the counts above change
        show_flash("home_flash")
    else:
        st.caption("Demo runs are not shipped in this checkout (data/demo/ is missing); the demo recipes are still in the Prompt Builder.")
    steps = [
        ("app_pages/prompt_builder.py", "Prompt Builder", "Open a demo recipe (e.g. *restaurant_reviews*): look at the dimensions, the label-dependent subtopic, and the plan size; preview items exactly as they will be sent."),
        ("app_pages/generate.py", "Generate", "Pick the built-in model, preview a few items and the forecast, then generate five samples and watch them arrive."),
        ("app_pages/explore.py", "Explore", "Map the two demo runs: the AttrPrompt-style run spreads over more clusters than the plain one. Check the collapse heatmap and the probes."),
        ("app_pages/compare_filters.py", "Compare Filters", "Compare two pipelines on a demo run: what each keeps, and which conditions or clusters a filter wipes out."),
        ("app_pages/sql.py", "SQL", "Run an example query, e.g. samples per condition value, and chart it."),
    ]
    for n, (path, label, what) in enumerate(steps, 1):
        st.page_link(path, label=f"{n}. {label}")
        st.caption(what)

with right:
    st.subheader("Backends")
    server = get_local_server()
    st.write(f"**{PRESETS['local'].label}**: {server.status}")
    st.caption("SmolLM2-135M: for demos and smoke tests, not datasets that matter. It starts on first use.")
    for name in ("openai", "vllm", "ollama"):
        p = PRESETS[name]
        has_key = bool(key_from(p))
        st.write(f"**{p.label}**: " + ("key found in the environment or secrets" if has_key else
                                        ("no key configured" if p.needs_key else f"`{p.base_url}`")))
    st.subheader("Warm-up")
    if not settings.flag("STUDIO_WARMUP"):
        st.caption("Warm-up is off (STUDIO_WARMUP=0): the first map pays model loading and UMAP compilation.")
    else:
        from resources import get_warmup

        warm = get_warmup()

        def show_warmup() -> None:
            for s in warm.status():
                icon = {"ready": ":material/check_circle:", "running": ":material/hourglass_top:",
                        "failed": ":material/error:"}.get(s.state, ":material/schedule:")
                took = f" in {s.seconds:.0f} s" if s.seconds is not None else ""
                st.markdown(f"{icon} {s.label}: **{s.state}**{took}")
                if s.message:
                    st.caption(s.message)
            if warm.done:
                st.caption("The first map will not pay the one-off compilation.")

        if warm.done:  # nothing left to watch: no polling
            show_warmup()
        else:
            @st.fragment(run_every=2.0)
            def warmup_status() -> None:
                show_warmup()

            warmup_status()
