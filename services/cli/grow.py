"""``python -m services grow``: grow toward a target in rounds, headless (``evaluation.grow_loop``).

    python -m services grow data/recipes/restaurant_reviews.yaml --cells label,cuisine --rounds 3 --batch 4
    python -m services grow recipe.yaml --share "label=positive:0.7,negative:0.3" --from run-0123abcd
    python -m services grow recipe.yaml --backend openai --model gpt-4o-mini --budget 0.20

Running the same command again continues the same loop: finished rounds are skipped, an
interrupted or failed round resumes (only what is missing is generated), more ``--rounds`` or a
larger ``--budget`` carry on. The key comes from the environment, never from a flag.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from services.cli.common import open_store, read_recipe
from services.core.errors import StudioError
from services.generation.presets import LOCAL, PRESETS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grow", help="generate in rounds toward a target distribution over the recipe's cells")
    p.add_argument("recipe", type=Path, help="recipe YAML file")
    p.add_argument("--rounds", type=int, default=3, help="rounds at most (default 3)")
    p.add_argument("--batch", type=int, default=8, help="samples per round (default 8)")
    p.add_argument("--cells", help="comma-separated dimensions that make the cells (default: every categorical one)")
    p.add_argument("--share", action="append", default=[], metavar="DIM=VALUE:SHARE,...",
                   help="target shares of one dimension's values (repeat per dimension; default: uniform over cells)")
    p.add_argument("--from", dest="base_runs", action="append", default=[], metavar="RUN_ID",
                   help="count this run's samples as the loop's start (repeat for several)")
    p.add_argument("--tolerance", type=float, default=0.05, help="stop once the distance to the target is at most this")
    p.add_argument("--budget", type=float, help="USD for the whole loop, all rounds together (the model needs a price)")
    p.add_argument("--embedder", default="full", help="embedder for collapsed cells: full, static, fake, or none")
    p.add_argument("--name", default="grow", help="a name that tells two loops of one recipe apart")
    p.add_argument("--backend", default=LOCAL, choices=sorted(PRESETS), help="backend preset (default: built-in local model)")
    p.add_argument("--base-url", help="override the preset's base_url")
    p.add_argument("--model", help="model name (default: the preset's)")
    p.add_argument("--api-key-env", help="environment variable holding the key (default: the preset's)")
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--temperature", type=float)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    p.add_argument("--max-retries", type=int, default=2)
    p.add_argument("--db", type=Path, help="database file (default: $STUDIO_DB or data/studio.duckdb)")
    p.add_argument("--quiet", action="store_true")


def cmd_grow(args: argparse.Namespace) -> int:
    from services.evaluation.grow import parse_shares
    from services.evaluation.grow_loop import GrowSpec, grow_report, loop_rounds, run_grow
    from services.generation.connect import preset_config
    from services.generation.local_server import LocalModelServer
    from services.generation.run_setup import CLI_HOW, run_backend
    from services.generation.run_store import mark_interrupted
    from services.generation.runner import RunSettings, run_blocking

    def say(text: str) -> None:
        if not args.quiet:
            print(text, flush=True)

    recipe = read_recipe(args.recipe)
    if recipe is None:
        return 2
    try:
        shares = {k: v for s in args.share for k, v in parse_shares(s).items()} or None
        spec = GrowSpec(rounds=args.rounds, batch=args.batch, shares=shares, base_runs=tuple(args.base_runs),
                        dimensions=tuple(d.strip() for d in args.cells.split(",") if d.strip()) if args.cells else None,
                        tolerance=args.tolerance, budget_usd=args.budget, name=args.name)
    except StudioError as exc:
        print(exc, file=sys.stderr)
        return 2
    store = open_store(args.db)
    if store is None:
        return 2
    mark_interrupted(store)  # a round left 'running' by a killed command resumes
    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    cfg = preset_config(args.backend, model=args.model, base_url=args.base_url, api_key=key, timeout_s=args.timeout,
                        max_retries=args.max_retries)
    model = recipe.model.model_copy(update={k: v for k, v in {"max_tokens": args.max_tokens, "temperature": args.temperature}.items()
                                            if v is not None})
    settings = RunSettings(concurrency=args.concurrency, timeout_s=args.timeout, max_retries=args.max_retries)
    embedder = None
    if args.embedder != "none":
        from services.explore.embedders import make_embedder

        embedder = make_embedder(args.embedder)
    local = LocalModelServer(log_dir=store.work_dir) if cfg.preset == LOCAL else None
    cancel = threading.Event()

    def execute(run_id: str):
        say(f"round run {run_id}")
        box: dict = {}
        worker = threading.Thread(target=lambda: box.setdefault(
            "o", run_blocking(store, run_id, run_backend(store, run_id, cfg, local, args.concurrency), cancel)), daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.5)
        except KeyboardInterrupt:
            cancel.set()
            worker.join()
        return box["o"]

    try:
        outcome = run_grow(store, recipe, spec, cfg, settings, execute, model=model, embedder=embedder, cancel=cancel,
                           say=say, price_how=CLI_HOW)
    except StudioError as exc:
        print(f"{args.recipe}: {exc}", file=sys.stderr)
        store.close()
        return 2
    finally:
        if local is not None:
            local.stop()
    say(f"loop {outcome.loop_id} -> {store.path}")
    if loop_rounds(store, outcome.loop_id):
        report = grow_report(store, outcome.loop_id)
        say(report.distances.to_string(index=False))
        say(report.cells.to_string(index=False, max_rows=60))
    print(f"{outcome.status}: {outcome.message}")
    store.close()
    return 0 if outcome.status in ("reached", "finished") else 1
