"""Bytes sent and server time per Explore rerun with a 100,000-point map.

A run of 100,000 samples is inserted and its map prebuilt in this process (hash embedder, PCA
standing in for UMAP: only the cached points matter here, as in bench/map_rerun.py); then the
page runs under AppTest. Each rerun's payload is the serialized size of every element the page
sends (the chart's figure JSON above all). Measured: a plain rerun (the baseline) and a rerun
after changing "Colour by" (what a user waits for). Not covered: the browser's own drawing time
(tests/test_explore_scale_browser.py draws this map in headless Chromium).
Last lines: ``map_rerun_100k: <ms>`` (target under 800), ``map_payload: <MB>`` (target under 5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def payload_bytes(at) -> int:
    """The serialized size of every element in the AppTest tree (what the browser receives)."""
    total = 0
    stack = [at._tree]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "ByteSize"):
            total += proto.ByteSize()
        children = getattr(node, "children", None)
        if children:
            stack.extend(children.values())
    return total


def prebuild(db: Path, n: int) -> None:
    import services.explore.projection as projection
    from services.core.store import Store
    from services.explore.embedders import HashEmbedder
    from services.explore.map_jobs import MapRequest, build_map
    from tests.explore_data import insert_big_run

    projection.umap_layout = lambda v, p: projection.pca_layout(v) * 3
    store = Store(db)
    t0 = time.perf_counter()
    insert_big_run(store, "big", n)
    build_map(store, HashEmbedder(), MapRequest(run_ids=("big",)))
    print(f"inserted {n:,} samples and prebuilt their map (hash embedder, PCA layout) in {time.perf_counter() - t0:.1f} s")
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    db = Path(tempfile.mkdtemp()) / "studio.duckdb"
    os.environ.update(STUDIO_DB=str(db), STUDIO_EMBEDDER="fake", STUDIO_WARMUP="0")
    prebuild(db, args.n)

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app_pages" / "explore.py"), default_timeout=600)
    t0 = time.perf_counter()
    at.run()
    while not at.get("plotly_chart") or at.get("progress"):
        time.sleep(0.5)
        at.run()
    assert not at.exception, at.exception
    print(f"first page run (map from the cache, cluster keywords): {time.perf_counter() - t0:.1f} s")
    base, changed, sizes = [], [], []
    colours = ["topic", "tone", "cluster", "length", "run"]
    for i in range(args.repeats):
        t0 = time.perf_counter()
        at.run()
        base.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        at.selectbox(key="explore_colour").set_value(colours[i % len(colours)]).run()
        changed.append((time.perf_counter() - t0) * 1000)
        assert not at.exception, at.exception
        sizes.append(payload_bytes(at))
    chart = len(at.get("plotly_chart")[0].proto.spec)
    print(f"{args.n:,} points: figure JSON {chart / 1e6:.2f} MB; whole page per rerun: "
          f"median {statistics.median(sizes) / 1e6:.2f} MB, max {max(sizes) / 1e6:.2f} MB")
    print(f"rerun without change (baseline): median {statistics.median(base):.0f} ms")
    print(f"rerun after a colour change: median {statistics.median(changed):.0f} ms over {args.repeats}")
    print(f"map_rerun_100k: {statistics.median(changed):.0f}")
    print(f"map_payload: {statistics.median(sizes) / 1e6:.2f}")


if __name__ == "__main__":
    main()
