"""Runner throughput on a three-column recipe (text -> structured -> judge) against the mock server,
against the same calls made by a bare async loop (AsyncOpenAI, 32 workers, each item's three calls
in order, nothing written).

256 items, concurrency 32, mock latency 100 ms: 768 requests per round, three rounds (best of each side). The bare loop sends exactly the
messages and parameters (incl. ``response_format``, as a raw body field like the runner) that the
runner sent, read back from its rows.
Last line: ``columns: <runner items/s ÷ bare items/s>`` (target >= 0.9).
"""

from __future__ import annotations

import asyncio
import json
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
from services.recipes.recipe import Recipe  # noqa: E402

N, CONCURRENCY, LATENCY, ROUNDS = 256, 32, 0.1, 3
COLUMNS = ["question", "difficulty", "quality"]


def recipe(n: int) -> Recipe:
    return Recipe.parse({
        "name": "bench-columns", "task": "You write data.", "dimensions": [{"name": "topic", "values": ["rain", "tea", "maps", "cats"]}],
        "sampling": {"strategy": "random", "n_items": n, "seed": 1}, "model": {"temperature": 0.7, "max_tokens": 16},
        "columns": [
            {"name": "question", "user_template": "Item {{ index }}: ask about {{ topic }}"},
            {"name": "difficulty", "kind": "structured", "user_template": "Rate {{ question }}",
             "output_schema": {"type": "object", "properties": {"label": {"enum": ["easy", "hard"]}}, "required": ["label"]}},
            {"name": "quality", "kind": "judge", "rubric": "clear", "scale": [1, 5], "user_template": "Judge {{ question }}"},
        ],
    })


async def bare(cfg: BackendConfig, chains: list[list[tuple[list[dict], dict]]]) -> float:
    client = make_client(cfg, max_connections=CONCURRENCY)
    it = iter(chains)

    async def worker() -> None:
        for chain in it:
            for msgs, params in chain:  # a column waits for the one before it, as in the runner
                body = {k: v for k, v in params.items() if k != "response_format"}
                if "response_format" in params:  # the same raw body field the runner sends
                    body["extra_body"] = {"response_format": params["response_format"]}
                await client.chat.completions.create(model=cfg.model, messages=msgs, **body)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    dt = time.perf_counter() - t0
    await client.close()
    return len(chains) / dt


def _runner_once(store: Store, cfg: BackendConfig) -> tuple[float, list[list[tuple[list[dict], dict]]]]:
    run_id = prepare_run(store, recipe(N), cfg, RunSettings(concurrency=CONCURRENCY), name="bench")

    async def go() -> float:
        backend = OpenAIBackend(cfg, max_connections=CONCURRENCY)
        t0 = time.perf_counter()
        out = await execute_run(store, run_id, backend)
        dt = time.perf_counter() - t0
        await backend.aclose()
        assert out.status == "finished" and out.generated == N, out
        return dt

    dt = asyncio.run(go())
    rows = store.query("SELECT item_idx, step, messages, params FROM samples WHERE run_id = ? AND step <> 'output'", [run_id])
    by_item: dict[int, dict[str, tuple[list[dict], dict]]] = {}
    for idx, step, msgs, params in rows:
        by_item.setdefault(idx, {})[step] = (json.loads(msgs), json.loads(params))
    return N / dt, [[by_item[i][c] for c in COLUMNS] for i in sorted(by_item)]


def main() -> None:
    # Rounds alternate runner and bare loop and each side keeps its best: on a shared machine a
    # busy neighbour slows one round, not one side.
    runner_rates, bare_rates = [], []
    with mock_server(LATENCY) as url, tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        cfg = BackendConfig("custom", url, "mock-model", "sk-bench")
        for _ in range(ROUNDS):
            rate, chains = _runner_once(store, cfg)
            runner_rates.append(rate)
            bare_rates.append(asyncio.run(bare(cfg, chains)))
        store.close()
    rate, bare_rate = max(runner_rates), max(bare_rates)
    ideal = CONCURRENCY / (LATENCY * len(COLUMNS))
    print(f"items: {N} x {len(COLUMNS)} columns, concurrency: {CONCURRENCY}, latency: {LATENCY * 1000:.0f} ms, rounds: {ROUNDS}")
    print(f"runner: {rate:.1f} items/s {[round(r, 1) for r in runner_rates]}; bare loop: {bare_rate:.1f} items/s "
          f"{[round(r, 1) for r in bare_rates]}; ideal {ideal:.1f} items/s")
    print(f"columns: {rate / bare_rate:.3f}")


if __name__ == "__main__":
    main()
