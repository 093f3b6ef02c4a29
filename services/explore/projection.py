"""2-D layouts (PCA preview, UMAP) and HDBSCAN clusters, cached in DuckDB.

Measured here (docs/architecture.md, "Measured"): UMAP's numba JIT dominates the first call, so
- numba's cache directory is set (data/cache/numba unless NUMBA_CACHE_DIR is set) before umap
  is imported, so compiled code survives the process;
- below ``EXACT_KNN_MAX`` (4,096, where umap-learn itself would switch to NN-descent) the
  exact cosine k-nearest neighbours come from numpy (``E @ E.T`` in chunks) and go to UMAP as
  ``precomputed_knn``, which skips most of the JIT; above it UMAP's own NN-descent is faster in
  steady state (measured at 10,000 points: exact kNN made the map 1.43x the bare library call,
  NN-descent keeps it near 1.0), so ``warm_up`` compiles both paths (a few hundred points, then
  ~4,200), as the real maps will take them;
- HDBSCAN runs with ``core_dist_n_jobs=1`` (a worker pool cost 10 s on the first call);
  fast-hdbscan was measured against it on the same 2-D layouts (bench/clustering.py --fast-hdbscan) and is not
  used: it did not give the same clusters everywhere (ARI 0.80 on overlapping blobs at 100,000);
- with a GPU and RAPIDS cuML importable, UMAP and HDBSCAN run on cuML (same calls); without
  them, the CPU libraries above (``backend()`` says which).
A projection is cached by (items hash, model, method, parameters); a clustering by
(projection, parameters), so changing the minimum cluster size never recomputes UMAP. The default
clustering (tuned to the data, in a 10-D layout) is services.explore.cluster_tuning's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

from services.core.hashing import digest
from services.core.paths import CACHE_DIR
from services.core.store import Store

os.environ.setdefault("NUMBA_CACHE_DIR", str(CACHE_DIR / "numba"))

EXACT_KNN_MAX = 4_096
MIN_UMAP_POINTS = 10


@dataclass(frozen=True)
class LayoutParams:
    n_neighbors: int = 15
    min_dist: float = 0.1
    seed: int = 42
    n_components: int = 2  # the map is 2-D; clusters may be found in a higher-dimensional layout


def _key_fields(params: object, defaults: dict[str, object]) -> dict:
    """The fields of a parameter object for a cache key, leaving out fields added later while
    they hold their default (so existing cached layouts and clusterings keep their keys)."""
    out = asdict(params)
    for name, value in defaults.items():
        if out.get(name) == value:
            out.pop(name)
    return out


@dataclass(frozen=True)
class ClusterParams:
    min_cluster_size: int = 10
    min_samples: int | None = None
    selection: str = "eom"  # HDBSCAN's cluster_selection_method: "eom" (excess of mass) or "leaf"


def default_min_cluster_size(n: int) -> int:
    """A cluster size that gives a readable number of clusters: 5 for small sets, up to 50."""
    return int(max(5, min(50, n // 60)))


def items_hash(ids: list[str], text_hashes: list[str]) -> str:
    """The identity of a set of items: their ids and text hashes, order-independent."""
    h = hashlib.sha256()
    for item_id, th in sorted(zip(ids, text_hashes, strict=True)):
        h.update(f"{item_id}\x1f{th}\x1e".encode())
    return h.hexdigest()[:24]


def projection_key(items: str, model: str, method: str, params: LayoutParams | None) -> str:
    return digest("projection", items, model, method, _key_fields(params, {"n_components": 2}) if params else None)


def clustering_key(projection_id: str, params: ClusterParams) -> str:
    return digest("clustering", projection_id, _key_fields(params, {"selection": "eom"}))


# -- computations --------------------------------------------------------------------------


@functools.cache
def backend() -> str:
    """"cuml" when RAPIDS cuML imports and a CUDA device is visible, else "cpu" (never required)."""
    try:
        import cuml  # noqa: F401
        import cupy

        return "cuml" if cupy.cuda.runtime.getDeviceCount() > 0 else "cpu"
    except Exception:  # not installed, no driver, no device: the CPU path
        return "cpu"


def exact_knn(vectors: np.ndarray, k: int, *, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine k-nearest neighbours of L2-normalised rows (self first), from numpy.

    Returns (indices int64 n x k, cosine distances float32 n x k), the format UMAP takes as
    ``precomputed_knn``.
    """
    e = np.asarray(vectors, dtype=np.float32)
    n = len(e)
    k = min(k, n)
    idx = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, chunk):
        sims = e[start : start + chunk] @ e.T
        rows = np.arange(len(sims))
        sims[rows, start + rows] = np.inf  # self always first, even among duplicates
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(sims), 1))
        part_sims = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-part_sims, axis=1, kind="stable")
        idx[start : start + len(sims)] = np.take_along_axis(part, order, axis=1)
        best = np.take_along_axis(part_sims, order, axis=1)
        best[:, 0] = 1.0
        dist[start : start + len(sims)] = np.clip(1.0 - best, 0.0, 2.0)
    return idx, dist


def pca_layout(vectors: np.ndarray, fit_max: int | None = None) -> np.ndarray:
    """A 2-D PCA layout (instant; the preview while UMAP computes). Works for any n >= 0.

    With ``fit_max``, the axes come from a fixed random sample of that many points (all points
    are projected): a preview of 10^5 points in tens of milliseconds."""
    e = np.asarray(vectors, dtype=np.float64)
    n = len(e)
    out = np.zeros((n, 2), dtype=np.float32)
    if n < 2:
        return out
    if fit_max is not None and n > fit_max:
        sample = e[np.sort(np.random.default_rng(0).choice(n, fit_max, replace=False))]
        mean = sample.mean(axis=0)
        axes = np.linalg.eigh((sample - mean).T @ (sample - mean))[1][:, ::-1][:, :2]
        return ((e - mean) @ axes).astype(np.float32)
    centred = e - e.mean(axis=0)
    if not np.any(centred):
        return out
    # SVD of the (n x d) matrix; for many points use the d x d covariance (faster, same axes).
    if n > e.shape[1]:
        _, vecs = np.linalg.eigh(centred.T @ centred)
        axes = vecs[:, ::-1][:, :2]
    else:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        axes = vt[:2].T
    xy = centred @ axes
    out[:, : xy.shape[1]] = xy
    return out


def umap_layout(vectors: np.ndarray, params: LayoutParams = LayoutParams()) -> np.ndarray:
    """UMAP (cosine) to ``params.n_components`` dimensions (2 for a map); exact numpy kNN passed as ``precomputed_knn`` below EXACT_KNN_MAX points.

    Fewer than MIN_UMAP_POINTS points get the PCA layout (UMAP needs neighbours to work with).
    """
    e = np.asarray(vectors, dtype=np.float32)
    n = len(e)
    if n < MIN_UMAP_POINTS:
        return pca_layout(e)
    k = int(max(2, min(params.n_neighbors, n - 1)))
    kwargs = dict(n_neighbors=k, min_dist=float(params.min_dist), metric="cosine", random_state=int(params.seed),
                  n_components=int(params.n_components))
    if backend() == "cuml":
        from cuml.manifold import UMAP

        return np.asarray(UMAP(**kwargs).fit_transform(e), dtype=np.float32)
    import umap  # after NUMBA_CACHE_DIR is set

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if n < EXACT_KNN_MAX:
            knn = exact_knn(e, k)
            reducer = umap.UMAP(precomputed_knn=knn, force_approximation_algorithm=True, **kwargs)
        else:
            reducer = umap.UMAP(**kwargs)
        xy = reducer.fit_transform(e)
    return np.asarray(xy, dtype=np.float32)


def hdbscan_labels(xy: np.ndarray, params: ClusterParams = ClusterParams()) -> np.ndarray:
    """HDBSCAN clusters of the points (the 2-D layout, or any layout); -1 is noise. Too few points: all noise."""
    n = len(xy)
    size = max(2, int(params.min_cluster_size))
    if n < max(size, 3):
        return np.full(n, -1, dtype=np.int32)
    samples = None if params.min_samples is None else max(1, min(int(params.min_samples), n - 1))
    if backend() == "cuml":
        from cuml.cluster import HDBSCAN

        clusterer = HDBSCAN(min_cluster_size=size, min_samples=samples, cluster_selection_method=params.selection)
    else:
        import hdbscan

        clusterer = hdbscan.HDBSCAN(min_cluster_size=size, min_samples=samples, cluster_selection_method=params.selection,
                                    core_dist_n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            labels = clusterer.fit_predict(np.asarray(xy, dtype=np.float64))
        except ValueError:
            # e.g. every point at one spot: no density structure to find.
            return np.full(n, -1, dtype=np.int32)
    return np.asarray(labels, dtype=np.int32)


# -- the cache -----------------------------------------------------------------------------


def load_projection(store: Store, projection_id: str, ids: list[str]) -> np.ndarray | None:
    """Cached coordinates for ``ids`` (in that order), or None when not cached."""
    if store.scalar("SELECT count(*) FROM projections WHERE projection_id = ?", [projection_id]) == 0:
        return None
    table = store.query_arrow("SELECT item_id, x, y FROM projection_points WHERE projection_id = ?", [projection_id])
    pos = {item_id: i for i, item_id in enumerate(table.column("item_id").to_pylist())}
    try:
        order = np.array([pos[i] for i in ids], dtype=np.int64)
    except KeyError:
        return None
    xs = table.column("x").to_numpy()
    ys = table.column("y").to_numpy()
    return np.stack([xs[order], ys[order]], axis=1).astype(np.float32) if len(ids) else np.zeros((0, 2), np.float32)


def _save_points(store: Store, table_name: str, key_col: str, key: str, ids: list[str], columns: dict[str, np.ndarray]) -> None:
    batch = pa.table({"item_id": pa.array(ids, pa.string()), **{c: pa.array(v) for c, v in columns.items()}})
    cols = ", ".join(columns)
    with store.write() as cur:
        cur.register("_new_points", batch)
        try:
            cur.execute(f"DELETE FROM {table_name} WHERE {key_col} = ?", [key])
            cur.execute(f"INSERT INTO {table_name} ({key_col}, item_id, {cols}) SELECT ?, item_id, {cols} FROM _new_points", [key])
        finally:
            cur.unregister("_new_points")


def project(
    store: Store,
    vectors: np.ndarray,
    ids: list[str],
    text_hashes: list[str],
    model: str,
    method: str = "umap",
    params: LayoutParams | None = None,
) -> tuple[str, np.ndarray]:
    """The layout of these items (cached): returns (projection_id, xy in the order of ids)."""
    params = params or LayoutParams()
    layout_params = params if method == "umap" else None
    ih = items_hash(ids, text_hashes)
    pid = projection_key(ih, model, method, layout_params)
    cached = load_projection(store, pid, ids)
    if cached is not None:
        return pid, cached
    t0 = time.perf_counter()
    xy = umap_layout(vectors, params) if method == "umap" else pca_layout(vectors)
    seconds = time.perf_counter() - t0
    _save_points(store, "projection_points", "projection_id", pid, ids,
                 {"x": xy[:, 0].astype(np.float64), "y": xy[:, 1].astype(np.float64)})
    with store.write() as cur:
        cur.execute(
            "INSERT INTO projections (projection_id, items_hash, model, method, params, n_points, seconds)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [pid, ih, model, method, json.dumps(asdict(layout_params) if layout_params else {}), len(ids), seconds],
        )
    return pid, xy


def load_clustering(store: Store, clustering_id: str, ids: list[str]) -> tuple[np.ndarray, dict] | None:
    """Cached labels for ``ids`` (in that order) and the clustering's stored parameters, or None."""
    found = store.query("SELECT params FROM clusterings WHERE clustering_id = ?", [clustering_id])
    if not found:
        return None
    rows = dict(store.query("SELECT item_id, cluster FROM cluster_assignments WHERE clustering_id = ?", [clustering_id]))
    if not all(i in rows for i in ids):
        return None
    params = found[0][0]
    return np.array([rows[i] for i in ids], dtype=np.int32), (json.loads(params) if isinstance(params, str) else dict(params or {}))


def save_clustering(store: Store, clustering_id: str, projection_id: str, ids: list[str], labels: np.ndarray,
                    params: dict, seconds: float) -> None:
    """Store a clustering's labels and its parameters (any JSON: a tuned choice keeps its reasons)."""
    _save_points(store, "cluster_assignments", "clustering_id", clustering_id, ids, {"cluster": labels.astype(np.int32)})
    n_clusters = len(set(labels.tolist()) - {-1})
    noise = float(np.mean(labels == -1)) if len(labels) else 0.0
    with store.write() as cur:
        cur.execute(
            "INSERT INTO clusterings (clustering_id, projection_id, params, n_clusters, noise_share, seconds)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [clustering_id, projection_id, json.dumps(params), n_clusters, noise, seconds],
        )


def cluster(store: Store, projection_id: str, xy: np.ndarray, ids: list[str], params: ClusterParams) -> tuple[str, np.ndarray]:
    """HDBSCAN labels for a projection (cached): returns (clustering_id, labels in the order of ids)."""
    cid = clustering_key(projection_id, params)
    cached = load_clustering(store, cid, ids)
    if cached is not None:
        return cid, cached[0]
    t0 = time.perf_counter()
    labels = hdbscan_labels(xy, params)
    save_clustering(store, cid, projection_id, ids, labels, asdict(params), time.perf_counter() - t0)
    return cid, labels


def warm_up(sizes: tuple[int, ...] = (600, EXACT_KNN_MAX + 100), dim: int = 384, seed: int = 0) -> float:
    """Compile UMAP's and HDBSCAN's numba code on random vectors through the same code paths as
    real maps: exact kNN -> precomputed_knn (small maps) and NN-descent (maps of EXACT_KNN_MAX
    points and more). Returns the seconds it took. Call it in a background thread at start,
    never in the script thread."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    for n in sizes:
        e = rng.normal(size=(n, dim)).astype(np.float32)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        xy = umap_layout(e, LayoutParams())
        hdbscan_labels(xy, ClusterParams(min_cluster_size=default_min_cluster_size(n)))
    return time.perf_counter() - t0
