"""Server time to re-render Explore after a colour change, with 20,000 cached points.

The map is prebuilt (fake embedder, PCA layout standing in for UMAP: only the cached points
matter here), then the page runs under AppTest; we time the rerun after changing "Colour by".
Last line: ``map_rerun: <ms>`` (target under 500).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    db = tmp / "studio.duckdb"
    os.environ["STUDIO_DB"] = str(db)
    os.environ["STUDIO_EMBEDDER"] = "fake"

    import services.explore.projection as projection
    from services.core.store import Store
    from tests.explore_data import insert_run

    projection.umap_layout = lambda v, p: projection.pca_layout(v) * 3
    store = Store(db)
    topics = ["pizza pasta", "sushi rice", "tacos salsa", "curry naan", "burger fries"]
    tones = ["warm", "cold", "angry", "funny"]
    samples = [(f"A review about {topics[i % 5]} number {i} with a {tones[i % 4]} tone and some more words {i % 97}",
                {"topic": topics[i % 5], "tone": tones[i % 4]}) for i in range(args.n)]
    t0 = time.perf_counter()
    insert_run(store, "big", samples[:1], name="big")  # the run row and one sample, as the tests do
    rest = pa.table({"i": list(range(1, args.n)), "text": [t for t, _ in samples[1:]],
                     "topic": [c["topic"] for _, c in samples[1:]], "tone": [c["tone"] for _, c in samples[1:]]})
    with store.write() as cur:
        cur.register("bulk", rest)
        cur.execute("""INSERT INTO samples (sample_key, run_id, plan_id, item_idx, item_key, recipe_hash, condition, demo_ids,
                       messages, text, model, params)
                       SELECT 'big-' || i, 'big', 'plan-big', i, 'item-' || i, 'recipe1', MAP(['topic', 'tone'], [topic, tone]),
                              [], '[]', text, 'fake-model', '{}' FROM bulk""")
    print(f"inserted {args.n} samples in {time.perf_counter() - t0:.1f} s")
    store.close()

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app_pages" / "explore.py"), default_timeout=600)
    t0 = time.perf_counter()
    at.run()
    while not at.get("plotly_chart") or at.get("progress"):
        time.sleep(0.5)
        at.run()
    assert not at.exception, at.exception
    print(f"first build (embed + layout + clusters): {time.perf_counter() - t0:.1f} s")
    base, changed = [], []
    colours = ["topic", "tone", "cluster", "length", "run"]
    for i in range(args.repeats):
        t0 = time.perf_counter()
        at.run()
        base.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        at.selectbox(key="explore_colour").set_value(colours[i % len(colours)]).run()
        changed.append((time.perf_counter() - t0) * 1000)
        assert not at.exception, at.exception
    print(f"rerun without change (baseline): median {statistics.median(base):.0f} ms")
    print(f"rerun after a colour change: median {statistics.median(changed):.0f} ms over {args.repeats}")
    print(f"ratio colour change / plain rerun: {statistics.median(changed) / statistics.median(base):.2f}")
    print(f"map_rerun: {statistics.median(changed):.0f}")


if __name__ == "__main__":
    main()
