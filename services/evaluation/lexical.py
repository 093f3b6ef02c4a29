"""Lexical diversity that text length does not drive.

Raw vocabulary and distinct-n grow with the number of tokens, so a run of longer texts wins on
them by length alone. Here both are measured on the same token budget for every set (texts taken
in random order, the last one cut at the budget), and MTLD (McCarthy & Jarvis 2010: the mean
length of stretches that keep a type-token ratio above 0.72, both directions) is length-robust by
design. MTLD is about twenty lines, so it is written here rather than pulling a package in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MTLD_THRESHOLD = 0.72


def _mtld_pass(toks: Sequence[str], threshold: float) -> float:
    factors, types, count = 0.0, set(), 0
    for w in toks:
        count += 1
        types.add(w)
        if len(types) / count <= threshold:
            factors += 1
            types, count = set(), 0
    if count:  # the partial factor left at the end
        ttr = len(types) / count
        factors += (1 - ttr) / (1 - threshold) if ttr < 1 else 0.0
    return len(toks) / factors if factors else float(len(toks))


def mtld(toks: Sequence[str], threshold: float = MTLD_THRESHOLD) -> float | None:
    """Bidirectional MTLD of one token stream; None under 10 tokens (too short to mean anything)."""
    if len(toks) < 10:
        return None
    return (_mtld_pass(toks, threshold) + _mtld_pass(list(reversed(toks)), threshold)) / 2


def at_budget(token_lists: Sequence[Sequence[str]], budget: int, rng: np.random.Generator) -> list[list[str]]:
    """Texts in random order until ``budget`` tokens, the last one cut; fewer if the set is smaller."""
    out, left = [], budget
    for i in rng.permutation(len(token_lists)):
        if left <= 0:
            break
        toks = list(token_lists[i][:left])
        out.append(toks)
        left -= len(toks)
    return out


def budget_metrics(token_lists: Sequence[Sequence[str]]) -> dict[str, float | None]:
    """Vocabulary, distinct-2 and MTLD of texts already cut to one token budget."""
    unigrams = [w for t in token_lists for w in t]
    bigrams = [(t[i], t[i + 1]) for t in token_lists for i in range(len(t) - 1)]
    return {
        "vocab_at_budget": float(len(set(unigrams))),
        "distinct_2_at_budget": len(set(bigrams)) / len(bigrams) if bigrams else None,
        "mtld": mtld(unigrams),
    }
