"""Preparing a run: check its budget can be kept, save the recipe version and its plan, record the
run, build its backend."""

from __future__ import annotations

from collections.abc import Callable

from services.core.errors import StudioError
from services.core.store import Store
from services.generation.backends import BackendConfig, ChatBackend, request_params
from services.generation.connect import backend_factory, preset_config
from services.generation.local_server import LocalModelServer
from services.generation.presets import LOCAL
from services.generation.run_store import RunInfo, create_run, get_price, set_status, unique_run_name
from services.generation.runner import Outcome, RunSettings, run_blocking
from services.recipes.plan import make_plan
from services.recipes.plan_store import save_plan
from services.recipes.recipe import ModelSettings, Recipe
from services.recipes.version_store import save_version

# How to set a price, in the words of where the run was asked for.
PAGE_HOW = "Set its price in the price table above (USD per million input and output tokens)"
CLI_HOW = "Set its price with --price-in and --price-out (USD per million input and output tokens)"
ANY_HOW = ("Set its price (USD per million input and output tokens) in the price table on the Generate page, "
           "or with --price-in and --price-out on the command line")
FREE_NOTE = "The built-in model costs nothing: a budget cap cannot be exceeded there, so it never stops a run."


class PriceNeeded(StudioError):
    """A budget cap on a model with no price: the cap could never fire, so nothing is sent."""

    title = "The run was not started"


def check_budget(store: Store, preset: str, model: str, budget_usd: float | None,
                 how: str = ANY_HOW) -> str | None:
    """Refuse (``PriceNeeded``) a budget that could not be kept because the model has no price;
    return a note when the budget cannot be reached (the built-in model is free), else None."""
    if budget_usd is None:
        return None
    if preset == LOCAL:
        return FREE_NOTE
    if get_price(store, model) is None:
        raise PriceNeeded(
            f"No price is known for model '{model}', so a budget cap of ${budget_usd:.4g} could not be kept "
            f"(every request would count as $0). Nothing was sent. {how}, or run without a budget "
            "(a model you host yourself can be priced at 0)."
        )
    return None


def budget_refusal(store: Store, preset: str, model: str, budget_usd: float | None, how: str = ANY_HOW) -> str | None:
    """Why a run with this budget is refused (see ``check_budget``), or None when it may start."""
    try:
        check_budget(store, preset, model, budget_usd, how)
    except PriceNeeded as exc:
        return str(exc)
    return None


def budget_note(store: Store, preset: str, model: str) -> str | None:
    """What to say next to a budget before a run starts: the built-in model is free; a model with
    no price would have its run refused."""
    if preset == LOCAL:
        return FREE_NOTE
    if get_price(store, model) is None:
        return f"'{model}' has no price: a run with a budget will be refused until the price table has one."
    return None


def prepare_run(store: Store, recipe: Recipe, backend: BackendConfig, settings: RunSettings, *,
                model: ModelSettings | None = None, budget_usd: float | None = None, item_limit: int | None = None,
                name: str | None = None, price_how: str = ANY_HOW, rows: list[dict[str, str]] | None = None) -> str:
    """Write the recipe version, the plan (before anything is sent) and a planned run; returns its id.
    Raises ``PriceNeeded`` first, writing nothing, for a budget on a model with no price (its message
    ends with ``price_how``). ``rows``: the dataset rows an annotation recipe runs over
    (``services.data.rows.source_rows``); its templates are checked against their fields first."""
    check_budget(store, backend.preset, backend.model, budget_usd, price_how)
    plan = make_plan(recipe, rows=rows)  # before the version: a recipe that cannot be planned is not saved
    version = save_version(store, recipe)
    save_plan(store, plan)
    m = model or recipe.model
    return create_run(
        store, plan_id=plan.plan_id, recipe_hash=version.recipe_hash, backend=backend.preset,
        base_url=None if backend.preset == LOCAL else backend.base_url, model=backend.model,
        params=request_params(m.temperature, m.top_p, m.max_tokens, m.seed), settings=settings.to_json(),
        samples_per_item=m.samples_per_item, budget_usd=budget_usd, item_limit=item_limit,
        name=unique_run_name(store, name or recipe.name),  # two runs never share a name
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


def test_one_item(store: Store, recipe: Recipe, cfg: BackendConfig, local: LocalModelServer | None, *,
                  rows: list[dict[str, str]] | None = None) -> tuple[str, Outcome]:
    """Run the first plan item through every column on this backend, now, in this thread (the
    Builder's "Test one row"); it is a run like any other (named "test row"), so its prompts and
    answers are in the store. Returns the run id and how it ended."""
    run_id = prepare_run(store, recipe, cfg, RunSettings(concurrency=1, timeout_s=cfg.timeout_s), item_limit=1,
                         name=f"{recipe.name} test row", rows=rows)
    return run_id, run_blocking(store, run_id, run_backend(store, run_id, cfg, local, 1))
