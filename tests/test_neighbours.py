"""Near-duplicate pairs: the approximate-neighbour path gives the exact path's groups and verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

import services.explore.neighbours as neighbours
from services.curation.dedup_steps import SemanticDedupStep
from services.curation.pipeline import FilterContext, SampleBatch
from services.explore.gaps import near_duplicate_groups
from services.explore.neighbours import similar_pairs

DIM = 48


def planted(n_groups: int = 120, n_single: int = 1500, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Unrelated vectors plus groups of 2-30 near-copies (cosine ~0.99 inside a group); some
    groups are larger than the approximate graph's k, so they only connect through chains."""
    rng = np.random.default_rng(seed)
    vecs, names = [], []
    for g in range(n_groups):
        centre = rng.normal(size=DIM)
        size = 30 if g % 10 == 0 else int(rng.integers(2, 6))
        for m in range(size):
            vecs.append(centre + rng.normal(scale=0.08, size=DIM))
            names.append(f"g{g}-{m}")
    for s in range(n_single):
        vecs.append(rng.normal(size=DIM))
        names.append(f"single-{s}")
    order = rng.permutation(len(vecs))  # duplicates are not neighbours in row order
    e = np.array(vecs, dtype=np.float32)[order]
    return e / np.linalg.norm(e, axis=1, keepdims=True), [names[i] for i in order]


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def test_approximate_pairs_are_exact_pairs_and_give_the_same_groups():
    e, _ = planted()
    n = len(e)
    ei, ej, es = similar_pairs(e, 0.95)
    ai, aj, asim = similar_pairs(e, 0.95, exact_max=0)  # force the approximate-neighbour index
    exact = set(zip(ei.tolist(), ej.tolist(), strict=True))
    approx = set(zip(ai.tolist(), aj.tolist(), strict=True))
    assert len(exact) > 1000 and approx <= exact  # never a pair the exact search would not give
    assert np.all(asim >= 0.95)
    # the same groups: identical connected components
    ce, ca = components(n, ei, ej), components(n, ai, aj)
    assert pd.crosstab(ce, ca).astype(bool).sum(axis=1).max() == 1
    assert len(set(ce.tolist())) == len(set(ca.tolist()))
    # groups of at most k members keep every pair (larger ones may connect through chains)
    sizes = np.bincount(ce)
    small = {(a, b) for a, b in exact if sizes[ce[a]] <= neighbours.ANN_K}
    assert small and small <= approx


def test_exact_path_matches_brute_force():
    e, _ = planted(n_groups=10, n_single=100)
    i, j, s = similar_pairs(e, 0.9, chunk=37)
    sims = e @ e.T
    bi, bj = np.nonzero(np.triu(sims >= 0.9, k=1))
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == list(zip(bi.tolist(), bj.tolist(), strict=True))
    assert np.allclose(s, sims[bi, bj], atol=1e-5)


class PlantedEmbedder:
    """Returns the planted vector of each text (texts are the vectors' names)."""

    def __init__(self, vectors: np.ndarray, names: list[str]) -> None:
        self.name = "planted"
        self._by_name = dict(zip(names, vectors, strict=True))

    def encode(self, texts):
        return np.array([self._by_name[t] for t in texts], dtype=np.float32)


def test_semantic_dedup_verdicts_are_the_same_on_both_paths(store, monkeypatch):
    e, names = planted(n_groups=80, n_single=800, seed=1)
    batch = SampleBatch.from_texts(names)
    ctx = FilterContext(store=store, embedder=PlantedEmbedder(e, names))
    for keep in ("first", "centre"):
        exact = SemanticDedupStep(threshold=0.95, keep=keep).verdicts(batch, ctx)
        monkeypatch.setattr(neighbours, "EXACT_MAX", 0)
        approx = SemanticDedupStep(threshold=0.95, keep=keep).verdicts(batch, ctx)
        monkeypatch.setattr(neighbours, "EXACT_MAX", 20_000)
        assert [v.kept for v in approx] == [v.kept for v in exact]
        dropped = sum(not v.kept for v in exact)
        assert dropped == len(names) - 800 - 80  # every planted copy but one per group


def test_near_duplicate_groups_are_the_same_on_both_paths(monkeypatch):
    e, names = planted(n_groups=40, n_single=300, seed=2)
    frame = pd.DataFrame({"id": names, "text": names, "run_id": "r1"})
    exact = near_duplicate_groups(frame, e, [], threshold=0.95)
    monkeypatch.setattr(neighbours, "EXACT_MAX", 0)
    approx = near_duplicate_groups(frame, e, [], threshold=0.95)
    assert len(exact) == 40
    assert sorted(map(sorted, exact["ids"])) == sorted(map(sorted, approx["ids"]))
