"""UMAP + HDBSCAN through the studio (exact numpy kNN -> precomputed_knn, cached) vs the bare
library calls (umap.UMAP(metric='cosine'), hdbscan.HDBSCAN) on the same embeddings, and the
first-call JIT cost in a fresh process with a cold and a warm numba cache.

Default 5,000 points, no fresh-process runs, to stay near a minute on 2 cores; --n 10000 for
the issue's figure, --jit adds the two fresh-process first-call runs (about 40 s more). Last line: ``projection: <ratio>`` = studio / bare.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST_CALL = """
import time, numpy as np
t0 = time.perf_counter()
from services.explore.projection import umap_layout, hdbscan_labels, ClusterParams
rng = np.random.default_rng(0); e = rng.normal(size=(1000, 384)).astype(np.float32); e /= np.linalg.norm(e, axis=1, keepdims=True)
hdbscan_labels(umap_layout(e), ClusterParams(min_cluster_size=10))
print(f"{time.perf_counter() - t0:.1f}")
"""


def blobs(n: int, dim: int = 384, centres: int = 12, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim))
    e = c[rng.integers(0, centres, n)] + rng.normal(scale=0.8, size=(n, dim))
    return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)


def first_call(cache_dir: str) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", FIRST_CALL], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--jit", action="store_true", help="also time a first call in fresh processes (cold/warm numba cache)")
    args = ap.parse_args()
    if args.jit:
        warm_dir = os.environ.get("NUMBA_CACHE_DIR", str(ROOT / "data" / "cache" / "numba"))
        first_call(warm_dir)  # make sure the persistent cache is filled
        cold = first_call(tempfile.mkdtemp(prefix="numba-cold-"))
        warm = first_call(warm_dir)
        print(f"first call in a fresh process (import + UMAP + HDBSCAN, 1,000 points): cold numba cache {cold:.1f} s, warm cache {warm:.1f} s")

    import hdbscan
    import umap

    from services.core.store import Store
    from services.explore.projection import ClusterParams, LayoutParams, cluster, project, warm_up

    t0 = time.perf_counter()
    warm_up()
    print(f"warm_up() in this process: {time.perf_counter() - t0:.1f} s")
    e = blobs(args.n)
    ids = [f"p{i}" for i in range(args.n)]
    store = Store(Path(tempfile.mkdtemp()) / "bench.duckdb")
    size = 25

    # bare first: it pays NN-descent's JIT, which the studio path never needs
    t0 = time.perf_counter()
    xy = umap.UMAP(metric="cosine", n_neighbors=15, min_dist=0.1, random_state=42).fit_transform(e)
    hdbscan.HDBSCAN(min_cluster_size=size).fit_predict(xy)
    bare_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    xy = umap.UMAP(metric="cosine", n_neighbors=15, min_dist=0.1, random_state=42).fit_transform(e)
    hdbscan.HDBSCAN(min_cluster_size=size).fit_predict(xy)
    bare = time.perf_counter() - t0

    t0 = time.perf_counter()
    pid, sxy = project(store, e, ids, ids, "bench", "umap", LayoutParams(15, 0.1, 42))
    cluster(store, pid, sxy, ids, ClusterParams(min_cluster_size=size))
    studio = time.perf_counter() - t0
    t0 = time.perf_counter()
    pid, sxy = project(store, e, ids, ids, "bench", "umap", LayoutParams(15, 0.1, 42))
    cluster(store, pid, sxy, ids, ClusterParams(min_cluster_size=size))
    cached = time.perf_counter() - t0
    print(f"{args.n} points: bare UMAP+HDBSCAN {bare:.1f} s (first bare call {bare_first:.1f} s), "
          f"studio {studio:.1f} s, studio cached {cached * 1000:.0f} ms")
    store.close()
    print(f"projection: {studio / bare:.2f}")


if __name__ == "__main__":
    main()
