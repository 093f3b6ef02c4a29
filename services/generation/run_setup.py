"""Preparing a run: save the recipe version and its plan, record the run, build its backend."""

from __future__ import annotations

from collections.abc import Callable

from services.core.store import Store
from services.generation.backends import LOCAL, BackendConfig, ChatBackend, request_params
from services.generation.connect import backend_factory, preset_config
from services.generation.local_server import LocalModelServer
from services.generation.run_store import RunInfo, create_run, set_status
from services.generation.runner import RunSettings
from services.recipes.plan import make_plan
from services.recipes.plan_store import save_plan
from services.recipes.recipe import ModelSettings, Recipe
from services.recipes.version_store import save_version


def prepare_run(store: Store, recipe: Recipe, backend: BackendConfig, settings: RunSettings, *,
                model: ModelSettings | None = None, budget_usd: float | None = None, item_limit: int | None = None,
                name: str | None = None) -> str:
    """Write the recipe version, the plan (before anything is sent) and a planned run; returns its id."""
    version = save_version(store, recipe)
    plan = make_plan(recipe)
    save_plan(store, plan)
    m = model or recipe.model
    return create_run(
        store, plan_id=plan.plan_id, recipe_hash=version.recipe_hash, backend=backend.preset,
        base_url=None if backend.preset == LOCAL else backend.base_url, model=backend.model,
        params=request_params(m.temperature, m.top_p, m.max_tokens, m.seed), settings=settings.to_json(),
        samples_per_item=m.samples_per_item, budget_usd=budget_usd, item_limit=item_limit, name=name,
    )


def run_backend(store: Store, run_id: str, cfg: BackendConfig, local: LocalModelServer | None,
                concurrency: int = 8) -> Callable[[], ChatBackend]:
    """The worker's backend factory: the built-in server (if any) starts in the worker thread, and
    its URL is recorded on the run."""

    def record(resolved: BackendConfig) -> None:
        if cfg.preset == LOCAL:
            set_status(store, run_id, "running", base_url=resolved.base_url)

    return backend_factory(cfg, local, max_connections=max(8, concurrency), on_connected=record)


def resume_config(run: RunInfo, *, secrets: dict | None = None, timeout_s: float | None = None,
                  max_retries: int | None = None) -> BackendConfig:
    """A resume uses the run's own backend, base_url and model, with the key its preset names
    (from st.secrets or the environment): never whatever a form shows now."""
    settings = run.settings or {}
    return preset_config(run.backend, model=run.model, base_url=run.base_url or None, secrets=secrets,
                         timeout_s=timeout_s if timeout_s is not None else float(settings.get("timeout_s", 60.0)),
                         max_retries=max_retries if max_retries is not None else int(settings.get("max_retries", 2)))
