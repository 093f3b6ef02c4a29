"""The tuned default clustering, cluster names at their centres, and LLM names (mock server)."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

import services.explore.projection as projection
from services.explore import cluster_tuning
from services.explore.cluster_keywords import centres, name_positions, safe_label, short_names
from services.explore.cluster_naming import name_clusters, naming_plan, parse_name
from services.explore.cluster_tuning import ClusterChoice, auto_cluster, candidate_grid, nearest_labels, tuned_labels
from services.explore.embedders import HashEmbedder
from services.explore.map_jobs import MapRequest, build_map
from services.generation.backends import BackendConfig
from tests.explore_data import insert_run
from tests.mock_openai import MockServer


def _groups(sizes: list[int], d: int = 32, spread: float = 0.15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres_ = rng.normal(size=(len(sizes), d))
    truth = np.repeat(np.arange(len(sizes)), sizes)
    e = centres_[truth] + spread * rng.normal(size=(len(truth), d))
    return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32), truth


@pytest.fixture
def pca_space(monkeypatch):
    """UMAP stubbed by PCA (real UMAP: test_projection); the 10-D space is then PCA's 2-D too."""
    monkeypatch.setattr(projection, "umap_layout", lambda v, p: projection.pca_layout(v) * 3)


def test_the_choice_is_made_by_the_stated_rule_and_reported(pca_space):
    from sklearn.metrics import adjusted_rand_score

    vectors, truth = _groups([40, 40, 40, 40])
    labels, choice = tuned_labels(vectors, projection.pca_layout(vectors))
    assert choice.rule == "tuned" and len(choice.candidates) > len(candidate_grid(len(vectors)))  # both spaces tried
    ok = [c for c in choice.candidates if c.noise <= cluster_tuning.NOISE_CAP and c.silhouette is not None]
    assert choice.silhouette == max(c.silhouette for c in ok)  # the best silhouette under the noise cap
    assert choice.noise <= cluster_tuning.NOISE_CAP and choice.n_clusters == len(set(labels.tolist()) - {-1})
    assert adjusted_rand_score(truth, labels) > 0.9
    words = choice.caption()
    assert f"min cluster size {choice.params.min_cluster_size}" in words and "silhouette" in words
    assert f"{len(choice.candidates)} settings tried" in words and "25% noise" in words


def test_no_setting_under_the_noise_cap_falls_back_to_the_least_noise_and_says_so():
    vectors, _ = _groups([30, 30])
    xy = projection.pca_layout(vectors)
    grid = [projection.ClusterParams(min_cluster_size=s, selection=sel) for s in (5, 20) for sel in ("eom", "leaf")]
    labels, best, candidates, reason = cluster_tuning.tune(vectors, {"2-D layout": (xy, grid)}, noise_cap=-1.0)
    assert "least noise" in reason and best.noise == min(c.noise for c in candidates)
    assert float(np.mean(labels == -1)) == best.noise


def test_few_points_keep_the_old_rule(pca_space):
    vectors, _ = _groups([10, 10])
    _, choice = tuned_labels(vectors, projection.pca_layout(vectors))
    assert choice.rule == "size rule" and "Fewer than 30" in choice.caption()


def test_large_sets_tune_on_a_sample_and_vote_the_rest(pca_space):
    vectors, truth = _groups([150, 150, 150], d=16, spread=0.1)
    labels, choice = tuned_labels(vectors, projection.pca_layout(vectors), sample_max=120)  # votes on the 2-D layout
    assert choice.sample == 120 and "sample of 120 points" in choice.caption()
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(truth, labels) > 0.9  # the unsampled points took their group's label


def test_nearest_labels_votes_and_breaks_ties_by_the_nearest():
    sample_vecs = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    sample_vecs /= np.linalg.norm(sample_vecs, axis=1, keepdims=True)
    vectors = np.vstack([sample_vecs, [[0.95, 0.05]], [[0.05, 0.95]]]).astype(np.float32)
    out = nearest_labels(vectors, np.arange(4), np.array([0, 0, 1, 1], dtype=np.int32), k=3)
    assert out.tolist() == [0, 0, 1, 1, 0, 1]


def test_the_choice_is_cached_with_its_reasons(store, pca_space, monkeypatch):
    vectors, _ = _groups([40, 40, 40])
    ids = [f"i{i}" for i in range(len(vectors))]
    xy = projection.pca_layout(vectors)
    cid, labels, choice = auto_cluster(store, "p1", vectors, xy, ids)
    monkeypatch.setattr(cluster_tuning, "tuned_labels", lambda *a, **k: pytest.fail("recomputed"))
    cid2, labels2, choice2 = auto_cluster(store, "p1", vectors, xy, list(reversed(ids)))
    assert cid2 == cid and labels2.tolist() == labels.tolist()[::-1] and choice2 == choice
    stored = json.loads(store.scalar("SELECT params FROM clusterings WHERE clustering_id = ?", [cid]))
    assert ClusterChoice.from_json(stored) == choice


def test_a_map_says_how_its_clusters_were_made(store, pca_space):
    topics = ["pizza pasta oven cheese", "sushi rice fish tokyo", "football goal match team"]
    insert_run(store, "r1", [(f"{topics[i % 3]} variant {i}", {"topic": str(i % 3)}) for i in range(90)])
    auto = build_map(store, HashEmbedder(), MapRequest(run_ids=("r1",)))
    assert auto.cluster_choice.rule == "tuned" and auto.cluster_params == auto.cluster_choice.params
    user = build_map(store, HashEmbedder(), MapRequest(run_ids=("r1",), min_cluster_size=7, selection="leaf"))
    assert user.cluster_choice.rule == "user" and user.cluster_params.selection == "leaf"
    assert "(set by you)" in user.cluster_choice.caption() and "leaf" in user.cluster_choice.caption()


def test_names_sit_at_cluster_medians_largest_first_without_piling_up():
    xy = np.array([[0, 0], [0, 0.2], [10, 0], [10, 1], [10, 2], [0.1, 0.1], [5, 5]], dtype=float)
    labels = np.array([0, 0, 1, 1, 1, 2, -1])
    assert centres(xy, labels)[1] == (10.0, 1.0, 3)
    placed = name_positions(xy, labels, {0: "a", 1: "b", 2: "c"})
    assert [p[2] for p in placed] == ["b", "a"]  # c's centre is on top of a's (a is larger)
    assert len(name_positions(xy, labels, {0: "a", 1: "b", 2: "c"}, max_names=1)) == 1


def test_names_are_safe_for_plotly_annotations():
    assert safe_label("<b>bold</b> & <a href='x'>link</a>") == "b bold /b a href='x' link /a"
    assert "<" not in safe_label("&lt;script&gt;") and "&" not in safe_label("&lt;script&gt;")
    assert len(safe_label("word " * 40)) <= 40
    names = short_names(["pizza oven crust"] * 5 + ["sushi rice fish"] * 5, np.array([0] * 5 + [1] * 5))
    assert set(names[0].split(" · ")) == {"pizza", "oven", "crust"}


def test_parse_name_keeps_a_few_safe_words():
    assert parse_name('Name: "Rude Service Complaints."\nBecause...') == "Rude Service Complaints"
    assert parse_name("<script>x</script> pizza") == "script x /script pizza"
    assert parse_name("   \n ") is None


def _clustered_texts():
    texts = [f"pizza oven crust cheese {i}" for i in range(6)] + [f"sushi rice fish tokyo {i}" for i in range(6)]
    vectors = HashEmbedder().encode(texts)
    return texts, vectors, np.array([0] * 6 + [1] * 6)


def test_llm_names_come_from_the_backend_with_the_cost_first():
    texts, vectors, labels = _clustered_texts()
    plan = naming_plan(texts, vectors, labels)
    assert plan.calls == 2 and plan.prompt_tokens() > 0
    assert plan.cost("gpt-4o-mini") is not None and plan.cost("no-such-model") is None
    assert naming_plan(texts, vectors, labels, skip=[0]).calls == 1  # already named: not asked again
    with MockServer() as url:
        cfg = BackendConfig("custom", url, "mock-model", "sk-test", timeout_s=5, max_retries=0)
        names, errors = name_clusters(cfg, None, plan)
        stats = json.load(urllib.request.urlopen(f"{url.removesuffix('/v1')}/_stats"))
    assert errors == [] and set(names) == {0, 1} and stats["requests"] == 2
    assert all(n and "<" not in n and len(n.split()) <= 6 for n in names.values())


def test_a_failing_backend_leaves_the_keywords_with_a_sentence():
    texts, vectors, labels = _clustered_texts()
    texts[0] = texts[0] + " [[500]]"  # the mock fails every request whose prompt carries this
    plan = naming_plan(texts, vectors, labels)
    with MockServer() as url:
        cfg = BackendConfig("custom", url, "mock-model", "sk-test", timeout_s=5, max_retries=0)
        names, errors = name_clusters(cfg, None, plan)
    assert 0 not in names and 1 in names
    assert len(errors) == 1 and "keep their keywords" in errors[0] and "HTTP 500" in errors[0]
    dead = BackendConfig("custom", "http://127.0.0.1:9/v1", "m", None, timeout_s=2, max_retries=0)
    names, errors = name_clusters(dead, None, plan)
    assert names == {} and len(errors) == 1 and errors[0].startswith("2 of 2 cluster(s) got no name from m")
    assert "Connection refused" in errors[0] and "?." not in errors[0]


def test_compare_filters_map_of_an_unedited_run_is_explores_map(store, pca_space):
    from services.curation.compare import build_batch_map
    from services.curation.pipeline import load_batch

    topics = ["pizza pasta oven cheese", "sushi rice fish tokyo", "football goal match team"]
    insert_run(store, "r1", [(f"{topics[i % 3]} variant {i}", {"topic": str(i % 3)}) for i in range(60)])
    explore = build_map(store, HashEmbedder(), MapRequest(run_ids=("r1",)))
    batch = build_batch_map(store, HashEmbedder(), load_batch(store, "r1"))
    assert batch.items.ids == explore.items.ids  # the same samples, keyed alike
    assert (batch.projection_id, batch.clustering_id) == (explore.projection_id, explore.clustering_id)
    assert batch.cluster_choice == explore.cluster_choice and batch.cluster_choice.rule == "tuned"
