"""The shapes every filter step shares: the batch it reads, its scores, its decision.

A step works in two halves so that moving a threshold never recomputes anything expensive:
``score(batch, ctx)`` does the costly part once for the whole batch (embeddings, MinHash pairs,
judge scores read from the cache) and depends only on the parameters named by ``score_key()``;
``decide(scores, alive)`` applies the cheap parameters (thresholds, bounds) to the samples still
alive at that point of the pipeline. ``verdicts(batch)`` is both halves for a whole batch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from services.core.hashing import digest, text_hash


@dataclass
class SampleBatch:
    """Samples a pipeline reads: ids, (latest) texts and conditions, aligned by position.
    ``n_edited``: how many texts are a reviewer's edit rather than the generated original."""

    keys: list[str]
    texts: list[str]
    conditions: list[dict[str, str]]
    run_id: str | None = None
    n_edited: int = 0

    def __post_init__(self) -> None:
        self.texts = ["" if t is None else str(t) for t in self.texts]
        self.conditions = [dict(c or {}) for c in self.conditions]
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def fingerprint(self) -> str:
        """Identity of the batch: its keys and text hashes, in order (an edit changes it)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for k, t in zip(self.keys, self.texts, strict=True):
                h.update(f"{k}\x1f{text_hash(t)}\x1e".encode("utf-8", "surrogatepass"))
            self._fingerprint = h.hexdigest()[:24]
        return self._fingerprint

    @property
    def dimensions(self) -> list[str]:
        seen: dict[str, None] = {}
        for c in self.conditions:
            for k in c:
                seen.setdefault(k, None)
        return list(seen)

    @classmethod
    def from_texts(cls, texts: list[str], conditions: list[dict[str, str]] | None = None, keys: list[str] | None = None) -> SampleBatch:
        """A batch from plain texts (tests, notebooks): keys default to s0, s1, ..."""
        keys = keys or [f"s{i}" for i in range(len(texts))]
        return cls(keys=list(keys), texts=list(texts), conditions=list(conditions or [{} for _ in texts]))


@dataclass
class StepScores:
    """What ``score`` computed for a whole batch: a number per sample (NaN where none) and any
    structure ``decide`` needs (pairs, groups, vectors). ``note`` says why a step could not run."""

    values: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


@dataclass
class Decision:
    """A step's decision on a batch: kept (bool per sample), a short reason code and a detailed
    reason for dropped samples (None where kept), and a score per sample (NaN where none)."""

    kept: np.ndarray
    code: np.ndarray
    detail: np.ndarray
    score: np.ndarray


@dataclass(frozen=True)
class Verdict:
    kept: bool
    reason: str | None
    score: float | None


@dataclass
class FilterContext:
    """What some steps need besides the texts. ``store`` gives cached embeddings, judge scores and
    review decisions; ``embedder`` embeds texts not cached yet (at most ``max_embed_inline`` at a
    time: more waits for the map job); ``judge`` is a chat backend that scores missing judge scores
    when set (never set during a comparison: scoring is an explicit, paid action)."""

    store: Any = None
    embedder: Any = None
    judge: Any = None
    max_embed_inline: int | None = None
    judge_concurrency: int = 4


@runtime_checkable
class FilterStep(Protocol):
    """A curation step with parameters (a pydantic model in practice)."""

    kind: str

    def label(self) -> str: ...

    def score_key(self) -> str: ...

    def cache_token(self, batch: SampleBatch, ctx: FilterContext) -> str: ...

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores: ...

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision: ...

    def verdicts(self, samples: SampleBatch, ctx: FilterContext | None = None) -> list[Verdict]: ...


def to_verdicts(dec: Decision) -> list[Verdict]:
    out = []
    for kept, detail, score in zip(dec.kept.tolist(), dec.detail.tolist(), dec.score.tolist(), strict=True):
        out.append(Verdict(bool(kept), None if kept else detail, None if score is None or np.isnan(score) else float(score)))
    return out


def groups_keep(n: int, pairs_i: np.ndarray, pairs_j: np.ndarray, alive: np.ndarray,
                choose: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of the pair graph among alive samples; one representative kept per group.

    Returns (keep mask over all n, representative index per sample: itself when kept or alone).
    The representative is the lowest index of the group unless ``choose`` (a score per sample,
    higher wins) is given.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rep = np.arange(n)
    keep = alive.copy()
    if len(pairs_i):
        ok = alive[pairs_i] & alive[pairs_j]
        pi, pj = pairs_i[ok], pairs_j[ok]
    else:
        pi = pj = np.zeros(0, dtype=np.int64)
    if not len(pi):
        return keep, rep
    graph = coo_matrix((np.ones(len(pi), dtype=np.int8), (pi, pj)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    members = np.unique(np.concatenate([pi, pj]))
    comps = comp[members]
    order = np.lexsort((members if choose is None else -choose[members], comps))
    sorted_members, sorted_comps = members[order], comps[order]
    first = np.ones(len(sorted_members), dtype=bool)
    first[1:] = sorted_comps[1:] != sorted_comps[:-1]
    leader_of_comp = dict(zip(sorted_comps[first].tolist(), sorted_members[first].tolist(), strict=True))
    leaders = np.array([leader_of_comp[c] for c in sorted_comps.tolist()])
    rep[sorted_members] = leaders
    keep[sorted_members[~first]] = False
    return keep, rep


class BaseStep(BaseModel):
    """Defaults shared by every step: parameters that change ``score`` are listed in SCORE_PARAMS."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    SCORE_PARAMS: ClassVar[tuple[str, ...]] = ()
    TITLE: ClassVar[str] = "step"

    def label(self) -> str:
        return self.TITLE

    def score_key(self) -> str:
        return digest(self.kind, {p: getattr(self, p) for p in self.SCORE_PARAMS})  # type: ignore[attr-defined]

    def cache_token(self, batch: SampleBatch, ctx: FilterContext) -> str:
        """Changes when the stored inputs of ``score`` change (judge scores, review decisions)."""
        return ""

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores:  # pragma: no cover - overridden
        raise NotImplementedError

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision:  # pragma: no cover
        raise NotImplementedError

    def verdicts(self, samples: SampleBatch, ctx: FilterContext | None = None) -> list[Verdict]:
        """[kept, reason, score] per sample, every sample considered."""
        ctx = ctx or FilterContext()
        return to_verdicts(self.decide(self.score(samples, ctx), np.ones(len(samples), dtype=bool), samples))
