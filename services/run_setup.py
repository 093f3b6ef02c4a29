"""Preparing a run: save the recipe version and its plan, record the run, build its backend."""

from __future__ import annotations

from collections.abc import Callable

from services.backends import LOCAL, BackendConfig, ChatBackend, OpenAIBackend, request_params
from services.local_server import LocalModelServer
from services.plan import make_plan
from services.plan_store import save_plan
from services.recipe import ModelSettings, Recipe
from services.recipe_versions import save_version
from services.run_store import create_run, set_status
from services.runner import RunSettings
from services.store import Store


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


def backend_factory(store: Store, run_id: str, cfg: BackendConfig, local: LocalModelServer | None,
                    concurrency: int = 8) -> Callable[[], ChatBackend]:
    """Called in the worker thread: starts the built-in server if needed (it may take seconds)."""

    def make() -> ChatBackend:
        c = cfg
        if cfg.preset == LOCAL:
            if local is None:
                raise RuntimeError("the built-in model server is not available in this process")
            c = cfg.with_base_url(local.ensure_running())
            set_status(store, run_id, "running", base_url=c.base_url)
        return OpenAIBackend(c, max_connections=max(8, concurrency))

    return make
