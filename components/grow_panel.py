"""Generate: grow toward a target — the loop's form, its live progress (round k of K), the
convergence chart, the per-cell counts per round, and links that open the rounds in Explore or
Evaluate. The loop itself is ``services.evaluation.grow_loop`` (each round a normal run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components.run_picker import pick_runs
from services.core.errors import StudioError
from services.core.store import Store
from services.evaluation.grow import parse_shares
from services.evaluation.grow_loop import GrowJobs, GrowSpec, grow_report, list_loops, loop_fraction, loop_rounds
from services.explore.items import list_runs
from services.generation.backends import BackendConfig
from services.generation.run_setup import ANY_HOW
from services.generation.runner import RunSettings
from services.recipes.recipe import ModelSettings, Recipe

LOOP_KEY = "generate_grow_loop"


@dataclass(frozen=True)
class GrowRequest:
    """What the page's forms say: the backend, the run settings, the model and the budget (for
    the whole loop), how to build a round's backend, and the embedder that finds collapsed cells."""

    cfg: BackendConfig
    settings: RunSettings
    model: ModelSettings
    budget_usd: float | None
    backend_for: Callable[[str], Callable[[], Any]]
    embedder: Any | None


def grow_panel(store: Store, recipe: Recipe, grow: GrowJobs, request: GrowRequest, *, price_how: str = ANY_HOW) -> None:
    st.subheader("Grow toward a target")
    st.caption("Rounds of generation, each aimed at the cells (combinations of values) furthest below their target share; "
               "collapsed cells and cells a faithfulness judge found unfaithful count for less. Each round is a run like any "
               "other (budget, resume, provenance); the budget above caps the whole loop. Starting the same loop again "
               "continues it: finished rounds are kept, an interrupted one resumes.")
    dims = [d.name for d in recipe.dimensions if d.kind == "categorical"]
    if recipe.source is not None or not dims:
        st.info("This recipe has no categorical dimension (or annotates a dataset's rows), so it has no cells to grow toward.")
    else:
        _form(store, recipe, dims, grow, request, price_how)
    _loops(store, grow)


def _form(store: Store, recipe: Recipe, dims: list[str], grow: GrowJobs, request: GrowRequest, price_how: str) -> None:
    c1, c2 = st.columns([2, 3])
    # One choice per recipe: another recipe's dimensions are not this one's options.
    cells = c1.multiselect("Cells from", dims, default=dims[:2], key=f"generate_grow_dims:{recipe.name}",
                           help="The dimensions whose combinations of values are the cells (default: the first two).")
    shares_text = c2.text_area("Target shares (empty: uniform over the possible cells)", key="generate_grow_shares", height=68,
                               placeholder=f"{dims[0]}=" + ",".join(f"{v.key}:…" for v in recipe.dimension(dims[0]).all_values()[:3]))
    runs = list_runs(store)
    runs = runs[runs["n_samples"] > 0]
    base = pick_runs(runs, key="generate_grow_base", default=[], label="Count these runs as the start") if not runs.empty else []
    c1, c2, c3, c4 = st.columns(4, vertical_alignment="bottom")
    rounds = int(c1.number_input("Rounds", 1, 20, 3, key="generate_grow_rounds"))
    batch = int(c2.number_input("Samples per round", 1, 500, 4, key="generate_grow_batch"))
    tolerance = float(c3.number_input("Stop within distance", 0.0, 0.9, 0.05, 0.01, key="generate_grow_tol"))
    if c4.button("Grow", type="primary", key="generate_grow_start"):
        if request.cfg.preset != "local" and not (request.cfg.base_url and request.cfg.model):
            st.error("Give a base URL and a model name first.")
            return
        try:
            spec = GrowSpec(rounds=rounds, batch=batch, dimensions=tuple(cells) or None, shares=parse_shares(shares_text) or None,
                            base_runs=tuple(base), tolerance=tolerance, budget_usd=request.budget_usd)
            job = grow.start(recipe, spec, request.cfg, request.settings, request.backend_for, model=request.model,
                             embedder=request.embedder, price_how=price_how)
        except StudioError as exc:  # bad input: a sentence, nothing written
            st.error(str(exc))
            return
        st.session_state[LOOP_KEY] = job.loop_id


def _loops(store: Store, grow: GrowJobs) -> None:
    loops = list_loops(store)
    if not loops:
        return
    ids = [lp["loop"] for lp in loops]
    wanted = st.session_state.get(LOOP_KEY)
    labels = {lp["loop"]: f"{lp['loop']} · {lp['last_run'].rsplit(' ', 2)[0]} · {lp['rounds_started']} of {lp['grow']['rounds']} round(s)"
              for lp in loops}
    loop = st.selectbox("Loop", ids, index=ids.index(wanted) if wanted in ids else 0, format_func=labels.get,
                        key="generate_grow_pick")
    job = grow.get(loop)
    asked = next(lp["grow"]["rounds"] for lp in loops if lp["loop"] == loop)
    if job is not None and job.running:
        _live(store, grow, loop, asked)
    elif job is not None and job.outcome is not None:
        show = st.success if job.outcome.status in ("reached", "finished") else st.warning
        show(job.outcome.message)
    if job is not None:
        for note in job.messages[-3:]:
            st.caption(note)
    _report(store, loop)


def _live(store: Store, grow: GrowJobs, loop: str, asked: int) -> None:
    if st.button("Stop the loop", key="generate_grow_cancel"):
        grow.cancel(loop)

    @st.fragment(run_every=1.0)
    def poll() -> None:
        job = grow.get(loop)
        if job is None or not job.running:
            st.rerun()
        fraction, k = loop_fraction(store, loop_rounds(store, loop), asked)
        st.progress(fraction, text=f"Round {k} of {asked}" + (f" · run {job.current_run}" if job.current_run else ""))

    poll()


def convergence_figure(dist: pd.DataFrame, tolerance: float) -> go.Figure:
    """Distance to the target per round (round 0: the starting runs), with the tolerance."""
    fig = go.Figure(go.Scatter(x=dist["round"].tolist(), y=dist["distance"].tolist(), mode="lines+markers", name="distance",
                               customdata=dist["samples"].tolist(), hovertemplate="round %{x}: %{y:.3f} (%{customdata} samples)<extra></extra>"))
    if tolerance > 0:
        fig.add_hline(y=tolerance, line_dash="dash", line_color="grey", annotation_text=f"stop at {tolerance:g}")
    fig.update_layout(title="Distance to the target, round by round (total variation)", height=280,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=False)
    fig.update_xaxes(title="round", dtick=1)
    fig.update_yaxes(title="distance", rangemode="tozero")
    return fig


def _report(store: Store, loop: str) -> None:
    rounds = loop_rounds(store, loop)
    if not rounds:
        return
    try:
        report = grow_report(store, loop, rounds)
    except StudioError as exc:
        st.warning(str(exc))
        return
    dist = report.distances.dropna(subset=["distance"])
    if len(dist):
        st.plotly_chart(convergence_figure(dist, float(rounds[-1].grow.get("tolerance", 0.0))), key="generate_grow_chart")
    st.dataframe(report.distances, hide_index=True, width="content")
    st.markdown("**Samples per cell after each round**")
    st.dataframe(report.cells, hide_index=True)
    with st.expander("What each round planned"):
        st.dataframe(report.planned if not report.planned.empty else pd.DataFrame({"cell": []}), hide_index=True)
    for note in report.notes:
        st.caption(note)
    g = rounds[-1].grow
    run_ids = [*g.get("base_runs", []), *(r.run_id for r in rounds)]
    st.caption("Rounds: " + ", ".join(f"{r.round}: {r.run_id} ({r.status})" for r in rounds))
    c1, c2 = st.columns(2)
    if c1.button("Open the loop's runs in Explore", key="generate_grow_explore"):
        st.session_state["explore_kind"] = "Runs"
        st.session_state["explore_runs"] = run_ids
        st.switch_page("app_pages/explore.py")
    if c2.button("Compare them on Evaluate", key="generate_grow_evaluate"):
        st.session_state["evaluate_runs"] = run_ids
        st.switch_page("app_pages/evaluate.py")
