"""HDBSCAN on 2-D map layouts: today's ``hdbscan`` (what the studio runs) vs ``fast-hdbscan``.

Same points, same ``min_cluster_size`` and ``min_samples``: time of each and the adjusted Rand
index between their labels (1.0 = the same clusters), on well-separated and on overlapping blobs
(a UMAP layout has both). fast-hdbscan is a candidate only: the studio switches to it where it
agrees everywhere, and the figures below are why it has not (``pip install fast-hdbscan`` to run).
Its first call also pays numba JIT; that is timed separately.
Last line: ``clustering: <lowest ARI>``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def blobs(n: int, spread: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(15, 2))
    return centres[rng.integers(0, 15, n)] + rng.normal(size=(n, 2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--min-cluster-size", type=int, default=50)
    args = ap.parse_args()
    try:
        import fast_hdbscan
    except ImportError:
        raise SystemExit("fast-hdbscan is not installed: pip install fast-hdbscan==0.3.4") from None
    import hdbscan
    from sklearn.metrics import adjusted_rand_score

    size = args.min_cluster_size
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    fast_hdbscan.HDBSCAN(min_cluster_size=10).fit_predict(blobs(2000, 30))
    print(f"fast-hdbscan first call (JIT, 2,000 points): {time.perf_counter() - t0:.1f} s")
    aris = []
    for name, spread in (("separated", 30.0), ("overlapping", 10.0)):
        xy = blobs(args.n, spread)
        for samples in (None, size):
            t0 = time.perf_counter()
            a = hdbscan.HDBSCAN(min_cluster_size=size, min_samples=samples, core_dist_n_jobs=1).fit_predict(xy)
            t_a = time.perf_counter() - t0
            t0 = time.perf_counter()
            b = fast_hdbscan.HDBSCAN(min_cluster_size=size, min_samples=samples).fit_predict(xy)
            t_b = time.perf_counter() - t0
            ari = adjusted_rand_score(a, b)
            aris.append(ari)
            print(f"{args.n:,} {name} points, min_samples={samples}: hdbscan {t_a:.1f} s ({len(set(a) - {-1})} clusters, "
                  f"noise {np.mean(a == -1):.1%}), fast-hdbscan {t_b:.1f} s ({len(set(b) - {-1})} clusters, "
                  f"noise {np.mean(b == -1):.1%}), ARI {ari:.3f}")
    print(f"clustering: {min(aris):.3f}")


if __name__ == "__main__":
    main()
