"""Pairs of vectors above a cosine threshold, exact for small sets and approximate at scale.

Up to ``EXACT_MAX`` vectors the pairs come from numpy in row chunks (``E[a:b] @ E.T``, never a
full n x n matrix); beyond, from an approximate k-nearest-neighbour graph (faiss's HNSW index on inner products;
pynndescent, which umap-learn brings, was tried first: its numba JIT cost 200 s per process
here on 3,300 vectors). The cosine of every
pair found is recomputed exactly, so the approximate path can only miss pairs, never invent
them; duplicates are each other's nearest neighbours, so groups and verdicts come out the same
(tests compare both paths on the same data).
"""

from __future__ import annotations

import numpy as np

EXACT_MAX = 20_000  # chunked exact search is 400M dot products here; beyond, the kNN graph
ANN_K = 16  # neighbours per vector in the approximate graph
HNSW_M = 32  # links per node in the HNSW graph (faiss's usual choice)


def similar_pairs(vectors: np.ndarray, threshold: float, *, exact_max: int | None = None, k: int = ANN_K,
                  chunk: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) of L2-normalised rows with cosine >= ``threshold``: (i, j, cosine), sorted by (i, j)."""
    e = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(e)
    limit = EXACT_MAX if exact_max is None else exact_max
    if n < 2:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    if n <= limit:
        return _exact_pairs(e, threshold, chunk)
    return _approximate_pairs(e, threshold, k)


def _exact_pairs(e: np.ndarray, threshold: float, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out_i, out_j, out_s = [], [], []
    for start in range(0, len(e), chunk):
        sims = e[start : start + chunk] @ e[start:].T  # only the upper triangle's columns
        rows, cols = np.nonzero(sims >= threshold)
        upper = cols > rows  # both relative to start: the strict upper triangle
        out_i.append(rows[upper] + start)
        out_j.append(cols[upper] + start)
        out_s.append(sims[rows[upper], cols[upper]].astype(np.float64))
    return np.concatenate(out_i).astype(np.int64), np.concatenate(out_j).astype(np.int64), np.concatenate(out_s)


def _approximate_pairs(e: np.ndarray, threshold: float, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import faiss

    n, d = e.shape
    index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)  # inner product = cosine on unit rows
    index.hnsw.efConstruction = 80
    index.add(e)
    index.hnsw.efSearch = max(64, 2 * k)
    sims, idx = index.search(e, min(k + 1, n))
    i = np.repeat(np.arange(n, dtype=np.int64), idx.shape[1])
    j = idx.ravel().astype(np.int64)
    ok = (j >= 0) & (j != i) & (sims.ravel() >= threshold - 1e-4)  # the exact check is below
    i, j = np.minimum(i[ok], j[ok]), np.maximum(i[ok], j[ok])
    pairs = np.unique(np.stack([i, j], axis=1), axis=0) if len(i) else np.zeros((0, 2), dtype=np.int64)
    i, j = pairs[:, 0], pairs[:, 1]
    exact = np.einsum("ij,ij->i", e[i], e[j]).astype(np.float64)
    keep = exact >= threshold
    return i[keep], j[keep], exact[keep]
