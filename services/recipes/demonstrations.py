"""Choosing in-context demonstrations for each plan item."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np

from services.recipes.recipe import Demo, DemoSettings

Condition = dict[str, str]
# texts -> one row per text; rows are compared by cosine similarity
Embed = Callable[[list[str]], np.ndarray]


def tfidf_embedder(corpus: list[str]) -> Embed:
    """A word TF-IDF space fitted on the demonstrations: no model to load, deterministic. Pass
    another ``embed`` (e.g. an Explore embedder's ``encode``) for semantic similarity."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(corpus or [""])
    return lambda texts: vec.transform(texts).toarray()


def _unit(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1, norms)


def mmr(query: np.ndarray, docs: np.ndarray, k: int, diversity: float) -> list[int]:
    """Maximal marginal relevance: each pick maximises (1 - diversity) * similarity to the query
    minus diversity * the highest similarity to a pick already made. diversity=0 is nearest-k."""
    sim_q = docs @ query
    sim_d = docs @ docs.T
    chosen: list[int] = []
    rest = list(range(len(docs)))
    while rest and len(chosen) < k:
        def score(i: int) -> float:
            redundancy = max((sim_d[i, j] for j in chosen), default=0.0)
            return (1 - diversity) * sim_q[i] - diversity * redundancy
        best = max(rest, key=lambda i: (score(i), -i))  # ties: the demo listed first
        chosen.append(best)
        rest.remove(best)
    return chosen


class DemoPicker:
    """Picks ``k`` demos per item: at random, stratified across a dimension's values, or matching the item's value."""

    def __init__(self, settings: DemoSettings, embed: Embed | None = None):
        self.settings = settings
        self.examples = list(settings.examples)
        self._embed = embed
        self._vectors: np.ndarray | None = None
        self.by_value: dict[str, list[Demo]] = {}
        if settings.stratify_by:
            for e in self.examples:
                self.by_value.setdefault(e.attributes.get(settings.stratify_by, ""), []).append(e)

    def pick(self, rng: random.Random, condition: Condition, query: str | None = None) -> list[Demo]:
        """``query``: the text the nearest and diverse strategies compare demos with (default: the
        condition's values)."""
        s = self.settings
        k = min(s.k, len(self.examples))
        if k <= 0:
            return []
        if s.strategy in ("nearest", "diverse"):
            if self._vectors is None:
                texts = [e.text for e in self.examples]
                self._embed = self._embed or tfidf_embedder(texts)
                self._vectors = _unit(np.asarray(self._embed(texts), dtype=float))
            assert self._embed is not None
            q = _unit(np.asarray(self._embed([query if query is not None else " ".join(condition.values())]), dtype=float))[0]
            picks = mmr(q, self._vectors, k, 0.0 if s.strategy == "nearest" else s.diversity)
            return [self.examples[i] for i in picks]
        if s.strategy == "random" or not s.stratify_by:
            return rng.sample(self.examples, k)
        if s.strategy == "matching":
            same = self.by_value.get(condition.get(s.stratify_by, ""), [])
            chosen = rng.sample(same, min(k, len(same)))
            if len(chosen) < k:  # not enough demos with this value: fill with others
                rest = [e for e in self.examples if e not in chosen]
                chosen += rng.sample(rest, k - len(chosen))
            return chosen
        # stratified: round-robin over the dimension's values so each is represented
        groups = [list(g) for g in self.by_value.values()]
        rng.shuffle(groups)
        for g in groups:
            rng.shuffle(g)
        chosen: list[Demo] = []
        while len(chosen) < k:
            for g in groups:
                if g and len(chosen) < k:
                    chosen.append(g.pop())
        return chosen
