"""Grow toward a target against more of the recipe's own sampling, from the same skewed start.

The shipped restaurant recipe (label x subtopic x cuisine: 59 possible cells, uniform target) starts from a run of
its own random plan with the label weighted 6:1 (``--start`` samples). Then the same number of
new samples is added twice, on the mock OpenAI server (a separate process): by a grow loop of
``--rounds`` rounds of ``--batch`` (real runs through the runner, the loop's own path), and by
one more run of the skewed recipe's random plan (the baseline: what "generate more" gives). Both
are measured as the total variation distance to the target. Also printed: the loop's wall time
against the plain run's for the same number of samples (planning, measuring and one run per
round are the loop's overhead).

Last line: ``grow: <ratio>``, the loop's distance over the baseline's (below 1: the loop is closer).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._mock import mock_server  # noqa: E402
from services.core.store import Store  # noqa: E402
from services.demo.recipe_files import load_demo_recipe  # noqa: E402
from services.evaluation.grow import make_target, total_variation  # noqa: E402
from services.evaluation.grow_loop import GrowSpec, loop_samples, run_grow  # noqa: E402
from services.explore.embedders import HashEmbedder  # noqa: E402
from services.generation.backends import BackendConfig  # noqa: E402
from services.generation.run_setup import prepare_run, run_backend  # noqa: E402
from services.generation.runner import RunSettings, run_blocking  # noqa: E402
from services.recipes.recipe import Recipe  # noqa: E402

CELLS = ("label", "subtopic", "cuisine")  # 59 cells the recipe can produce


def skewed(n_items: int, seed: int) -> Recipe:
    data = load_demo_recipe("restaurant_reviews").model_dump(mode="json")
    for d in data["dimensions"]:
        if d["name"] == "label":
            d["values"] = [{"text": "positive", "weight": 6}, "negative"]
    data["sampling"].update(n_items=n_items, seed=seed)
    data["model"]["max_tokens"] = 16
    return Recipe.parse(data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--start", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=20)
    args = ap.parse_args()
    added = args.rounds * args.batch
    with tempfile.TemporaryDirectory() as tmp, mock_server() as url:
        store = Store(Path(tmp) / "bench.duckdb")
        cfg = BackendConfig("custom", url, "mock-model", "sk-test", timeout_s=10, max_retries=0)
        settings = RunSettings(concurrency=4, timeout_s=10, max_retries=0)

        def execute(run_id: str):
            return run_blocking(store, run_id, run_backend(store, run_id, cfg, None, 4))

        start = prepare_run(store, skewed(args.start, 1), cfg, settings)
        assert execute(start).status == "finished"
        target = make_target(skewed(args.start, 1), CELLS)

        def distance(run_ids: list[str]) -> float:
            counts = Counter(target.cell_of(c) for c in loop_samples(store, run_ids)["condition"])
            return float(total_variation(counts, target.shares))

        t0 = time.perf_counter()
        more = prepare_run(store, skewed(added, 2), cfg, settings)  # another seed: new draws, same skew
        assert execute(more).status == "finished"
        plain_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        spec = GrowSpec(rounds=args.rounds, batch=args.batch, dimensions=CELLS, base_runs=(start,), tolerance=0.0)
        out = run_grow(store, skewed(args.start, 1), spec, cfg, settings, execute, embedder=HashEmbedder())
        grow_s = time.perf_counter() - t0
        store_runs = out.rounds_run
        d_start, d_more, d_grow = distance([start]), distance([start, more]), distance([start, *store_runs])
        print(f"start: {args.start} samples, distance {d_start:.3f}")
        print(f"+{added} by the recipe's own sampling: distance {d_more:.3f}")
        print(f"+{added} by a grow loop ({len(store_runs)} rounds of {args.batch}, {out.status}): distance {d_grow:.3f}")
        print(f"grow_time_ratio: {grow_s / plain_s:.2f} (loop {grow_s:.1f} s, one plain run {plain_s:.1f} s, mock server)")
        store.close()
    print(f"grow: {d_grow / d_more:.3f}")


if __name__ == "__main__":
    main()
