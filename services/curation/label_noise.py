"""Label noise by an auxiliary model (a filter step), and the probe that evaluation reuses.

``probe``: for one condition dimension, a logistic regression on the cached embeddings predicts
each sample's requested value with stratified k-fold cross-validation (every prediction is made
by a model that never saw that sample). Its accuracy says how recoverable the condition is from
the text; per value, the share predicted right is that cell's faithfulness. The out-of-fold
probabilities feed confident learning (cleanlab's ``find_label_issues``): samples whose requested
label the model confidently disagrees with, ranked by the self-confidence of the requested label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from services.core.errors import StudioError
from services.curation.dedup_steps import cached_vectors
from services.curation.step_base import BaseStep, Decision, FilterContext, SampleBatch, StepScores

FOLDS = 5
MIN_PER_VALUE = 2  # stratified k-fold needs at least this many of each value (k is cut to fit)


class ProbeError(StudioError, ValueError):
    """Not enough samples, or not enough values, for a cross-validated classifier."""

    title = "The classifier cannot be trained"


def make_classifier(seed: int = 0):
    """The one estimator of every probe (and of the benchmark's bare baseline)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, C=1.0, random_state=seed)


@dataclass
class ProbeResult:
    """Out-of-fold predictions for one dimension of one set of samples."""

    dimension: str
    classes: list[str]
    labels: np.ndarray          # requested value index per sample
    pred_probs: np.ndarray      # n x classes, out of fold
    folds: int
    notes: list[str] = field(default_factory=list)

    @property
    def predicted(self) -> np.ndarray:
        return self.pred_probs.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted == self.labels))

    @property
    def macro_f1(self) -> float:
        from sklearn.metrics import f1_score

        return float(f1_score(self.labels, self.predicted, average="macro"))

    @property
    def chance(self) -> float:
        """Accuracy of always answering the most frequent value: what a probe must beat."""
        return float(np.bincount(self.labels).max() / len(self.labels))

    def per_value(self) -> pd.DataFrame:
        """value, n, recall (share of its samples predicted as it), sorted worst first."""
        rows = []
        for k, c in enumerate(self.classes):
            mask = self.labels == k
            rows.append({"value": c, "n": int(mask.sum()), "recall": float(np.mean(self.predicted[mask] == k))})
        return pd.DataFrame(rows).sort_values(["recall", "value"]).reset_index(drop=True)

    def self_confidence(self) -> np.ndarray:
        """The out-of-fold probability of each sample's requested value."""
        return self.pred_probs[np.arange(len(self.labels)), self.labels]


def probe(vectors: np.ndarray, values: list[str] | np.ndarray, *, dimension: str = "", folds: int = FOLDS, seed: int = 0) -> ProbeResult:
    """Cross-validated logistic regression of ``values`` on ``vectors`` (see the module doc).

    Raises ProbeError, with a sentence naming what is missing, when fewer than two values have
    ``MIN_PER_VALUE`` samples each; values with fewer samples are left out (and said in notes).
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    vals = np.asarray([str(v) for v in values], dtype=object)
    classes, counts = np.unique(vals, return_counts=True)
    keep_cls = classes[counts >= MIN_PER_VALUE]
    notes = []
    if len(keep_cls) < len(classes):
        dropped = [f"{c} ({n})" for c, n in zip(classes, counts, strict=True) if n < MIN_PER_VALUE]
        notes.append(f"values with fewer than {MIN_PER_VALUE} samples left out of the {dimension or 'probe'}: {', '.join(dropped)}.")
    if len(keep_cls) < 2:
        raise ProbeError(f"{dimension or 'this dimension'} needs at least two values with {MIN_PER_VALUE}+ samples each "
                         f"for a cross-validated classifier (it has {len(classes)} value(s), {len(vals)} sample(s)).")
    mask = np.isin(vals, keep_cls)
    x = np.asarray(vectors, dtype=np.float32)[mask]
    y = np.searchsorted(keep_cls, vals[mask])
    k = int(max(2, min(folds, np.bincount(y).min())))
    if k < folds:
        notes.append(f"{dimension or 'probe'}: {k}-fold cross-validation (the rarest value has only {np.bincount(y).min()} samples).")
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    probs = cross_val_predict(make_classifier(seed), x, y, cv=cv, method="predict_proba")
    return ProbeResult(dimension, [str(c) for c in keep_cls], y, probs, k, notes)


def label_issues(result: ProbeResult) -> np.ndarray:
    """Indices (into the probe's samples) whose requested label confident learning finds doubtful,
    least confident first (cleanlab ``find_label_issues`` ranked by self-confidence)."""
    from cleanlab.filter import find_label_issues

    if len(result.labels) < 2 or result.pred_probs.shape[1] < 2:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(find_label_issues(result.labels, result.pred_probs, return_indices_ranked_by="self_confidence",
                                        n_jobs=1), dtype=np.int64)


class LabelDisagreementStep(BaseStep):
    """Drop samples whose requested value of ``dimension`` a cross-validated classifier on their
    embeddings confidently disagrees with (confident learning, cleanlab). The score is the
    out-of-fold probability of the requested value: low means the text reads as another value."""

    kind: Literal["label_disagreement"] = "label_disagreement"
    dimension: str = "label"
    SCORE_PARAMS: ClassVar[tuple[str, ...]] = ("dimension",)
    TITLE: ClassVar[str] = "label disagreement"

    def label(self) -> str:
        return f"label disagreement on {self.dimension}"

    def cache_token(self, batch: SampleBatch, ctx: FilterContext) -> str:
        return getattr(ctx.embedder, "name", "")

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores:
        n = len(batch)
        empty = {"issues": np.zeros(0, np.int64), "predicted": np.full(n, None, dtype=object)}
        values = [c.get(self.dimension) for c in batch.conditions]
        have = np.array([v not in (None, "") for v in values], dtype=bool)
        if not have.any():
            return StepScores(np.full(n, np.nan), empty, note=f"label disagreement skipped: no sample has a {self.dimension!r} condition")
        if ctx.store is None or ctx.embedder is None:
            return StepScores(np.full(n, np.nan), empty, note="label disagreement needs the store and an embedder: skipped")
        vectors, missing = cached_vectors(ctx.store, ctx.embedder, batch.texts, ctx.max_embed_inline)
        if vectors is None:
            return StepScores(np.full(n, np.nan), empty,
                              note=f"label disagreement skipped: {missing} texts have no cached embedding yet (build the map to embed them)")
        idx = np.flatnonzero(have)
        try:
            res = probe(vectors[idx], [values[i] for i in idx], dimension=self.dimension)
        except ProbeError as exc:
            return StepScores(np.full(n, np.nan), empty, note=f"label disagreement skipped: {exc}")
        kept_idx = idx[np.isin(np.asarray([str(values[i]) for i in idx], dtype=object), res.classes)]
        score = np.full(n, np.nan)
        score[kept_idx] = res.self_confidence()
        predicted = np.full(n, None, dtype=object)
        predicted[kept_idx] = [res.classes[k] for k in res.predicted]
        return StepScores(score, {"issues": kept_idx[label_issues(res)], "predicted": predicted}, note=" ".join(res.notes) or None)

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision:
        n = len(batch)
        kept = np.ones(n, dtype=bool)
        kept[scores.extra["issues"]] = False
        codes = np.full(n, None, dtype=object)
        detail = np.full(n, None, dtype=object)
        for i in np.flatnonzero(~kept & alive).tolist():
            codes[i] = "label disagreement"
            detail[i] = (f"asked for {self.dimension}={batch.conditions[i].get(self.dimension)!r}, reads as "
                         f"{scores.extra['predicted'][i]!r} (confidence in the request {scores.values[i]:.2f})")
        codes[~kept & ~alive] = "label disagreement"
        return Decision(kept, codes, detail, scores.values)
