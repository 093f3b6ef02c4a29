"""Generate: run a recipe's plan live on the built-in model or any OpenAI-compatible backend.

Every model call goes through services.generation (connect, run_setup); this page only decides
what runs when, and the components draw it.
"""

from __future__ import annotations

from functools import partial

import streamlit as st

from components.generate_batch import batch_panel, resume_refusal
from components.generate_proposals import proposals_panel
from components.generate_recipe import recipe_picker, rendered_prompts
from components.generate_run import live_run, pick_run, rename_box, run_controls
from components.generate_view import backend_form, connection_result, forecast_view, params_form, price_editor
from components.grow_panel import GrowRequest, grow_panel
from resources import backend_secrets, get_batch_poller, get_embedder, get_grow_jobs, get_job_manager, get_local_server, get_store
from services.core.settings import get as setting
from services.generation.backends import BackendConfig, describe_error
from services.generation.connect import call, check
from services.generation.forecast import past_speed, preview_forecast, rough_forecast
from services.generation.presets import LOCAL, PRESETS, key_from
from services.generation.proposals import Proposal, accept, propose_values
from services.generation.run_setup import PAGE_HOW, budget_note, budget_refusal, prepare_run, resume_config, run_backend
from services.generation.run_store import Price, RunInfo, get_price, get_run, list_prices, list_runs, set_prices, shipped_prices
from services.generation.runner import RunSettings
from services.recipes.recipe import ModelSettings
from services.recipes.version_store import save_version

st.title("Generate")
st.caption("Run a recipe's plan on the built-in model or any OpenAI-compatible backend. Preview first, then generate; "
           "runs continue in the background while you use other pages.")
store, jobs, server = get_store(), get_job_manager(), get_local_server()

# 1. Recipe ---------------------------------------------------------------------------------
picked = recipe_picker(store)
if picked is None:
    st.stop()
recipe = picked.recipe

# 2. Backend --------------------------------------------------------------------------------
st.subheader("Backend")
secrets = backend_secrets()
found = {pr.key_env: bool(key_from(pr, secrets)) for pr in PRESETS.values() if pr.key_env}
chosen = backend_form(server.status, found)
is_local = chosen.preset.name == LOCAL
local = server if is_local else None
cfg = BackendConfig(chosen.preset.name, chosen.base_url, chosen.model, chosen.session_key or key_from(chosen.preset, secrets))
if st.button("Test connection", key="generate_test"):
    with st.spinner("Starting the built-in model server…" if is_local else "Connecting…"):
        connection_result(check(cfg, local))

# 3. Parameters -----------------------------------------------------------------------------
st.subheader("Parameters")
p = params_form(recipe.model, budget_note=budget_note(store, cfg.preset, cfg.model))
model_settings = ModelSettings(temperature=p["temperature"], top_p=p["top_p"], max_tokens=p["max_tokens"], seed=p["seed"],
                               samples_per_item=p["samples_per_item"])
settings = RunSettings(concurrency=p["concurrency"], rpm=p["rpm"], tpm=p["tpm"], timeout_s=p["timeout_s"])
run_cfg = BackendConfig(cfg.preset, cfg.base_url, cfg.model, cfg.api_key, timeout_s=p["timeout_s"])


def start(limit: int | None, name: str) -> None:
    """A new run on the backend the form shows."""
    if not is_local and not (run_cfg.base_url and run_cfg.model):
        st.error("Give a base URL and a model name first.")
        return
    if refusal := budget_refusal(store, run_cfg.preset, run_cfg.model, p["budget_usd"], PAGE_HOW):
        st.error(refusal)  # a budget on a model with no price: refused before anything is written or sent
        return
    run_id = prepare_run(store, recipe, run_cfg, settings, model=model_settings, budget_usd=p["budget_usd"],
                         item_limit=limit, name=name, rows=picked.rows)
    jobs.start(run_id, run_backend(store, run_id, run_cfg, local, settings.concurrency))
    st.session_state["generate_run"] = run_id
    st.session_state["generate_run_pick"] = run_id  # show the new run, whatever run was picked before
    if limit is not None:
        st.session_state["generate_preview_run"] = run_id


def resume(run: RunInfo) -> bool:
    """Resume on the run's own backend, base_url and model (the form may show another by now)."""
    if refusal := budget_refusal(store, run.backend, run.model, run.budget_usd, PAGE_HOW) or resume_refusal(store, run):
        st.error(refusal)
        return False
    keys = dict(secrets)
    if chosen.session_key and chosen.preset.key_env and (run.backend, run.base_url or "") == (cfg.preset, cfg.base_url):
        keys[chosen.preset.key_env] = chosen.session_key  # a key typed in this session for this very endpoint
    own = resume_config(run, secrets=keys)
    concurrency = int(run.settings.get("concurrency", 4))
    jobs.start(run.run_id, run_backend(store, run.run_id, own, server if run.backend == LOCAL else None, concurrency))
    return True


# 4. Preview and forecast -------------------------------------------------------------------
st.subheader("Preview and forecast")
price_editor(list_prices(store), shipped_prices(), on_save=partial(set_prices, store))
price = Price() if is_local else get_price(store, run_cfg.model)
parallel = 1 if is_local else settings.concurrency  # llama.cpp decodes one request at a time
c1, c2 = st.columns([1, 3])
n_preview = c1.number_input("Preview items", 1, 20, 3, key="generate_n_preview")
if c2.button("Generate preview", key="generate_preview"):
    start(int(n_preview), f"{recipe.name} preview")
rough = rough_forecast(
    picked.preview.items, picked.n_items, model_settings.samples_per_item, len(picked.steps), model_settings.max_tokens,
    price, speed=past_speed(store, cfg.preset, run_cfg.model, is_local), parallel=parallel, model=run_cfg.model,
    rpm=settings.rpm, tpm=settings.tpm)
forecast_view("Rough forecast", rough)
preview_id = st.session_state.get("generate_preview_run")
if preview_id and not jobs.is_active(preview_id):
    forecast_view("Forecast from the preview", preview_forecast(store, preview_id, picked.n_items, parallel, price,
                                                                rpm=settings.rpm, tpm=settings.tpm))
rendered_prompts(picked.preview)

# 5. Run ------------------------------------------------------------------------------------
st.subheader("Run")
if st.button("Start full run", type="primary", key="generate_start"):
    start(None, recipe.name)
runs = list_runs(store)
if runs:
    run = get_run(store, pick_run(runs))
    active = jobs.is_active(run.run_id)
    rename_box(store, run)
    action = run_controls(run, active)
    if action == "cancel":
        jobs.cancel(run.run_id)
        jobs.wait(run.run_id, timeout=2)
        st.rerun()
    elif action == "resume" and resume(run):
        st.rerun()
    live_run(store, jobs, run.run_id, active)
else:
    st.caption("No runs yet.")
batch_panel(store, secrets, rough, (cfg.preset, run_cfg.model), run if runs else None, get_batch_poller(),
            lambda c: prepare_run(store, recipe, c, settings, model=model_settings, name=f"{recipe.name} batch", price_how=PAGE_HOW))


# 6. Propose values -------------------------------------------------------------------------
def propose(dim: str, n: int) -> list[Proposal] | None:
    try:
        return call(cfg, local, lambda backend: propose_values(backend, recipe, dim, n))
    except Exception as exc:  # shown in words, nothing lost
        st.error(describe_error(exc, "" if is_local else cfg.base_url))
        return None


def save_accepted(dim: str, values: list[str]) -> str:
    note = f"proposed values for {dim}"
    return save_version(store, accept(recipe, dim, values), parent_hash=picked.parent_hash, note=note).label


proposals_panel(recipe, propose, save_accepted)

# 7. Grow toward a target -------------------------------------------------------------------
grow_panel(store, recipe, get_grow_jobs(), GrowRequest(run_cfg, settings, model_settings, p["budget_usd"], lambda r: run_backend(
    store, r, run_cfg, local, settings.concurrency), get_embedder(setting("STUDIO_EMBEDDER"))), price_how=PAGE_HOW)
