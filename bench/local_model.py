"""Built-in model: completion tokens/s for 16 short items through the studio (server + runner) vs
llama-cpp-python called in-process on the same items with the same settings.

Last line: ``local_model: <studio / in-process>`` (target >= 0.9).
"""

from __future__ import annotations

import os

os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # before llama_cpp loads OpenMP, as for the server child

import asyncio  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.runner_overhead import recipe  # noqa: E402
from services.core.store import Store  # noqa: E402
from services.generation.backends import BackendConfig, OpenAIBackend  # noqa: E402
from services.generation.local_server import MODEL_NAME, N_CTX, LocalModelServer, find_gguf, thread_count  # noqa: E402
from services.generation.presets import LOCAL  # noqa: E402
from services.generation.run_setup import prepare_run  # noqa: E402
from services.generation.runner import RunSettings, execute_run  # noqa: E402
from services.recipes.plan import make_plan  # noqa: E402
from services.recipes.recipe import Recipe  # noqa: E402

N, MAX_TOKENS = 16, 48


def bench_recipe() -> Recipe:
    r = recipe(N).model_dump(mode="json")
    r["model"] = {"temperature": 0.0, "top_p": 1.0, "max_tokens": MAX_TOKENS, "seed": 1}
    return Recipe.parse(r)


def studio(rec: Recipe) -> tuple[int, float]:
    server = LocalModelServer()
    try:
        cfg = BackendConfig(LOCAL, server.ensure_running(), MODEL_NAME, timeout_s=300)
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "bench.duckdb")
            # warm-up request (model load, first prefill) outside the timing, as for the in-process side
            run_id = prepare_run(store, rec, cfg, RunSettings(concurrency=1), item_limit=1, name="warm")

            async def go(rid: str) -> float:
                backend = OpenAIBackend(cfg)
                t0 = time.perf_counter()
                out = await execute_run(store, rid, backend)
                dt = time.perf_counter() - t0
                await backend.aclose()
                assert out.status == "finished" and out.failed == 0, out
                return dt

            asyncio.run(go(run_id))
            run_id = prepare_run(store, rec, cfg, RunSettings(concurrency=1))
            dt = asyncio.run(go(run_id))
            tokens = int(store.scalar("SELECT sum(completion_tokens) FROM samples WHERE run_id = ?", [run_id]))
            store.close()
        return tokens, dt
    finally:
        server.stop()


def in_process(rec: Recipe) -> tuple[int, float]:
    from llama_cpp import Llama

    n = thread_count()
    llm = Llama(model_path=str(find_gguf()), n_ctx=N_CTX, n_threads=n, n_threads_batch=n, verbose=False)
    items = make_plan(rec).items
    llm.create_chat_completion(messages=items[0].messages, max_tokens=MAX_TOKENS, temperature=0.0, top_p=1.0, seed=1)
    t0 = time.perf_counter()
    tokens = 0
    for it in items:
        out = llm.create_chat_completion(messages=it.messages, max_tokens=MAX_TOKENS, temperature=0.0, top_p=1.0, seed=1)
        tokens += out["usage"]["completion_tokens"]
    dt = time.perf_counter() - t0
    del llm
    return tokens, dt


def main() -> None:
    rec = bench_recipe()
    s_tok, s_dt = studio(rec)
    p_tok, p_dt = in_process(rec)
    s_rate, p_rate = s_tok / s_dt, p_tok / p_dt
    print(f"items: {N}, max_tokens: {MAX_TOKENS}, threads: {thread_count()}, temperature 0")
    print(f"studio (server + runner): {s_tok} tokens in {s_dt:.2f} s = {s_rate:.1f} tok/s")
    print(f"in-process llama-cpp:     {p_tok} tokens in {p_dt:.2f} s = {p_rate:.1f} tok/s")
    print(f"local_model: {s_rate / p_rate:.3f}")


if __name__ == "__main__":
    main()
