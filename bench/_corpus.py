"""Synthetic texts for the filter benchmarks: distinct sentences plus planted near-duplicates."""

from __future__ import annotations

import random

VOCAB = [f"w{i}" for i in range(3000)]


def corpus(n: int, near_dup_share: float = 0.05, words: int = 30, seed: int = 0) -> list[str]:
    """n texts; about ``near_dup_share`` of them are copies of earlier ones with two words changed."""
    rng = random.Random(seed)
    texts: list[str] = []
    for _i in range(n):
        if texts and rng.random() < near_dup_share:
            w = rng.choice(texts).split()
            for _ in range(2):
                w[rng.randrange(len(w))] = rng.choice(VOCAB)
            texts.append(" ".join(w))
        else:
            texts.append(" ".join(rng.choice(VOCAB) for _ in range(words)))
    return texts
