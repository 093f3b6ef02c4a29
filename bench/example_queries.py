"""Each example query of the SQL console on 100,000 samples (with a clustered map of them and
two filter pipelines' verdicts).

Seeds a temporary studio database with 100,000 samples over 3 dimensions, 10 runs, and a
clustering of every sample, then runs each available example query through the console
(services.sql.console.run_query: checks, read-only transaction, row cap) several times and keeps
the best time per query. The baseline printed alongside is a plain ``SELECT count(*) FROM samples``.
Last line: ``example_queries: <slowest query's best time in ms>``; target under 200.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.core.store import Store  # noqa: E402
from services.sql.console import run_query  # noqa: E402
from services.sql.example_queries import example_queries  # noqa: E402
from services.sql.views import refresh_views  # noqa: E402


def seed(store: Store, n: int) -> None:
    with store.write() as cur:
        cur.execute("INSERT INTO recipe_versions (recipe_hash, name, version, body) VALUES ('h', 'bench', 1, '{}')")
        cur.execute("INSERT INTO runs (run_id, plan_id, recipe_hash, name, backend, model, params)"
                    " SELECT 'run' || i, 'p', 'h', 'run ' || i, 'local', 'm', '{}' FROM range(10) t(i)")
        cur.execute(
            """INSERT INTO samples (sample_key, run_id, plan_id, item_idx, item_key, recipe_hash, condition, demo_ids,
                   messages, text, model, params, prompt_tokens, completion_tokens, latency_ms, cost_usd, error)
               SELECT 'k' || i, 'run' || (i % 10), 'p', i, 'ik' || i, 'h',
                      MAP {'cuisine': 'c' || (i % 12), 'tone': 't' || (i % 5), 'length': 'l' || (i % 3)},
                      [], '[]', repeat('word' || (i % 97) || ' ', 5 + i % 40), 'm', '{}',
                      100 + i % 50, 50 + i % 200, 300 + i % 700, 0.0001 * (i % 7),
                      CASE WHEN i % 500 = 0 THEN 'timeout' END
               FROM range(?) t(i)""",
            [n],
        )
        cur.execute("INSERT INTO projections (projection_id, items_hash, model, method, params, n_points)"
                    " VALUES ('pr', 'x', 'm', 'umap', '{}', ?)", [n])
        cur.execute("INSERT INTO projection_points SELECT 'pr', 'k' || i, random(), random() FROM range(?) t(i)", [n])
        cur.execute("INSERT INTO clusterings (clustering_id, projection_id, params, n_clusters, noise_share)"
                    " VALUES ('cl', 'pr', '{}', 40, 0.1)")
        cur.execute("INSERT INTO cluster_assignments SELECT 'cl', 'k' || i, (hash(i) % 41)::INT - 1 FROM range(?) t(i)", [n])
        # Two pipelines of three steps; a sample stops at the first step that drops it.
        cur.execute("INSERT INTO filter_pipelines (pipeline_hash, name, version, steps) VALUES"
                    " ('ph1', 'default', 1, '[]'), ('ph2', 'strict', 1, '[]')")
        cur.execute("INSERT INTO filter_applications (pipeline_hash, run_id, n_in, n_kept)"
                    " SELECT ph, 'run' || r, 0, 0 FROM (VALUES ('ph1'), ('ph2')) p(ph), range(10) t(r)")
        cur.execute(
            """INSERT INTO filter_verdicts (pipeline_hash, run_id, sample_key, step_idx, step_name, kept, reason)
               SELECT ph, 'run' || (i % 10), 'k' || i, s, ['length', 'dedup', 'judge'][s + 1],
                      s < 2 OR i % 3 <> 0, CASE WHEN s = 2 AND i % 3 = 0 THEN 'low score' END
               FROM (VALUES ('ph1'), ('ph2')) p(ph), range(?) t(i), range(3) u(s)""",
            [n],
        )
    store.checkpoint()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "studio.duckdb")
        seed(store, args.samples)
        refresh_views(store)
        base = min(_time(store, "SELECT count(*) FROM samples") for _ in range(args.repeats))
        print(f"samples: {args.samples:,}; baseline SELECT count(*): {base * 1000:.1f} ms")
        slowest = 0.0
        for ex in example_queries(store):
            if not ex.available:
                print(f"  {ex.title:<34} skipped: {ex.reason}")
                continue
            best = min(_time(store, ex.sql) for _ in range(args.repeats))
            slowest = max(slowest, best)
            print(f"  {ex.title:<34} {best * 1000:7.1f} ms")
        store.close()
    print(f"example_queries: {slowest * 1000:.0f}")


def _time(store: Store, sql: str) -> float:
    t0 = time.perf_counter()
    run_query(store, sql, timeout_s=60)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
