"""Layouts, clusters and their caches; the map job pipeline (one test runs real UMAP)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import services.explore.projection as projection
from services.explore.embedders import HashEmbedder
from services.explore.map_jobs import MapJobs, MapRequest, build_map, start_map
from services.explore.projection import ClusterParams, LayoutParams, cluster, exact_knn, hdbscan_labels, pca_layout, project
from tests.explore_data import insert_dataset, insert_run


def _unit(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    e = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_exact_knn_matches_brute_force_and_puts_self_first():
    e = _unit(50)
    e[7] = e[3]  # a duplicate: self must still come first
    idx, dist = exact_knn(e, 5, chunk=16)
    sims = e @ e.T
    for i in range(50):
        assert idx[i, 0] == i and dist[i, 0] == 0.0
        expected = set(np.argsort(-sims[i])[:5].tolist())
        assert len(set(idx[i].tolist()) & expected) >= 4  # ties aside
        assert np.all(np.diff(dist[i]) >= -1e-6)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_pca_and_hdbscan_on_tiny_inputs(n):
    e = _unit(n) if n else np.zeros((0, 16), np.float32)
    xy = pca_layout(e)
    assert xy.shape == (n, 2) and np.isfinite(xy).all()
    assert hdbscan_labels(xy, ClusterParams(min_cluster_size=5)).tolist() == [-1] * n


def test_identical_vectors_do_not_break_layout_or_clusters():
    e = np.tile(_unit(1), (30, 1))
    assert np.allclose(pca_layout(e), 0)
    labels = hdbscan_labels(np.zeros((30, 2), np.float32), ClusterParams(min_cluster_size=5))
    assert len(labels) == 30


def test_projection_and_clustering_are_cached(store, monkeypatch):
    calls = []

    def fake_umap(vectors, params):
        calls.append(len(vectors))
        return pca_layout(vectors) * 10

    monkeypatch.setattr(projection, "umap_layout", fake_umap)
    e = _unit(40)
    ids = [f"i{i}" for i in range(40)]
    hashes = [f"h{i}" for i in range(40)]
    pid, xy = project(store, e, ids, hashes, "m", "umap", LayoutParams())
    pid2, xy2 = project(store, e, list(reversed(ids)), list(reversed(hashes)), "m", "umap", LayoutParams())
    assert pid == pid2 and calls == [40]
    assert np.allclose(xy2, xy[::-1])
    project(store, e, ids, hashes, "m", "umap", LayoutParams(n_neighbors=5))
    assert calls == [40, 40]
    cid, labels = cluster(store, pid, xy, ids, ClusterParams(min_cluster_size=5))
    cid2, labels2 = cluster(store, pid, xy, ids, ClusterParams(min_cluster_size=5))
    assert cid == cid2 and labels.tolist() == labels2.tolist()
    assert store.scalar("SELECT count(*) FROM map_points WHERE clustering_id = ?", [cid]) == 40


def test_map_job_with_real_umap(store):
    """End to end through the job registry, with real UMAP + HDBSCAN (the one real-UMAP test)."""
    topics = ["pizza pasta oven cheese", "sushi rice fish tokyo", "football goal match team"]
    insert_run(store, "r1", [(f"{topics[i % 3]} variant {i}", {"topic": str(i % 3), "tone": "same"}) for i in range(60)])
    insert_dataset(store, "ref", [("chess board knight pawn", {"label": "x"})] * 3)
    jobs = MapJobs()
    emb = HashEmbedder()
    request = MapRequest(run_ids=("r1",), reference_id="ref", layout=LayoutParams(n_neighbors=10), min_cluster_size=5)
    job = start_map(jobs, store, emb, request)
    assert job.wait(300) and job.error is None, job.error
    data = job.result
    assert data.xy.shape == (63, 2) and len(data.labels) == 63
    assert len(set(data.labels.tolist()) - {-1}) >= 3
    assert set(data.items.frame["source"]) == {"run:r1", "reference:ref"}
    # the same request again is the same job; a fresh registry hits the caches
    assert start_map(jobs, store, emb, request) is job
    emb.calls.clear()
    again = build_map(store, emb, request)
    assert emb.calls == [] and np.allclose(again.xy, data.xy)
    jobs.shutdown()


def test_map_job_on_too_few_samples(store):
    insert_run(store, "tiny", [("one text", {"tone": "a"}), ("   ", {"tone": "b"})])
    data = build_map(store, HashEmbedder(), MapRequest(run_ids=("tiny",)))
    assert data.xy is None and len(data.items) == 1
    assert any("empty" in n for n in data.notes) and any("too few" in n for n in data.notes)


def test_cpu_path_is_chosen_without_rapids(monkeypatch):
    monkeypatch.setitem(sys.modules, "cuml", None)  # as if not installed: import raises ImportError
    projection.backend.cache_clear()
    try:
        assert projection.backend() == "cpu"
        rng = np.random.default_rng(0)
        xy = np.concatenate([rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + 20])
        labels = hdbscan_labels(xy, ClusterParams(min_cluster_size=10))
        assert len(set(labels.tolist()) - {-1}) == 2  # the CPU hdbscan ran
    finally:
        projection.backend.cache_clear()


def test_rapids_is_used_with_the_same_calls_when_a_gpu_is_present(monkeypatch):
    calls = []

    class FakeUMAP:
        def __init__(self, **kw):
            calls.append(("umap", kw))

        def fit_transform(self, e):
            return np.zeros((len(e), 2))

    class FakeHDBSCAN:
        def __init__(self, **kw):
            calls.append(("hdbscan", kw))

        def fit_predict(self, xy):
            return np.zeros(len(xy), dtype=np.int64)

    cuml = types.ModuleType("cuml")
    cuml.manifold = types.SimpleNamespace(UMAP=FakeUMAP)
    cuml.cluster = types.SimpleNamespace(HDBSCAN=FakeHDBSCAN)
    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    monkeypatch.setitem(sys.modules, "cuml", cuml)
    monkeypatch.setitem(sys.modules, "cuml.manifold", cuml.manifold)
    monkeypatch.setitem(sys.modules, "cuml.cluster", cuml.cluster)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    projection.backend.cache_clear()
    try:
        assert projection.backend() == "cuml"
        xy = projection.umap_layout(_unit(50), LayoutParams(n_neighbors=7))
        labels = hdbscan_labels(xy, ClusterParams(min_cluster_size=5))
    finally:
        projection.backend.cache_clear()
    assert xy.shape == (50, 2) and labels.dtype == np.int32
    assert calls == [("umap", dict(n_neighbors=7, min_dist=0.1, metric="cosine", random_state=42, n_components=2)),
                     ("hdbscan", dict(min_cluster_size=5, min_samples=None, cluster_selection_method="eom"))]
