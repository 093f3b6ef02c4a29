"""Import of JSONL rows through the studio vs DuckDB's own read_json on the same file.

The studio's import (services.data.importer.import_dataset: text + 2 attribute columns into
dataset_row_values in one transaction, with progress, the dataset recorded and its failing lines
named) is timed against ``CREATE TABLE t AS SELECT * FROM read_json(file, ignore_errors = true)`` on
a plain DuckDB file. The file holds one invalid line in every ``--bad-every`` (default 10,000), so
the studio's row-level error report is part of what is timed. Each is run several times,
alternating, each from the same state (the previous import is deleted, untimed), and the best time
of each is compared (the machine is shared and noisy). Then one more studio import runs alone in a
child process under ``STUDIO_DB_MEMORY_LIMIT`` (``--memory-limit``, default the setting's default),
whose peak resident memory (Linux's VmHWM, the whole process: Python, numpy and DuckDB) is
printed beside the limit and beside the process's memory just before the import.
Last line: ``import_jsonl: <studio / read_json>``. At 10^6 rows: ``--rows 1000000 --repeats 3``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.core import settings  # noqa: E402
from services.core.store import Store  # noqa: E402
from services.data.catalog import delete_dataset  # noqa: E402
from services.data.importer import import_dataset  # noqa: E402


def write_jsonl(path: Path, n: int, bad_every: int = 0) -> int:
    """n lines, one in every bad_every of them not valid JSON; returns the number of bad lines."""
    rnd = random.Random(0)
    words = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod", "tempor"]
    n_bad = 0
    with open(path, "w") as f:
        for i in range(n):
            if bad_every and i % bad_every == bad_every // 2:
                f.write(f'{{"id": {i}, "text": unquoted}}\n')
                n_bad += 1
                continue
            text = " ".join(rnd.choice(words) for _ in range(rnd.randint(8, 40)))
            f.write(json.dumps({"id": i, "text": text, "label": rnd.choice(["pos", "neg", "neutral"]),
                                "topic": rnd.choice(["food", "travel", "tech", "sport"]), "score": rnd.random()}) + "\n")
    return n_bad


def peak_rss_kb() -> int:
    """This process's peak resident memory in KiB. Linux's VmHWM, not ru_maxrss: a child started by
    fork and exec inherits its parent's ru_maxrss (the previous figure here counted the parent's)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(db: str, src: str) -> None:
    store = Store(Path(db))
    before = peak_rss_kb()
    limit = store.scalar("SELECT current_setting('memory_limit')")
    report = import_dataset(store, src, text_column="text", attribute_columns=["label", "topic"])
    store.close()
    print(report.n_rows, report.n_failed, before, peak_rss_kb(), limit.replace(" ", ""))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bad-every", type=int, default=10_000)
    parser.add_argument("--memory-limit", default=settings.SETTINGS["STUDIO_DB_MEMORY_LIMIT"].default,
                        help="STUDIO_DB_MEMORY_LIMIT for the child's import")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "studio.duckdb")
        src = Path(store.work_dir) / "bench.jsonl"
        n_bad = write_jsonl(src, args.rows, args.bad_every)
        base = duckdb.connect(str(Path(tmp) / "baseline.duckdb"))
        studio_times, base_times, studio_cpu, base_cpu = [], [], [], []
        for i in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()  # process time counts DuckDB's threads too
            base.execute(f"CREATE OR REPLACE TABLE t{i} AS SELECT * FROM read_json(?, ignore_errors = true)", [str(src)])
            base_times.append(time.perf_counter() - t0)
            base_cpu.append(time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            report = import_dataset(store, src, text_column="text", attribute_columns=["label", "topic"])
            studio_times.append(time.perf_counter() - t0)
            studio_cpu.append(time.process_time() - c0)
            assert report.n_rows == args.rows - n_bad and report.n_failed == n_bad, report
            assert len(report.errors) == min(n_bad, 1000) and all("invalid JSON" in e.reason for e in report.errors)
            # Each import starts from the same state (as each CREATE TABLE does): drop it, untimed.
            delete_dataset(store, report.dataset_id)
            store.checkpoint()
            base.execute(f"DROP TABLE t{i}")
        base.close()
        store.close()
        env = {**os.environ, "STUDIO_DB_MEMORY_LIMIT": args.memory_limit}
        out = subprocess.run([sys.executable, __file__, "--child", str(Path(tmp) / "child.duckdb"), str(src)],
                             check=True, capture_output=True, text=True, env=env).stdout.split()
        assert (int(out[0]), int(out[1])) == (args.rows - n_bad, n_bad), out
        before_mb, peak_mb, limit = int(out[2]) / 1024, int(out[3]) / 1024, out[4]
        file_mb = src.stat().st_size / 2**20
    print(f"rows: {args.rows:,}  file: JSONL, 5 keys, {file_mb:.0f} MB, {n_bad:,} invalid lines (each reported);"
          " studio imports text + 2 attributes")
    print("read_json (s):", " ".join(f"{t:.3f}" for t in base_times), f" best {min(base_times):.3f}")
    print("studio    (s):", " ".join(f"{t:.3f}" for t in studio_times), f" best {min(studio_times):.3f}")
    print(f"CPU (s), best of each: read_json {min(base_cpu):.3f}, studio {min(studio_cpu):.3f},"
          f" ratio {min(studio_cpu) / min(base_cpu):.2f} (less sensitive to other processes than wall time)")
    print(f"studio import alone, DuckDB memory_limit {limit} (STUDIO_DB_MEMORY_LIMIT={args.memory_limit}):"
          f" peak resident memory {peak_mb:.0f} MB for the whole process, {before_mb:.0f} MB before the import"
          f" (file {file_mb:.0f} MB)")
    print(f"import_jsonl: {min(studio_times) / min(base_times):.2f}")


if __name__ == "__main__":
    main()
