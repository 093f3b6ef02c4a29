"""Batch collect: the studio's collect (poll, download, parse, provenance rows, exactly-once writes)
vs the bare minimum on the same batch: download the same output file with the openai client, parse
each line with json, and insert (custom_id, text, tokens) into a DuckDB table. Against the mock
batch server on loopback.

Last line: ``batch_collect: <studio time / bare time>``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb  # noqa: E402
import openai  # noqa: E402
import pyarrow as pa  # noqa: E402

from services.core.store import Store  # noqa: E402
from services.generation.backends import BackendConfig  # noqa: E402
from services.generation.batch_client import make_client  # noqa: E402
from services.generation.batch_jobs import collect_batch, submit_batch  # noqa: E402
from services.generation.run_setup import prepare_run  # noqa: E402
from services.generation.runner import RunSettings  # noqa: E402
from services.recipes.recipe import Recipe  # noqa: E402
from tests.mock_batch import BatchMock  # noqa: E402

N = 5000


def recipe(n: int) -> Recipe:
    return Recipe.parse({"name": "bench", "task": "Write one sentence.", "user_template": "Item {{ index }} about {{ topic }}",
                         "dimensions": [{"name": "topic", "values": ["rain", "tea", "cats", "trains"]}],
                         "sampling": {"strategy": "random", "n_items": n, "seed": 0}, "model": {"max_tokens": 16}})


def bare(url: str, file_id: str, db: Path) -> float:
    t0 = time.perf_counter()
    text = openai.OpenAI(base_url=url, api_key="sk-test").files.content(file_id).text
    rows = [json.loads(x) for x in text.splitlines() if x.strip()]
    table = pa.table({
        "custom_id": [r["custom_id"] for r in rows],
        "text": [r["response"]["body"]["choices"][0]["message"]["content"] for r in rows],
        "prompt_tokens": [r["response"]["body"]["usage"]["prompt_tokens"] for r in rows],
        "completion_tokens": [r["response"]["body"]["usage"]["completion_tokens"] for r in rows],
    })
    con = duckdb.connect(str(db))
    con.register("incoming", table)
    con.execute("CREATE TABLE out AS SELECT * FROM incoming")
    con.close()
    return time.perf_counter() - t0


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    store = Store(tmp / "studio.duckdb")
    with BatchMock() as mock:
        client = make_client("openai", base_url=mock.url, api_key="sk-test")
        run_id = prepare_run(store, recipe(N), BackendConfig("openai", mock.url, "mock-model"), RunSettings())
        batch = submit_batch(store, run_id, client).batch
        client.poll(batch.remote_id, None)  # the mock finishes the batch on its first poll
        t0 = time.perf_counter()
        rep = collect_batch(store, batch.batch_id, client)
        studio = time.perf_counter() - t0
        assert rep.imported == N, rep
        file_id = mock.batches[batch.remote_id]["output_file_id"]
        base = bare(mock.url, file_id, tmp / "bare.duckdb")
    store.close()
    print(f"lines: {N}")
    print(f"studio collect: {studio:.2f} s ({N / studio:,.0f} lines/s)")
    print(f"bare download + json + insert: {base:.2f} s")
    print(f"batch_collect: {studio / base:.2f}")


if __name__ == "__main__":
    main()
