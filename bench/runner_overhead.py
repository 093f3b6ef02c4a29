"""Runner overhead: samples persisted per second by the studio's runner vs a bare asyncio loop of
AsyncOpenAI calls at the same concurrency that writes nothing, against the mock with zero latency.

Last line: ``runner_overhead: <runner / bare>`` (target >= 0.8).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._mock import mock_server  # noqa: E402
from services.core.store import Store  # noqa: E402
from services.generation.backends import BackendConfig, OpenAIBackend, make_client  # noqa: E402
from services.generation.run_setup import prepare_run  # noqa: E402
from services.generation.runner import RunSettings, execute_run  # noqa: E402
from services.recipes.plan import make_plan  # noqa: E402
from services.recipes.recipe import Recipe  # noqa: E402

N = 1500
CONCURRENCY = 16


def recipe(n: int) -> Recipe:
    return Recipe.parse({"name": "bench", "task": "Write one sentence.", "user_template": "Item {{ index }} about {{ topic }}",
                         "dimensions": [{"name": "topic", "values": ["rain", "tea", "cats", "trains"]}],
                         "sampling": {"strategy": "random", "n_items": n, "seed": 0}, "model": {"max_tokens": 16}})


async def bare(cfg: BackendConfig, messages: list[list[dict]]) -> float:
    client = make_client(cfg, max_connections=CONCURRENCY)
    it = iter(messages)

    async def worker():
        for msgs in it:
            await client.chat.completions.create(model=cfg.model, messages=msgs, temperature=0.8, top_p=0.95, max_tokens=16)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    dt = time.perf_counter() - t0
    await client.close()
    return len(messages) / dt


async def runner(store: Store, cfg: BackendConfig, rec: Recipe) -> float:
    run_id = prepare_run(store, rec, cfg, RunSettings(concurrency=CONCURRENCY))
    backend = OpenAIBackend(cfg, max_connections=CONCURRENCY)
    t0 = time.perf_counter()
    out = await execute_run(store, run_id, backend)
    dt = time.perf_counter() - t0
    await backend.aclose()
    n = store.scalar("SELECT count(*) FROM samples WHERE run_id = ? AND error IS NULL", [run_id])
    assert out.status == "finished" and n == N, (out, n)
    return n / dt


def main() -> None:
    with mock_server(0.0) as url, tempfile.TemporaryDirectory() as tmp:
        cfg = BackendConfig("custom", url, "mock-model", "sk-bench")
        store = Store(Path(tmp) / "bench.duckdb")
        results = {"bare": [], "runner": []}
        for rnd in range(2):  # alternate, keep the best of each, so warm-up favours neither
            rec = recipe(N).model_copy(update={"name": f"bench-{rnd}"})
            rec = Recipe.parse(rec.model_dump(mode="json"))
            msgs = [it.messages for it in make_plan(rec).items]
            results["bare"].append(asyncio.run(bare(cfg, msgs)))
            results["runner"].append(asyncio.run(runner(store, cfg, rec)))
        store.close()
    b, r = max(results["bare"]), max(results["runner"])
    print(f"items: {N}, concurrency: {CONCURRENCY}, mock latency: 0")
    print(f"bare AsyncOpenAI loop (writes nothing): {b:.0f} samples/s  {[round(x) for x in results['bare']]}")
    print(f"studio runner (persisted to DuckDB):    {r:.0f} samples/s  {[round(x) for x in results['runner']]}")
    print(f"runner_overhead: {r / b:.3f}")


if __name__ == "__main__":
    main()
