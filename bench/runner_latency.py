"""Runner throughput under latency: 640 items, concurrency 32, mock latency 200 ms.

Ideal is 32 / 0.2 = 160 samples/s. Last line: ``runner_latency: <samples per second>`` (target >= 144).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._mock import mock_server  # noqa: E402
from bench.runner_overhead import bare, recipe  # noqa: E402
from services.core.store import Store  # noqa: E402
from services.generation.backends import BackendConfig, OpenAIBackend  # noqa: E402
from services.generation.run_setup import prepare_run  # noqa: E402
from services.generation.runner import RunSettings, execute_run  # noqa: E402
from services.recipes.plan import make_plan  # noqa: E402

N, CONCURRENCY, LATENCY = 640, 32, 0.2


def main() -> None:
    with mock_server(LATENCY) as url, tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        cfg = BackendConfig("custom", url, "mock-model", "sk-bench")
        run_id = prepare_run(store, recipe(N), cfg, RunSettings(concurrency=CONCURRENCY))

        async def go() -> float:
            backend = OpenAIBackend(cfg, max_connections=CONCURRENCY)
            t0 = time.perf_counter()
            out = await execute_run(store, run_id, backend)
            dt = time.perf_counter() - t0
            await backend.aclose()
            assert out.status == "finished" and out.generated == N, out
            return dt

        dt = asyncio.run(go())
        # The same load from a bare AsyncOpenAI loop that writes nothing: what this machine allows.
        import bench.runner_overhead as ro

        ro.CONCURRENCY = CONCURRENCY
        bare_rate = asyncio.run(bare(cfg, [it.messages for it in make_plan(recipe(N)).items]))
        n = store.scalar("SELECT count(*) FROM samples WHERE run_id = ? AND error IS NULL", [run_id])
        store.close()
    ideal = CONCURRENCY / LATENCY
    print(f"items: {N}, concurrency: {CONCURRENCY}, latency: {LATENCY * 1000:.0f} ms, persisted: {n}, wall: {dt:.2f} s")
    print(f"ideal: {ideal:.0f} samples/s; runner reached {n / dt / ideal:.1%} of ideal")
    print(f"bare AsyncOpenAI loop on this machine: {bare_rate:.1f} samples/s ({bare_rate / ideal:.1%} of ideal); runner/bare {n / dt / bare_rate:.3f}")
    print(f"runner_latency: {n / dt:.1f}")


if __name__ == "__main__":
    main()
