"""Comparing pipelines on the same samples: counts add up, flags, distributions, both-way diffs."""

from __future__ import annotations

import json

import numpy as np

from services.core.hashing import text_hash
from services.curation.compare import build_batch_map, compare, diversity_before_after, intended_distribution
from services.curation.pipeline import FilterContext, Pipeline, ScoreCache, load_batch
from services.curation.review_store import edit_sample
from services.explore.diversity import metrics
from services.explore.embedders import HashEmbedder
from services.explore.embedding_store import embed_texts
from tests.explore_data import insert_run


def crafted_run(store) -> None:
    samples = []
    for i in range(12):
        samples.append((f"A calm story about rain number {i} with a long enough body of words.", {"mood": "calm", "length": "long"}))
    for i in range(6):
        samples.append((f"As an AI language model, I cannot write story {i}.", {"mood": "angry", "length": "long"}))
    for _ in range(6):
        samples.append(("Short joy.", {"mood": "happy", "length": "short"}))  # exact duplicates
    insert_run(store, "r1", samples)
    # The plan asked for the three moods equally.
    with store.write() as cur:
        for i, mood in enumerate(["calm", "angry", "happy"] * 8):
            cur.execute("INSERT INTO plan_items (plan_id, idx, item_key, condition, demo_ids, messages) "
                        "VALUES ('plan-r1', ?, ?, MAP(['mood'], [?]), [], ?)", [i, f"k{i}", mood, json.dumps([])])


A = Pipeline.parse({"name": "A", "steps": [{"kind": "refusal"}, {"kind": "exact_dedup"}]})
B = Pipeline.parse({"name": "B", "steps": [{"kind": "length", "min": 5}, {"kind": "exact_dedup"}]})


def test_counts_add_up_and_flags(store):
    crafted_run(store)
    batch = load_batch(store, "r1")
    clusters = {k: (0 if i < 12 else 1 if i < 18 else 2) for i, k in enumerate(batch.keys)}
    c = compare(batch, [A, B], FilterContext(store=store), clusters=clusters, intended=intended_distribution(store, "r1"))
    for r in c.results:
        steps = c.steps[c.steps.pipeline == r.pipeline.name]
        assert steps["dropped"].sum() == r.n_dropped and r.n_kept + r.n_dropped == len(batch) == 24
        assert (steps["in"] - steps["dropped"]).tolist() == steps["out"].tolist()
        assert steps["out"].iloc[-1] == r.n_kept
        reasons = c.reasons[c.reasons.pipeline == r.pipeline.name]
        assert reasons["count"].sum() == r.n_dropped
    assert c.summary.set_index("pipeline")["kept"].to_dict() == {"A": 13, "B": 18}
    msgs = [f.message for f in c.flags]
    assert "A removes every sample of mood = angry (6 of 6)." in msgs
    assert "A removes every sample of cluster 1 (6 of 6)." in msgs
    assert "B removes every sample of mood = happy (6 of 6)." in msgs
    assert any(f.level == "hit_hard" and f.value == "happy" and f.pipeline == "A" for f in c.flags)  # 5 of 6 removed
    # Kept by one, dropped by the other, both ways.
    a_not_b = c.kept_by_dropped_by(0, 1)
    b_not_a = c.kept_by_dropped_by(1, 0)
    assert len(a_not_b) == 1 and a_not_b["reason"].iloc[0].startswith("too short")
    assert len(b_not_a) == 6 and b_not_a["reason"].str.startswith("refusal").all()
    # Intended (plan) vs remaining.
    dist = c.distribution.set_index(["dimension", "value"])
    assert np.isclose(dist.loc[("mood", "angry"), "intended"], 1 / 3)
    assert np.isclose(dist.loc[("mood", "calm"), "generated"], 0.5)
    assert dist.loc[("mood", "angry"), "A"] == 0 and np.isclose(dist.loc[("mood", "calm"), "A"], 12 / 13)
    by_cond = c.by_condition.set_index(["pipeline", "group", "value"])
    assert by_cond.loc[("B", "length", "short"), "share_removed"] == 1.0


def test_threshold_change_reuses_cached_scores(store):
    crafted_run(store)
    batch = load_batch(store, "r1")
    cache = ScoreCache()
    first = compare(batch, [A, B], cache=cache)
    misses = cache.misses
    stricter = Pipeline.parse({"name": "B", "steps": [{"kind": "length", "min": 12}, {"kind": "exact_dedup"}]})
    second = compare(batch, [A, stricter], cache=cache)
    assert cache.misses == misses  # only re-thresholded
    assert second.results[1].n_kept < first.results[1].n_kept


def test_diversity_before_and_after_uses_explore_metrics(store):
    crafted_run(store)
    batch = load_batch(store, "r1")
    vectors = embed_texts(store, HashEmbedder(), batch.texts)
    cache = ScoreCache()
    c = compare(batch, [A, B], cache=cache)
    d = diversity_before_after(c, vectors, cache)
    assert d["set"].tolist() == ["before filtering", "A", "B"]
    assert d["samples"].tolist() == [24, 13, 18]
    # A removed the refusals: their words leave the vocabulary.
    assert d.loc[1, "vocabulary"] < d.loc[0, "vocabulary"] and d.loc[1, "vendi"] is not None
    assert {"self_bleu", "vendi", "mean_cosine", "vocabulary"} <= set(d.columns)
    hits = cache.hits
    diversity_before_after(c, vectors, cache)
    assert cache.hits == hits + 3


def test_empty_run_compares_to_zero(store):
    insert_run(store, "empty", [])
    c = compare(load_batch(store, "empty"), [A, B])
    assert c.summary["kept"].tolist() == [0, 0] and c.flags == []


def test_edited_texts_drive_the_map_and_the_metrics(store, monkeypatch):
    import services.explore.projection as projection

    monkeypatch.setattr(projection, "umap_layout", lambda v, p: projection.pca_layout(v))  # UMAP itself: test_projection.py
    crafted_run(store)
    edited = "A lighthouse keeper counts gulls while the kettle sings."
    edit_sample(store, "r1-0", edited)
    edit_sample(store, "r1-1", "")  # an emptied text has nothing to embed
    batch = load_batch(store, "r1")
    assert batch.n_edited == 2 and batch.texts[0] == edited
    emb = HashEmbedder()
    m = build_batch_map(store, emb, batch)
    assert m.items.ids == [batch.keys[0], *batch.keys[2:]] and m.items.texts[0] == edited
    assert np.allclose(m.vectors[0], embed_texts(store, emb, [edited])[0])
    assert m.labels is not None and len(m.layout) == len(m.items) and "1 empty text(s)" in m.notes[0]
    # The layout is cached under the edited texts: a run that was never edited shares Explore's.
    hashes = store.query("SELECT items_hash FROM projections")
    assert hashes == [(projection.items_hash(m.items.ids, [text_hash(t) for t in m.items.texts]),)]
    # The metrics before and after filtering read the edited texts too.
    before = diversity_before_after(compare(batch, [A, B]), None, self_bleu=False).loc[0]
    originals = [t for (t,) in store.query("SELECT original_text FROM samples_latest WHERE run_id = 'r1' ORDER BY item_idx")]
    assert before["vocabulary"] == metrics(batch.texts, None, None, bleu_sample=0)["vocabulary"]
    assert before["vocabulary"] != metrics(originals, None, None, bleu_sample=0)["vocabulary"]
