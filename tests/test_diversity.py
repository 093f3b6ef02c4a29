"""Diversity metrics against hand-computed values and sacrebleu."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sacrebleu.metrics import BLEU

from services.explore.diversity import (
    cluster_stats,
    distinct_n,
    diversity_table,
    mean_pairwise_cosine,
    self_bleu,
    vendi_score,
    vocabulary_size,
)

TOY = ["the cat sat", "the cat ran", "a dog ran"]


def test_distinct_n_and_vocabulary_on_toy_corpus():
    # unigrams: the cat sat the cat ran a dog ran -> 9 total, {the,cat,sat,ran,a,dog} = 6 unique
    assert distinct_n(TOY, 1) == pytest.approx(6 / 9)
    # bigrams: (the cat)x2 (cat sat) (cat ran) (a dog) (dog ran) -> 6 total, 5 unique
    assert distinct_n(TOY, 2) == pytest.approx(5 / 6)
    # trigrams: 3 total, all unique
    assert distinct_n(TOY, 3) == pytest.approx(1.0)
    assert vocabulary_size(TOY) == 6
    assert distinct_n(["one"], 2) is None  # no bigrams at all
    assert vocabulary_size(["Ünïcode ÜNÏCODE", "日本語"]) == 2


def test_self_bleu_matches_sacrebleu_and_bounds():
    texts = ["the cat sat on the mat today", "the cat sat on the mat again", "a completely different sentence here now"]
    bleu = BLEU(effective_order=True)
    expected = np.mean([bleu.sentence_score(h, [t for j, t in enumerate(texts) if j != i]).score for i, h in enumerate(texts)])
    got, used = self_bleu(texts)
    assert used == 3
    assert got == pytest.approx(expected)
    same, _ = self_bleu(["exactly the same words here"] * 4)
    assert same == pytest.approx(100.0)
    assert self_bleu(["only one"]) == (None, 1)
    # sampled: the number of texts used is reported
    _, used = self_bleu([f"text number {i} with words" for i in range(50)], sample=10)
    assert used == 10


def test_mean_pairwise_cosine_hand_computed():
    e = np.array([[1, 0], [0, 1], [1, 0]], dtype=np.float32)
    # pairs: (0,1)=0, (0,2)=1, (1,2)=0 -> mean 1/3
    assert mean_pairwise_cosine(e) == pytest.approx(1 / 3)
    assert mean_pairwise_cosine(e[:1]) is None


def test_vendi_identical_vs_orthogonal():
    same = np.tile(np.array([[0.6, 0.8, 0.0]], dtype=np.float32), (5, 1))
    assert vendi_score(same) == pytest.approx(1.0)
    ortho = np.eye(4, dtype=np.float32)
    assert vendi_score(ortho) == pytest.approx(4.0)
    # two orthogonal pairs of duplicates: effective number 2
    assert vendi_score(np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)) == pytest.approx(2.0)


def test_cluster_stats():
    s = cluster_stats([0, 0, 1, 1, -1])
    assert s["clusters"] == 2
    assert s["noise_share"] == pytest.approx(0.2)
    assert s["cluster_entropy_bits"] == pytest.approx(1.0)
    assert cluster_stats([-1, -1])["cluster_entropy_bits"] is None
    assert cluster_stats([0, 0, 0])["cluster_entropy_bits"] == pytest.approx(0.0)


def test_diversity_table_per_group():
    frame = pd.DataFrame({"text": TOY + ["x"], "run_id": ["a", "a", "b", "c"]})
    e = np.eye(4, dtype=np.float32)
    table = diversity_table(frame, e, np.array([0, 0, 1, -1]), by="run_id")
    assert list(table["group"]) == ["a", "b", "c"]
    row_a = table.set_index("group").loc["a"]
    assert row_a["n"] == 2 and row_a["mean_cosine"] == pytest.approx(0.0) and row_a["vendi"] == pytest.approx(2.0)
    assert math.isnan(table.set_index("group").loc["c", "mean_cosine"]) or table.set_index("group").loc["c", "mean_cosine"] is None
    overall = diversity_table(frame, e, None)
    assert overall["n"].iloc[0] == 4 and overall["clusters"].iloc[0] is None
