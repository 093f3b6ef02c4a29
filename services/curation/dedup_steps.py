"""Dedup steps: exact (normalised text), MinHash near-duplicates (datasketch), semantic (cosine).

Each finds pairs of similar samples once per batch (``score``), down to a floor below the
threshold, so a threshold slider only filters the pairs it already has. Duplicates form groups
(connected components among the samples still alive); one sample per group is kept.
"""

from __future__ import annotations

import re
import unicodedata
from typing import ClassVar, Literal

import numpy as np
from pydantic import model_validator

from services.curation.step_base import BaseStep, Decision, FilterContext, SampleBatch, StepScores, groups_keep
from services.explore.neighbours import similar_pairs

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")
_WORDS = re.compile(r"\w+", re.UNICODE)


def normalise_text(text: str) -> str:
    """Lower-case, NFKC, punctuation removed, whitespace collapsed: 'Hello,  World!' == 'hello world'."""
    t = unicodedata.normalize("NFKC", text or "").lower()
    return _SPACE.sub(" ", _PUNCT.sub(" ", t)).strip()


def _dedup_decision(n: int, keep: np.ndarray, rep: np.ndarray, alive: np.ndarray, batch: SampleBatch, code: str,
                    sim: np.ndarray, what: str) -> Decision:
    codes = np.full(n, None, dtype=object)
    det = np.full(n, None, dtype=object)
    dropped = np.flatnonzero(alive & ~keep)
    codes[dropped] = code
    for i in dropped.tolist():
        det[i] = f"{what} of {batch.keys[rep[i]]}" + ("" if np.isnan(sim[i]) else f" ({sim[i]:.2f})")
    return Decision(keep | ~alive, codes, det, sim)


class ExactDedupStep(BaseStep):
    """Keep the first of each set of texts that are equal after normalisation."""

    kind: Literal["exact_dedup"] = "exact_dedup"
    normalise: bool = True
    SCORE_PARAMS: ClassVar[tuple[str, ...]] = ("normalise",)
    TITLE: ClassVar[str] = "exact dedup"

    def label(self) -> str:
        return "exact dedup" + (" (normalised)" if self.normalise else "")

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores:
        texts = [normalise_text(t) for t in batch.texts] if self.normalise else list(batch.texts)
        _, group = np.unique(np.array(texts, dtype=object), return_inverse=True)
        return StepScores(np.full(len(batch), np.nan), {"group": group.astype(np.int64)})

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision:
        group = scores.extra["group"]
        n = len(group)
        idx = np.flatnonzero(alive)
        # First alive index of each group is its representative.
        order = np.lexsort((idx, group[idx]))
        g_sorted, i_sorted = group[idx][order], idx[order]
        first = np.ones(len(i_sorted), dtype=bool)
        first[1:] = g_sorted[1:] != g_sorted[:-1]
        lead = np.maximum.accumulate(np.where(first, np.arange(len(i_sorted)), 0))
        rep = np.arange(n)
        rep[i_sorted] = i_sorted[lead]
        keep = np.zeros(n, dtype=bool)
        keep[i_sorted[first]] = True
        sim = np.where(rep != np.arange(n), 1.0, np.nan)
        return _dedup_decision(n, keep, rep, alive, batch, "exact duplicate", sim, "duplicate")


def shingles(text: str, size: int, unit: str) -> set[str]:
    """Word or character n-gram shingles of the normalised text (the text itself when shorter)."""
    norm = normalise_text(text)
    if unit == "characters":
        return {norm[i : i + size] for i in range(max(1, len(norm) - size + 1))} if norm else set()
    words = _WORDS.findall(norm)
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class MinHashStep(BaseStep):
    """Near-duplicates by MinHash LSH (datasketch): estimated Jaccard of shingle sets >= threshold."""

    kind: Literal["minhash"] = "minhash"
    threshold: float = 0.7
    shingle_size: int = 3
    shingle_unit: Literal["words", "characters"] = "words"
    num_perm: int = 128
    FLOOR: ClassVar[float] = 0.5  # pairs are found down to min(threshold, FLOOR) once
    SCORE_PARAMS: ClassVar[tuple[str, ...]] = ("shingle_size", "shingle_unit", "num_perm")
    TITLE: ClassVar[str] = "MinHash near-dup"

    @model_validator(mode="after")
    def _check(self) -> MinHashStep:
        if not 0.05 <= self.threshold <= 1.0:
            raise ValueError(f"the Jaccard threshold must be between 0.05 and 1.0, got {self.threshold}")
        if not 1 <= self.shingle_size <= 20:
            raise ValueError(f"the shingle size must be between 1 and 20, got {self.shingle_size}")
        if not 16 <= self.num_perm <= 1024:
            raise ValueError(f"num_perm must be between 16 and 1024, got {self.num_perm}")
        return self

    def label(self) -> str:
        return f"MinHash J ≥ {self.threshold:.2f} ({self.shingle_size}-{self.shingle_unit[:-1]} shingles)"

    def floor(self) -> float:
        return min(self.threshold, self.FLOOR)

    def score_key(self) -> str:
        return super().score_key() + f"|{self.floor():.3f}"

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores:
        pi, pj, sim = minhash_pairs(batch.texts, self.floor(), self.shingle_size, self.shingle_unit, self.num_perm)
        return StepScores(_max_per_sample(len(batch), pi, pj, sim), {"i": pi, "j": pj, "sim": sim})

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision:
        n = len(batch)
        ok = scores.extra["sim"] >= self.threshold
        keep, rep = groups_keep(n, scores.extra["i"][ok], scores.extra["j"][ok], alive)
        sim = _pair_sim(n, rep, scores.extra, ok)
        return _dedup_decision(n, keep, rep, alive, batch, "near duplicate", sim, "near duplicate")


def minhash_pairs(texts: list[str], threshold: float, shingle_size: int = 3, unit: str = "words",
                  num_perm: int = 128, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs (i < j) from MinHash LSH whose estimated Jaccard is >= threshold."""
    from datasketch import MinHash, MinHashLSH

    sets = [[s.encode("utf-8", "surrogatepass") for s in shingles(t, shingle_size, unit)] for t in texts]
    mhs = MinHash.bulk(sets, num_perm=num_perm, seed=seed)
    sigs = np.stack([m.hashvalues for m in mhs]) if mhs else np.zeros((0, num_perm), dtype=np.uint64)
    # LSH misses some pairs just above its threshold (5% at J=0.65 for 0.5): search below it,
    # weighted against false negatives, then keep pairs whose estimated Jaccard reaches the threshold.
    lsh = MinHashLSH(threshold=max(0.1, threshold - 0.1), num_perm=num_perm, weights=(0.3, 0.7))
    pairs: set[tuple[int, int]] = set()
    with lsh.insertion_session() as session:
        for i, m in enumerate(mhs):
            if sets[i]:
                session.insert(i, m, check_duplication=False)
    for i, m in enumerate(mhs):
        if not sets[i]:
            continue
        for j in lsh.query(m):
            if j != i:
                pairs.add((min(i, j), max(i, j)))
    if not pairs:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    arr = np.array(sorted(pairs), dtype=np.int64)
    est = (sigs[arr[:, 0]] == sigs[arr[:, 1]]).mean(axis=1)
    ok = est >= threshold
    return arr[ok, 0], arr[ok, 1], est[ok]


def _max_per_sample(n: int, pi: np.ndarray, pj: np.ndarray, sim: np.ndarray) -> np.ndarray:
    out = np.full(n, np.nan)
    if len(sim):
        best = np.zeros(n)
        np.maximum.at(best, pi, sim)
        np.maximum.at(best, pj, sim)
        touched = np.zeros(n, dtype=bool)
        touched[pi] = touched[pj] = True
        out[touched] = best[touched]
    return out


def _pair_sim(n: int, rep: np.ndarray, extra: dict, ok: np.ndarray) -> np.ndarray:
    """Similarity of each dropped sample to its representative where that pair exists, else to its
    closest partner (groups chain), NaN for samples in no pair."""
    return _max_per_sample(n, extra["i"][ok], extra["j"][ok], extra["sim"][ok])


# -- semantic ------------------------------------------------------------------------------------


def cosine_pairs(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) of L2-normalised rows with cosine >= threshold: exact numpy chunks for small
    sets, an approximate-neighbour index past services.explore.neighbours.EXACT_MAX (never SQL,
    never an all-pairs matrix)."""
    return similar_pairs(vectors, threshold)


def cached_vectors(store, embedder, texts: list[str], max_embed: int | None) -> tuple[np.ndarray | None, int]:
    """Vectors for texts through the embedding cache; (None, missing) when more than
    ``max_embed`` texts would have to be embedded here (the map job embeds them in the background)."""
    from services.explore.embedding_store import cached_count, embed_texts

    if max_embed is not None:
        distinct = len(set(texts))
        missing = distinct - cached_count(store, embedder.name, texts)
        if missing > max_embed:
            return None, missing
    return embed_texts(store, embedder, texts), 0


class SemanticDedupStep(BaseStep):
    """Near-duplicates by meaning: cosine similarity of cached embeddings >= threshold. Keeps the
    first of each group, or the one closest to the group's centre."""

    kind: Literal["semantic_dedup"] = "semantic_dedup"
    threshold: float = 0.92
    keep: Literal["first", "centre"] = "first"
    FLOOR: ClassVar[float] = 0.8
    SCORE_PARAMS: ClassVar[tuple[str, ...]] = ()
    TITLE: ClassVar[str] = "semantic dedup"

    @model_validator(mode="after")
    def _check(self) -> SemanticDedupStep:
        if not 0.5 <= self.threshold <= 1.0:
            raise ValueError(f"the cosine threshold must be between 0.5 and 1.0, got {self.threshold}")
        return self

    def label(self) -> str:
        return f"semantic dedup cos ≥ {self.threshold:.2f} (keep {self.keep})"

    def floor(self) -> float:
        return min(self.threshold, self.FLOOR)

    def score_key(self) -> str:
        return super().score_key() + f"|{self.floor():.3f}"

    def cache_token(self, batch: SampleBatch, ctx: FilterContext) -> str:
        return getattr(ctx.embedder, "name", "")

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores:
        n = len(batch)
        if ctx.store is None or ctx.embedder is None:
            return StepScores(np.full(n, np.nan), {"i": np.zeros(0, np.int64), "j": np.zeros(0, np.int64), "sim": np.zeros(0)},
                              note="semantic dedup needs the store and an embedder: skipped")
        vectors, missing = cached_vectors(ctx.store, ctx.embedder, batch.texts, ctx.max_embed_inline)
        if vectors is None:
            return StepScores(np.full(n, np.nan), {"i": np.zeros(0, np.int64), "j": np.zeros(0, np.int64), "sim": np.zeros(0)},
                              note=f"semantic dedup skipped: {missing} texts have no cached embedding yet (build the map to embed them)")
        if n == 0:
            vectors = np.zeros((0, 1), np.float32)
        pi, pj, sim = cosine_pairs(vectors, self.floor())
        return StepScores(_max_per_sample(n, pi, pj, sim), {"i": pi, "j": pj, "sim": sim, "vectors": vectors})

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision:
        n = len(batch)
        ok = scores.extra["sim"] >= self.threshold
        pi, pj = scores.extra["i"][ok], scores.extra["j"][ok]
        choose = None
        if self.keep == "centre" and len(pi):
            choose = _closeness_to_centre(n, pi, pj, alive, scores.extra["vectors"])
        keep, rep = groups_keep(n, pi, pj, alive, choose)
        sim = _pair_sim(n, rep, scores.extra, ok)
        return _dedup_decision(n, keep, rep, alive, batch, "semantic duplicate", sim, "semantic duplicate")


def _closeness_to_centre(n: int, pi: np.ndarray, pj: np.ndarray, alive: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine of each grouped sample to the mean vector of its group (alive members only)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ok = alive[pi] & alive[pj]
    graph = coo_matrix((np.ones(int(ok.sum()), dtype=np.int8), (pi[ok], pj[ok])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    members = np.unique(np.concatenate([pi[ok], pj[ok]]))
    out = np.full(n, -np.inf)
    if not len(members):
        return out
    comps = comp[members]
    uniq, inv = np.unique(comps, return_inverse=True)
    centres = np.zeros((len(uniq), vectors.shape[1]))
    np.add.at(centres, inv, vectors[members])
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    out[members] = np.einsum("ij,ij->i", vectors[members], centres[inv])
    return out
