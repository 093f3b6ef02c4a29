"""Generate: run a recipe's plan live on the built-in model or any OpenAI-compatible backend."""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import streamlit as st

from components.generate_view import backend_form, forecast_view, live_view, params_form, run_label
from resources import backend_secrets, get_job_manager, get_local_server, get_store
from services.core.clock import utc_now
from services.demo.recipe_files import demo_recipe_files, load_demo_recipe
from services.generation.backends import LOCAL, PRESETS, BackendConfig, OpenAIBackend, describe_error, key_from, test_connection
from services.generation.forecast import preview_forecast, rough_forecast
from services.generation.proposals import accept, propose_values
from services.generation.run_setup import backend_factory, prepare_run
from services.generation.run_store import (
    RESUMABLE,
    Price,
    events,
    get_price,
    get_run,
    list_prices,
    list_runs,
    newest_samples,
    progress,
    set_prices,
)
from services.generation.runner import RunSettings
from services.recipes.plan import make_plan
from services.recipes.recipe import ModelSettings, Recipe, RecipeError
from services.recipes.sampling import plan_size, sample_conditions
from services.recipes.templating import TemplateProblem
from services.recipes.version_store import list_versions, load_version, save_version


@st.cache_data(max_entries=32, show_spinner=False)
def _pairwise_items(recipe_hash: str, body: str) -> int:
    """Items of a pairwise plan, computed once per recipe version."""
    return len(sample_conditions(Recipe.parse(json.loads(body))))


st.title("Generate")
st.caption("Run a recipe's plan on the built-in model or any OpenAI-compatible backend. Preview first, then generate; "
           "runs continue in the background while you use other pages.")
store, jobs, server = get_store(), get_job_manager(), get_local_server()

# 1. Recipe ---------------------------------------------------------------------------------
versions = {f"{v.label}": ("saved", v.recipe_hash) for v in list_versions(store)}
demos = {f"demo: {stem}": ("demo", stem) for stem in demo_recipe_files()}
sources = {**versions, **demos}
if not sources:
    st.info("No recipe yet: build one in the Prompt Builder.")
    st.stop()
choice = st.selectbox("Recipe", list(sources), key="generate_recipe")
kind, ref = sources[choice]
try:
    recipe = load_version(store, ref) if kind == "saved" else load_demo_recipe(ref)
    preview_plan = make_plan(recipe, limit=5)
except (RecipeError, TemplateProblem) as exc:
    st.error(f"This recipe cannot be planned: {exc}")
    st.stop()
size = plan_size(recipe)
if size.items is not None:
    n_items = size.items
elif size.materialisable:  # pairwise: the number of items is known once the cover is computed
    n_items = _pairwise_items(recipe.content_hash(), json.dumps(recipe.canonical()))
else:
    n_items = recipe.sampling.n_items
steps = [s.name for s in recipe.steps] + ["output"]
st.caption(f"{n_items:,} plan items · steps: {' → '.join(steps)}")

# 2. Backend --------------------------------------------------------------------------------
st.subheader("Backend")
secrets = backend_secrets()
found = {pr.key_env: bool(key_from(pr, secrets)) for pr in PRESETS.values() if pr.key_env}
chosen = backend_form(server.status, found)
is_local = chosen.preset.name == LOCAL
cfg = BackendConfig(chosen.preset.name, chosen.base_url, chosen.model, chosen.session_key or key_from(chosen.preset, secrets))
if st.button("Test connection", key="generate_test"):
    if is_local:
        with st.spinner("Starting the built-in model server…"):
            try:
                cfg = cfg.with_base_url(server.ensure_running())
            except Exception as exc:  # shown to the user in words
                st.error(f"The built-in model server did not start: {exc}")
    if not is_local or server.status == "ready":
        result = test_connection(cfg)
        (st.success if result.ok else st.error)(result.message)
        if result.models:
            st.text("Models: " + ", ".join(result.models[:50]))

# 3. Parameters -----------------------------------------------------------------------------
st.subheader("Parameters")
p = params_form(recipe.model)
model_settings = ModelSettings(temperature=p["temperature"], top_p=p["top_p"], max_tokens=p["max_tokens"], seed=p["seed"],
                               samples_per_item=p["samples_per_item"])
settings = RunSettings(concurrency=p["concurrency"], rpm=p["rpm"], tpm=p["tpm"], timeout_s=p["timeout_s"])
run_cfg = BackendConfig(cfg.preset, cfg.base_url, cfg.model, cfg.api_key, timeout_s=p["timeout_s"])


def start(limit: int | None, name: str) -> None:
    if not is_local and not (run_cfg.base_url and run_cfg.model):
        st.error("Give a base URL and a model name first.")
        return
    run_id = prepare_run(store, recipe, run_cfg, settings, model=model_settings, budget_usd=p["budget_usd"], item_limit=limit, name=name)
    jobs.start(run_id, backend_factory(store, run_id, run_cfg, server if is_local else None, settings.concurrency))
    st.session_state["generate_run"] = run_id
    st.session_state["generate_run_pick"] = run_id  # show the new run, whatever run was picked before
    if limit is not None:
        st.session_state["generate_preview_run"] = run_id


# 4. Preview and forecast -------------------------------------------------------------------
st.subheader("Preview and forecast")
with st.expander("Price table (USD per million tokens)"):
    prices = pd.DataFrame(list_prices(store), columns=["model", "input_per_mtok", "output_per_mtok"])
    edited = st.data_editor(prices, num_rows="dynamic", hide_index=True, key="generate_prices")
    if st.button("Save prices", key="generate_save_prices"):
        rows = edited.dropna(subset=["model"])
        set_prices(store, {str(r.model): Price(float(r.input_per_mtok or 0), float(r.output_per_mtok or 0)) for r in rows.itertuples()})
        st.success("Prices saved.")
price = Price() if is_local else get_price(store, run_cfg.model)
c1, c2 = st.columns([1, 3])
n_preview = c1.number_input("Preview items", 1, 20, 3, key="generate_n_preview")
if c2.button("Generate preview", key="generate_preview"):
    start(int(n_preview), "preview")
forecast_view("Rough forecast", rough_forecast(preview_plan.items, n_items, model_settings.samples_per_item, len(steps),
                                               model_settings.max_tokens, price))
preview_id = st.session_state.get("generate_preview_run")
if preview_id and not jobs.is_active(preview_id):
    concurrency = 1 if is_local else settings.concurrency  # llama.cpp decodes one request at a time
    forecast_view("Forecast from the preview", preview_forecast(store, preview_id, n_items, concurrency, price))
with st.expander("Rendered prompts of the first items"):
    for it in preview_plan.items[:3]:
        st.text("\n".join(f"[{m['role']}] {m['content']}" for m in it.messages))

# 5. Run ------------------------------------------------------------------------------------
st.subheader("Run")
if st.button("Start full run", type="primary", key="generate_start"):
    start(None, recipe.name)
runs = list_runs(store)
if runs:
    ids = [r.run_id for r in runs]
    current = st.session_state.get("generate_run")
    run_id = st.selectbox("Run", ids, index=ids.index(current) if current in ids else 0,
                          format_func=lambda i: run_label(next(r for r in runs if r.run_id == i)), key="generate_run_pick")
    run = get_run(store, run_id)
    active = jobs.is_active(run_id)
    b1, b2, _ = st.columns([1, 1, 4])
    if active and b1.button("Cancel", key="generate_cancel"):
        jobs.cancel(run_id)
        jobs.wait(run_id, timeout=2)
        st.rerun()
    if not active and run.status in RESUMABLE and b2.button("Resume", key="generate_resume"):
        preset_cfg = run_cfg if run.backend == cfg.preset else BackendConfig(run.backend, run.base_url or "", run.model)
        jobs.start(run_id, backend_factory(store, run_id, preset_cfg, server if run.backend == LOCAL else None,
                                           int(run.settings.get("concurrency", 4))))
        st.rerun()

    @st.fragment(run_every=1.0 if active else None)
    def live() -> None:
        r = get_run(store, run_id)
        live_view(r, progress(store, r), newest_samples(store, run_id), events(store, run_id), utc_now())
        if active and not jobs.is_active(run_id):
            st.rerun()  # the run ended: refresh the whole page once, which stops the polling

    live()
else:
    st.caption("No runs yet.")

# 6. Propose values -------------------------------------------------------------------------
with st.expander("Let the model propose values for a dimension"):
    dims = [d.name for d in recipe.dimensions if d.kind == "categorical" and not d.depends_on]
    if not dims:
        st.caption("This recipe has no independent categorical dimension.")
    else:
        d1, d2 = st.columns([2, 1])
        dim = d1.selectbox("Dimension", dims, key="generate_prop_dim")
        n_prop = d2.number_input("How many", 1, 50, 10, key="generate_prop_n")
        if st.button("Propose values", key="generate_propose"):
            with st.spinner("Asking the model…"):
                try:
                    pcfg = cfg.with_base_url(server.ensure_running()) if is_local else cfg

                    async def ask():
                        backend = OpenAIBackend(pcfg)
                        try:
                            return await propose_values(backend, recipe, dim, int(n_prop))
                        finally:
                            await backend.aclose()

                    st.session_state["generate_proposals"] = (dim, asyncio.run(ask()))
                except Exception as exc:  # shown in words, nothing lost
                    st.error(describe_error(exc, pcfg.base_url if not is_local else ""))
        got = st.session_state.get("generate_proposals")
        if got and got[0] == dim:
            props = got[1]
            st.dataframe(pd.DataFrame([{"value": x.text, "flag": x.status, "like": x.match, "score": round(x.score)} for x in props]),
                         hide_index=True, width="stretch")
            keep = st.multiselect("Accept", [x.text for x in props], default=[x.text for x in props if not x.flagged],
                                  key="generate_prop_accept")
            if keep and st.button("Save as a new recipe version", key="generate_prop_save"):
                parent = ref if kind == "saved" else None
                v = save_version(store, accept(recipe, dim, keep), parent_hash=parent, note=f"proposed values for {dim}")
                st.success(f"Saved {v.label}.")
