"""Import of 100,000 JSONL rows through the studio vs DuckDB's own read_json on the same file.

The studio's import (services.data.datasets.import_dataset: text + 2 attribute columns into
dataset_rows in one transaction, with the dataset recorded) is timed
against ``CREATE TABLE t AS SELECT * FROM read_json(file)`` on a plain DuckDB file. Each is run
several times, alternating, each from the same state (the previous import is deleted, untimed),
and the best time of each is compared (the machine is shared and noisy).
Last line: ``import_jsonl: <studio / read_json>``; target at most 1.5.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.core.store import Store  # noqa: E402
from services.data.catalog import delete_dataset  # noqa: E402
from services.data.importer import import_dataset  # noqa: E402


def write_jsonl(path: Path, n: int) -> None:
    rnd = random.Random(0)
    words = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod", "tempor"]
    with open(path, "w") as f:
        for i in range(n):
            text = " ".join(rnd.choice(words) for _ in range(rnd.randint(8, 40)))
            f.write(json.dumps({"id": i, "text": text, "label": rnd.choice(["pos", "neg", "neutral"]),
                                "topic": rnd.choice(["food", "travel", "tech", "sport"]), "score": rnd.random()}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "studio.duckdb")
        src = Path(store.work_dir) / "bench.jsonl"
        write_jsonl(src, args.rows)
        base = duckdb.connect(str(Path(tmp) / "baseline.duckdb"))
        studio_times, base_times = [], []
        for i in range(args.repeats):
            t0 = time.perf_counter()
            base.execute(f"CREATE OR REPLACE TABLE t{i} AS SELECT * FROM read_json(?)", [str(src)])
            base_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            report = import_dataset(store, src, text_column="text", attribute_columns=["label", "topic"])
            studio_times.append(time.perf_counter() - t0)
            assert report.n_rows == args.rows and report.n_failed == 0
            # Each import starts from the same state (as each CREATE TABLE does): drop it, untimed.
            delete_dataset(store, report.dataset_id)
            store.checkpoint()
        base.close()
        store.close()
    print(f"rows: {args.rows:,}  file: JSONL, 5 keys; studio imports text + 2 attributes")
    print("read_json (s):", " ".join(f"{t:.3f}" for t in base_times), f" best {min(base_times):.3f}")
    print("studio    (s):", " ".join(f"{t:.3f}" for t in studio_times), f" best {min(studio_times):.3f}")
    print(f"import_jsonl: {min(studio_times) / min(base_times):.2f}")


if __name__ == "__main__":
    main()
