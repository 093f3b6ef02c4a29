"""Judge calibration at one threshold: does the judge keep what the human reviewers kept?

The judge "keeps" a sample at score >= threshold (as ``JudgeStep`` decides); against the
reviewers' keep/drop that gives accuracy and Cohen's kappa, and Spearman's rank correlation
compares the raw scores with keep (1) / drop (0). Only samples with both a review decision and a
score from this rubric and judge count: unreviewed samples say nothing about the judge.
The Evaluate page's table (``services.evaluation.calibration``) is built from ``agreement``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.core.store import Store
from services.curation.judge_step import rubric_hash

MIN_REVIEWED = 5  # fewer reviewed and scored samples than this say nothing about a judge


@dataclass(frozen=True)
class Agreement:
    """Judge vs reviewers on ``n`` samples; kappa and spearman are NaN where undefined (one class)."""

    n: int
    accuracy: float
    kappa: float
    spearman: float


def agreement(scores: Sequence[float] | np.ndarray, human_keep: Sequence[bool] | np.ndarray, threshold: float) -> Agreement:
    """Accuracy, Cohen's kappa and Spearman of judge scores against human keep (True) / drop."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    s = np.asarray(scores, dtype=float)
    human = np.asarray(human_keep).astype(int)
    if len(s) != len(human):
        raise ValueError(f"{len(s)} scores for {len(human)} review decisions")
    if not len(s):
        return Agreement(0, math.nan, math.nan, math.nan)
    pred = (s >= threshold).astype(int)
    kappa = float(cohen_kappa_score(human, pred)) if len(set(human) | set(pred)) > 1 else math.nan
    rho = float(spearmanr(s, human).statistic) if len(set(human)) > 1 and len(set(s)) > 1 else math.nan
    return Agreement(len(s), float(np.mean(pred == human)), kappa, rho)


@dataclass(frozen=True)
class ThresholdCalibration:
    """A judge step's threshold checked on the reviewed samples of a set of samples."""

    threshold: float
    reviewed: int  # samples of the set a human kept or dropped
    scored: int  # of those, scored by this rubric and judge
    kept: int  # of the scored, how many the reviewers kept
    result: Agreement | None  # None below MIN_REVIEWED scored reviews

    def sentence(self) -> str:
        """What the figures say, and what they do not cover, in one or two sentences."""
        if self.result is None:
            missing = MIN_REVIEWED - self.scored
            have = (f"{self.reviewed} are reviewed, {self.scored} of them scored by this judge"
                    if self.reviewed else "none of these samples is reviewed yet")
            todo = "review" if self.reviewed == self.scored else "review or score"
            return (f"Calibration needs at least {MIN_REVIEWED} reviewed samples that this judge scored; {have}: "
                    f"{todo} {missing} more to see whether this threshold agrees with human review.")
        r = self.result
        kappa = "undefined (one class only)" if math.isnan(r.kappa) else f"{r.kappa:.2f}"
        text = (f"At ≥ {self.threshold:g}, on the {r.n} reviewed samples this judge scored ({self.kept} kept by the reviewers): "
                f"accuracy {r.accuracy:.0%}, Cohen's kappa {kappa}.")
        if self.scored < self.reviewed:
            text += f" {self.reviewed - self.scored} reviewed sample(s) without a score are not counted."
        if self.kept in (0, r.n):
            text += " The reviewers " + ("kept" if self.kept else "dropped") + " every one: kappa needs both decisions."
        return text


def threshold_calibration(store: Store, sample_keys: Sequence[str], rubric: str, judge_model: str, threshold: float,
                          *, min_reviewed: int = MIN_REVIEWED) -> ThresholdCalibration:
    """The judge step (rubric, judge, threshold) against the review decisions of ``sample_keys``;
    scores are matched by each sample's latest (edited) text, as the step reads them."""
    rows = store.query(
        """SELECT r.decision = 'keep', j.score
           FROM samples_latest s JOIN review_decisions r USING (sample_key)
           LEFT JOIN judge_scores j ON j.text_hash = sha256(s.text) AND j.rubric_hash = ? AND j.judge_model = ?
           WHERE s.sample_key IN (SELECT unnest(?::VARCHAR[]))""",
        [rubric_hash(rubric), judge_model, list(sample_keys)],
    )
    scored = [(bool(k), float(s)) for k, s in rows if s is not None]
    keep = np.array([k for k, _ in scored], dtype=bool)
    result = agreement([s for _, s in scored], keep, threshold) if len(scored) >= min_reviewed else None
    return ThresholdCalibration(threshold, len(rows), len(scored), int(keep.sum()), result)
