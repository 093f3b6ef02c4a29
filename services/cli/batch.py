"""Headless provider batches: send a run (or a recipe) as a batch, poll it, collect it, resubmit.

    python -m services batch submit recipe.yaml --provider openai --model gpt-4o-mini
    python -m services batch submit --run RUN_ID --provider anthropic --model claude-3-5-haiku-20241022
    python -m services batch submit recipe.yaml --provider vllm --model my-model    # writes the file vllm run-batch reads
    python -m services batch status --run RUN_ID [--wait]
    python -m services batch collect --run RUN_ID [--wait] [--output FILE]       # --output: where vllm run-batch wrote
    python -m services batch resubmit --run RUN_ID                                 # only the failed and missing lines

The key comes from the environment (OPENAI_API_KEY, ANTHROPIC_API_KEY, or --api-key-env), never a
flag; it is not stored. The same services as the Generate page (services.generation.batch_*).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from services.cli.common import open_store, read_recipe
from services.core.errors import StudioError
from services.core.store import Store
from services.generation.batch_client import BatchClient, client_for, run_config, vllm_command
from services.generation.batch_format import PROVIDERS
from services.generation.batch_jobs import collect_batch, refresh, submit_batch
from services.generation.batch_store import BatchInfo, get_batch, list_batches, update_batch
from services.generation.run_store import get_run, progress

ACTIONS = ("submit", "status", "collect", "resubmit")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="send a run as a provider batch (OpenAI, Anthropic, vllm run-batch), poll, collect")
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("recipe", nargs="?", type=Path, help="submit: a recipe YAML to plan a new run for the batch")
    p.add_argument("--run", help="the run (submit: send what it is missing; status/collect: all its open batches)")
    p.add_argument("--batch", help="status/collect: this batch only")
    p.add_argument("--provider", choices=PROVIDERS, help="submit: where to send it (resubmit: the last batch's by default)")
    p.add_argument("--model", help="submit with a recipe: the model (default: the provider's usual)")
    p.add_argument("--base-url", help="the provider's API URL (default: its public one; a mock or proxy for tests)")
    p.add_argument("--api-key-env", help="environment variable holding the key (default: OPENAI_API_KEY / ANTHROPIC_API_KEY)")
    p.add_argument("--limit", type=int, help="submit with a recipe: only the first N plan items")
    p.add_argument("--folder", type=Path, help="vllm: folder for the input and output files (default: the database's cache/batches)")
    p.add_argument("--output", type=Path, help="collect, vllm: the output file vllm run-batch wrote (default: next to the input)")
    p.add_argument("--wait", action="store_true", help="status/collect: poll until the batches are done")
    p.add_argument("--every", type=float, default=30.0, help="seconds between polls with --wait (default 30)")
    p.add_argument("--db", type=Path, help="database file (default: $STUDIO_DB or data/studio.duckdb)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


DEFAULT_MODEL = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-20241022", "vllm": ""}


def _client(store: Store, args: argparse.Namespace, provider: str, base_url: str | None) -> BatchClient:
    return client_for(provider, base_url=args.base_url or base_url, key_env=args.api_key_env,
                      folder=args.folder or store.work_dir / "batches")


def _say(b: BatchInfo) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in b.counts.items() if v) if b.counts else ""
    state = "collected" if b.collected_at else b.status
    text = f"{b.batch_id} [{b.provider}] {state}: {b.n_lines} line(s)" + (f" ({counts})" if counts else "")
    if b.collected_at:
        text += f"; {b.imported} imported, {b.failed} failed"
    if b.error:
        text += f" — {b.error}"
    return text


def _submit(store: Store, args: argparse.Namespace) -> int:
    run_id, provider, base_url = args.run, args.provider, args.base_url
    if args.action == "resubmit":
        if not run_id:
            print("resubmit needs --run RUN_ID.", file=sys.stderr)
            return 2
        last = list_batches(store, run_id)
        if not last and not provider:
            print(f"Run {run_id} has no batch yet: use submit --provider.", file=sys.stderr)
            return 2
        provider = provider or last[0].provider
        base_url = base_url or (last[0].base_url if last and last[0].provider == provider else None)
    if not provider:
        print("Give --provider (openai, anthropic or vllm).", file=sys.stderr)
        return 2
    if args.recipe is not None:
        from services.generation.run_setup import CLI_HOW, prepare_run
        from services.generation.runner import RunSettings

        recipe = read_recipe(args.recipe)
        if recipe is None:
            return 2
        cfg = run_config(provider, args.model or DEFAULT_MODEL[provider], base_url)
        run_id = prepare_run(store, recipe, cfg, RunSettings(), item_limit=args.limit, name=f"{args.recipe.stem} batch",
                             price_how=CLI_HOW)
        print(f"run {run_id} planned -> {store.path}", flush=True)
    elif not run_id:
        print("Give a recipe file or --run RUN_ID.", file=sys.stderr)
        return 2
    try:
        get_run(store, run_id)
    except KeyError:
        print(f"No run {run_id} in {store.path}.", file=sys.stderr)
        return 2
    rep = submit_batch(store, run_id, _client(store, args, provider, base_url), base_url=args.base_url or base_url)
    if rep.cleared:
        print(f"{rep.cleared} failed line(s) will be sent again", flush=True)
    if rep.in_flight:
        print(f"{rep.in_flight} line(s) left out: an open batch holds them (collect it first)", flush=True)
    if rep.unrenderable:
        print(f"{rep.unrenderable} line(s) could not be rendered and were recorded as failed", file=sys.stderr)
    if rep.batch is None:
        print(f"run {run_id}: nothing to send", flush=True)
        return 0
    for b in rep.batches:
        print(f"run {run_id}: sent {_say(b)}", flush=True)
        if b.provider == "vllm":
            print("run: " + vllm_command(b.input_path or "", b.output_path or "", b.model), flush=True)
            print(f"then: python -m services batch collect --batch {b.batch_id}", flush=True)
    return 0


def _targets(store: Store, args: argparse.Namespace) -> list[BatchInfo] | None:
    if args.batch:
        try:
            return [get_batch(store, args.batch)]
        except KeyError:
            print(f"No batch {args.batch} in {store.path}.", file=sys.stderr)
            return None
    if args.run:
        return [b for b in list_batches(store, args.run) if b.is_open] or list_batches(store, args.run)[:1]
    print("Give --run RUN_ID or --batch BATCH_ID.", file=sys.stderr)
    return None


def _status(store: Store, args: argparse.Namespace) -> int:
    targets = _targets(store, args)
    if targets is None:
        return 2
    if not targets:
        print("no batches", flush=True)
        return 0
    while True:
        now = [refresh(store, b.batch_id, _client(store, args, b.provider, b.base_url)) if b.is_open else b for b in targets]
        for b in now:
            print(_say(b), flush=True)
        if not args.wait or not any(b.is_open and b.status not in ("completed", "ended", "expired") for b in now):
            return 0
        time.sleep(args.every)


def _collect(store: Store, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from services.generation.batch_client import BatchNotReady

    targets = _targets(store, args)
    if targets is None:
        return 2
    code = 0
    for b in targets:
        if args.output and b.provider == "vllm":
            b = update_batch(store, b.batch_id, output_path=str(args.output.resolve()))
        client = _client(store, args, b.provider, b.base_url)
        bar = tqdm(total=b.n_lines, unit="line", disable=args.quiet, file=sys.stderr, desc=b.batch_id)

        def tick(done: int, total: int, bar: tqdm = bar) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        while True:
            try:
                rep = collect_batch(store, b.batch_id, client, on_progress=tick)
                print(f"{b.batch_id}: {rep.imported} imported, {rep.failed} failed" + (f", {rep.missing} with no result" if rep.missing else ""),
                      flush=True)
                break
            except BatchNotReady as exc:
                if not args.wait:
                    print(exc, file=sys.stderr)
                    code = max(code, 1)
                    break
                time.sleep(args.every)
            except StudioError as exc:  # what could be read was imported before this was raised
                print(exc, file=sys.stderr)
                code = 1
                break
        bar.close()
    run_id = args.run or (targets[0].run_id if targets else None)
    if run_id:
        run = get_run(store, run_id)
        p = progress(store, run)
        print(f"run {run_id} {run.status}: {p.done} of {p.total} generated, {p.failed} failed, ${p.cost_usd:.4f}", flush=True)
    return code


def cmd_batch(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    if store is None:
        return 2
    try:
        if args.action in ("submit", "resubmit"):
            return _submit(store, args)
        if args.action == "status":
            return _status(store, args)
        return _collect(store, args)
    except StudioError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        store.close()

