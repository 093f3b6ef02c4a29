"""Headless command line: run a recipe file against any backend into a studio database.

    python -m services run recipe.yaml --backend local --db data/studio.duckdb
    python -m services run recipe.yaml --backend openai --model gpt-4o-mini --budget 0.50
    python -m services run recipe.yaml --backend vllm --model my-model --price-in 0 --price-out 0 --budget 1
    python -m services run --resume run-0123abcd --db data/studio.duckdb
    python -m services grow recipe.yaml --cells label,cuisine --rounds 3 --batch 4   (see cli/grow.py)

The key comes from the environment (the preset's variable, or --api-key-env); never from a flag,
so it does not end up in shell history or process listings.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from services.cli.common import open_store, read_recipe
from services.core.errors import StudioError
from services.core.store import Store
from services.generation.backends import BackendConfig
from services.generation.connect import preset_config
from services.generation.presets import LOCAL, PRESETS
from services.generation.run_store import Price, get_price, get_run, mark_interrupted, progress, set_price
from services.generation.runner import RunSettings, run_blocking


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services", description="Synthetic Data Studio, headless.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="generate a recipe's plan against a backend (or resume a run)")
    run.add_argument("recipe", nargs="?", type=Path, help="recipe YAML file")
    run.add_argument("--resume", metavar="RUN_ID", help="resume this run instead of starting one")
    run.add_argument("--backend", default=LOCAL, choices=sorted(PRESETS), help="backend preset (default: built-in local model)")
    run.add_argument("--base-url", help="override the preset's base_url")
    run.add_argument("--model", help="model name (default: the preset's)")
    run.add_argument("--api-key-env", help="environment variable holding the key (default: the preset's)")
    run.add_argument("--db", type=Path, help="database file (default: $STUDIO_DB or data/studio.duckdb)")
    run.add_argument("--limit", type=int, help="only the first N plan items")
    run.add_argument("--samples-per-item", type=int)
    run.add_argument("--temperature", type=float)
    run.add_argument("--max-tokens", type=int)
    run.add_argument("--seed", type=int)
    run.add_argument("--concurrency", type=int, default=4)
    run.add_argument("--rpm", type=int)
    run.add_argument("--tpm", type=int)
    run.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    run.add_argument("--max-retries", type=int, default=2)
    run.add_argument("--budget", type=float, help="stop when this many USD are spent (the model needs a price)")
    run.add_argument("--price-in", type=float, metavar="USD", help="price of the run's model per million input tokens "
                     "(saved in the database's price table; default: the table's, shipped for common hosted models)")
    run.add_argument("--price-out", type=float, metavar="USD", help="price of the run's model per million output tokens")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    from services.cli.curate import add_parser as add_curate

    add_curate(sub)
    from services.cli.batch import add_parser as add_batch

    add_batch(sub)
    from services.cli.embed import add_parsers as add_embed

    add_embed(sub)
    from services.cli.grow import add_parser as add_grow

    add_grow(sub)
    return parser


def _config(args: argparse.Namespace) -> BackendConfig:
    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    return preset_config(args.backend, model=args.model, base_url=args.base_url, api_key=key,
                         timeout_s=args.timeout, max_retries=args.max_retries)


def _apply_price(store: Store, args: argparse.Namespace, preset: str, model: str) -> str | None:
    """Save --price-in/--price-out for the run's model; returns a complaint, or None."""
    if args.price_in is None and args.price_out is None:
        return None
    if preset == LOCAL:
        print("The built-in model costs nothing: --price-in/--price-out are ignored.", file=sys.stderr)
        return None
    if min(v for v in (args.price_in, args.price_out) if v is not None) < 0:
        return "--price-in and --price-out cannot be negative."
    known = get_price(store, model)
    if known is None and (args.price_in is None or args.price_out is None):
        return f"Model '{model}' has no price yet: give both --price-in and --price-out."
    price = Price(args.price_in if args.price_in is not None else known.input_per_mtok,
                  args.price_out if args.price_out is not None else known.output_per_mtok)
    set_price(store, model, price)
    print(f"price of {model}: ${price.input_per_mtok:g} in, ${price.output_per_mtok:g} out per million tokens", flush=True)
    return None


def _budget_gate(store: Store, args: argparse.Namespace, preset: str, model: str, budget: float | None) -> bool:
    """Save the flags' price, then refuse (False, said on stderr) a budget that could not be kept:
    a cap on a model with no price could never fire. Runs before anything is written or sent."""
    from services.generation.run_setup import CLI_HOW, PriceNeeded, check_budget

    problem, note = _apply_price(store, args, preset, model), None
    if problem is None:
        try:
            note = check_budget(store, preset, model, budget, CLI_HOW)
        except PriceNeeded as exc:
            problem = str(exc)
    if problem is not None:
        print(problem, file=sys.stderr)
        return False
    if note:
        print(note, flush=True)
    return True


def cmd_run(args: argparse.Namespace) -> int:
    from services.generation.local_server import LocalModelServer
    from services.generation.run_setup import prepare_run, resume_config, run_backend

    store = open_store(args.db)
    if store is None:
        return 2
    mark_interrupted(store)
    if args.resume:
        try:
            run = get_run(store, args.resume)
        except KeyError:
            print(f"No run {args.resume} in {store.path}.", file=sys.stderr)
            return 2
        # a resume uses the run's own backend and model unless the command names another one
        explicit = args.base_url or args.backend != LOCAL or args.model
        cfg = _config(args) if explicit else resume_config(run, timeout_s=args.timeout, max_retries=args.max_retries)
        run_id = run.run_id
        concurrency = int(run.settings.get("concurrency", args.concurrency))
        preset, model, budget = cfg.preset, run.model, run.budget_usd  # the runner prices the run's own model
    else:
        if args.recipe is None:
            print("Give a recipe file, or --resume RUN_ID.", file=sys.stderr)
            return 2
        recipe = read_recipe(args.recipe)
        if recipe is None:
            return 2
        m = recipe.model.model_copy(update={k: v for k, v in {
            "samples_per_item": args.samples_per_item, "temperature": args.temperature,
            "max_tokens": args.max_tokens, "seed": args.seed}.items() if v is not None})
        cfg = _config(args)
        preset, model, budget, concurrency = cfg.preset, cfg.model, args.budget, args.concurrency
        settings = RunSettings(concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm, timeout_s=args.timeout,
                               max_retries=args.max_retries)
    if not _budget_gate(store, args, preset, model, budget):
        store.close()
        return 2
    if not args.resume:
        try:
            rows = None
            if recipe.source is not None:  # annotation: the dataset's rows, imported first if need be
                from services.data.rows import source_rows

                src = recipe.source
                rows = source_rows(store, src.dataset, file=src.file, text_column=src.text_column,
                                   attribute_columns=src.attribute_columns, limit=src.limit)
            run_id = prepare_run(store, recipe, cfg, settings, model=m, budget_usd=args.budget, item_limit=args.limit,
                                 name=args.recipe.stem, rows=rows)
        except StudioError as exc:
            print(f"{args.recipe}: {exc}", file=sys.stderr)
            store.close()
            return 2
    print(f"run {run_id} -> {store.path}", flush=True)
    local = LocalModelServer(log_dir=store.work_dir) if cfg.preset == LOCAL else None
    factory = run_backend(store, run_id, cfg, local, concurrency)
    cancel = threading.Event()
    box: dict = {}
    worker = threading.Thread(target=lambda: box.setdefault("outcome", run_blocking(store, run_id, factory, cancel)), daemon=True)
    worker.start()
    try:
        _watch(store, run_id, worker, quiet=args.quiet)
    except KeyboardInterrupt:
        cancel.set()
        worker.join()
    finally:
        if local is not None:
            local.stop()
    outcome = box.get("outcome")
    p = progress(store, get_run(store, run_id))
    print(f"{outcome.status if outcome else 'unknown'}: {p.done} generated, {p.failed} failed, "
          f"{p.prompt_tokens + p.completion_tokens} tokens, ${p.cost_usd:.4f}" + (f" — {outcome.message}" if outcome and outcome.message else ""))
    store.close()
    return 0 if outcome and outcome.status == "finished" else 1


def _watch(store: Store, run_id: str, worker: threading.Thread, quiet: bool) -> None:
    from tqdm import tqdm

    run = get_run(store, run_id)
    p = progress(store, run)
    bar = tqdm(total=p.total, initial=p.done + p.failed, unit="sample", disable=quiet, file=sys.stderr)
    try:
        while worker.is_alive():
            worker.join(0.5)
            p = progress(store, run)
            bar.n = p.done + p.failed
            bar.set_postfix(failed=p.failed, tokens=p.prompt_tokens + p.completion_tokens, refresh=False)
            bar.refresh()
    finally:
        bar.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "curate":
        from services.cli.curate import cmd_curate

        return cmd_curate(args)
    if args.command == "batch":
        from services.cli.batch import cmd_batch

        return cmd_batch(args)
    if args.command in ("embed", "map"):
        from services.cli.embed import cmd_embed

        return cmd_embed(args)
    if args.command == "grow":
        from services.cli.grow import cmd_grow

        return cmd_grow(args)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
