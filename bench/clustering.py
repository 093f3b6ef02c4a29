"""The default clustering: tuned (10-D UMAP + a small HDBSCAN grid, by silhouette under a noise
cap: services/explore/cluster_tuning.py) against the old rule (HDBSCAN, excess of mass, on the
2-D map with min cluster size max(5, n // 60)).

- a synthetic corpus with known groups (12 Gaussians in a latent space, 8 of them around one
  region, mapped to 384-D), once with groups apart and once overlapping: adjusted Rand index of
  each clustering against the truth (noise counted as a label of its own, so leaving points out
  costs). Both rules find these groups when they are apart; when they overlap, silhouette prefers
  merging neighbours and the tuned choice loses to the old rule;
- the shipped demo runs (services/demo/loader.py; their cached MiniLM vectors, no model call): no
  truth there, so clusters, noise, the cosine silhouette of the clustered points and the mutual
  information with the requested subtopic (the built-in model follows it about half the time);
- the cost of the tuned choice at ``--large`` points (a 2,000-point sample, the rest by nearest
  sampled neighbours on the map), next to the old rule's HDBSCAN on the same 2-D layout (a PCA
  stands in for the UMAP map both need, which is not timed).

``--fast-hdbscan`` instead times fast-hdbscan against hdbscan on 2-D blobs (why hdbscan stays).
Last line: ``clustering: <NMI tuned / NMI old rule>``, the mutual information of the clusters with
the requested subtopic on both demo runs (what a user looks for there; silhouette is the tuning
criterion itself, so it is printed but is not the headline).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def synthetic(n: int = 800, spread: float = 3.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in 12 known groups: Gaussians in an 8-D latent space (8 groups around one
    region, 3 around another, 1 alone; ``spread`` = how far groups sit from their region's centre,
    in units of a group's own spread), mapped to 384-D with isotropic noise."""
    rng = np.random.default_rng(seed)
    latent, d = 8, 384
    regions = rng.normal(scale=12, size=(3, latent))
    centres = np.concatenate([regions[r] + rng.normal(scale=spread, size=(k, latent)) for r, k in ((0, 8), (1, 3), (2, 1))])
    weights = rng.uniform(1, 3, len(centres))
    truth = rng.choice(len(centres), n, p=weights / weights.sum())
    e = (centres[truth] + rng.normal(size=(n, latent))) @ rng.normal(size=(latent, d)) + 2.0 * rng.normal(size=(n, d))
    return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32), truth


def old_rule(xy: np.ndarray) -> np.ndarray:
    from services.explore.cluster_tuning import size_rule

    return size_rule(xy)[0]


def describe(labels: np.ndarray) -> str:
    return f"{len(set(labels.tolist()) - {-1})} clusters, noise {np.mean(labels == -1):.0%}"


def demo_vectors() -> tuple[np.ndarray, list[str], list[str]]:
    from services.core.store import Store
    from services.demo.loader import load_demo
    from services.explore.embedders import make_embedder
    from services.explore.embedding_store import embed_texts
    from services.explore.items import list_runs, load_runs

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "demo.duckdb")
        load_demo(store)
        items = load_runs(store, list_runs(store)["run_id"].tolist())
        vectors = embed_texts(store, make_embedder("full"), items.texts)  # cached vectors shipped with the demo
        subtopic = [c for c in items.frame.columns if items.name(c) == "subtopic"]
        sub = items.frame[subtopic[0]].astype(str).tolist() if subtopic else ["?"] * len(items)
        runs = items.frame["run_id"].astype(str).tolist()
        store.close()
    return vectors, sub, runs


def clustering_bench(args: argparse.Namespace) -> None:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from services.explore.cluster_tuning import silhouette, tuned_labels
    from services.explore.projection import LayoutParams, umap_layout

    t0 = time.perf_counter()
    umap_layout(synthetic(300, seed=1)[0])  # numba JIT, paid once, outside the figures
    print(f"UMAP JIT (first call): {time.perf_counter() - t0:.1f} s")

    for spread in (3.5, 2.5):
        vectors, truth = synthetic(args.n, spread)
        xy = umap_layout(vectors)
        before = old_rule(xy)
        t0 = time.perf_counter()
        after, choice = tuned_labels(vectors, xy, LayoutParams())
        t_tuned = time.perf_counter() - t0
        print(f"synthetic, {args.n:,} vectors in 12 known groups (spread {spread}): old rule {describe(before)}, ARI "
              f"{adjusted_rand_score(truth, before):.3f}; tuned {describe(after)}, ARI {adjusted_rand_score(truth, after):.3f} "
              f"({t_tuned:.1f} s)")
        print(f"  {choice.caption()}")

    demo, sub, runs = demo_vectors()
    nmi = {}
    for name, idx in [("both demo runs", np.arange(len(demo)))] + [
            (f"demo run {r}", np.flatnonzero(np.array(runs) == r)) for r in dict.fromkeys(runs)]:
        v = demo[idx]
        xy = umap_layout(v)
        b = old_rule(xy)
        t0 = time.perf_counter()
        a, choice = tuned_labels(v, xy, LayoutParams())
        t_a = time.perf_counter() - t0
        s = np.array(sub)[idx]
        nmi.setdefault(name, (normalized_mutual_info_score(s, b), normalized_mutual_info_score(s, a)))
        fmt = lambda x: "—" if x is None else f"{x:.3f}"  # noqa: E731
        print(f"{name} ({len(idx)} texts): old rule {describe(b)}, silhouette {fmt(silhouette(v, b))}, "
              f"NMI subtopic {normalized_mutual_info_score(s, b):.3f}; tuned {describe(a)}, silhouette "
              f"{fmt(silhouette(v, a))}, NMI subtopic {normalized_mutual_info_score(s, a):.3f} ({t_a:.1f} s)")
        print(f"  {choice.caption()}")

    if args.large:
        import hdbscan

        from services.explore.projection import pca_layout

        big, _ = synthetic(args.large, seed=2)
        flat = pca_layout(big, fit_max=5_000) * 10  # a stand-in 2-D layout of as many points
        t0 = time.perf_counter()
        _, choice = tuned_labels(big, flat, LayoutParams())
        t_big = time.perf_counter() - t0
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hdbscan.HDBSCAN(min_cluster_size=max(5, min(50, args.large // 60)), core_dist_n_jobs=1).fit_predict(flat)
        t_old = time.perf_counter() - t0
        print(f"{args.large:,} vectors: tuned choice {t_big:.1f} s (sample {choice.sample:,}), old rule's HDBSCAN on 2-D "
              f"{t_old:.1f} s (the 2-D UMAP both need is not included)")
    old, new = nmi["both demo runs"]
    print(f"clustering: {new / old:.2f}")


def fast_hdbscan_bench(n: int, size: int) -> None:
    try:
        import fast_hdbscan
    except ImportError:
        raise SystemExit("fast-hdbscan is not installed: pip install fast-hdbscan==0.3.4") from None
    import hdbscan
    from sklearn.metrics import adjusted_rand_score

    def blobs(n: int, spread: float, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        centres = rng.normal(scale=spread, size=(15, 2))
        return centres[rng.integers(0, 15, n)] + rng.normal(size=(n, 2))

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    fast_hdbscan.HDBSCAN(min_cluster_size=10).fit_predict(blobs(2000, 30))
    print(f"fast-hdbscan first call (JIT, 2,000 points): {time.perf_counter() - t0:.1f} s")
    aris = []
    for name, spread in (("separated", 30.0), ("overlapping", 10.0)):
        xy = blobs(n, spread)
        for samples in (None, size):
            a = hdbscan.HDBSCAN(min_cluster_size=size, min_samples=samples, core_dist_n_jobs=1).fit_predict(xy)
            b = fast_hdbscan.HDBSCAN(min_cluster_size=size, min_samples=samples).fit_predict(xy)
            aris.append(adjusted_rand_score(a, b))
            print(f"{n:,} {name} points, min_samples={samples}: ARI {aris[-1]:.3f}")
    print(f"fast_hdbscan_agreement: {min(aris):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=800, help="synthetic vectors with known groups")
    ap.add_argument("--large", type=int, default=0, help="also time the tuned choice at this many vectors (e.g. 100000)")
    ap.add_argument("--fast-hdbscan", action="store_true", help="compare fast-hdbscan with hdbscan instead")
    ap.add_argument("--blobs", type=int, default=100_000, help="points for --fast-hdbscan")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.fast_hdbscan:
        fast_hdbscan_bench(args.blobs, 50)
    else:
        clustering_bench(args)


if __name__ == "__main__":
    main()
