"""The human-review step: keep what a reviewer kept (decisions live in the review store)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from services.curation.review_store import review_decisions
from services.curation.step_base import BaseStep, Decision, FilterContext, SampleBatch, StepScores


class ReviewStep(BaseStep):
    """Keep only what a reviewer kept; samples nobody reviewed are dropped (or kept, if so set)."""

    kind: Literal["review"] = "review"
    unreviewed: Literal["drop", "keep"] = "drop"
    TITLE: ClassVar[str] = "human review"

    def label(self) -> str:
        return f"human review (unreviewed: {self.unreviewed})"

    def cache_token(self, batch: SampleBatch, ctx: FilterContext) -> str:
        if ctx.store is None:
            return ""
        row = ctx.store.query("SELECT count(*), max(decided_at) FROM review_decisions")[0]
        return f"{row[0]}|{row[1]}"

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores:
        n = len(batch)
        decisions = review_decisions(ctx.store, batch.keys) if ctx.store is not None else {}
        # 1 kept, 0 dropped, NaN not reviewed
        values = np.array([{"keep": 1.0, "drop": 0.0}.get(decisions.get(k, ""), np.nan) for k in batch.keys])
        return StepScores(values if n else np.zeros(0))

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision:
        v = scores.values
        dropped_by_reviewer = v == 0
        unreviewed = np.isnan(v)
        drop = dropped_by_reviewer | (unreviewed & (self.unreviewed == "drop"))
        n = len(v)
        codes = np.full(n, None, dtype=object)
        det = np.full(n, None, dtype=object)
        codes[dropped_by_reviewer] = "dropped by reviewer"
        codes[unreviewed & drop] = "not reviewed"
        det[dropped_by_reviewer & alive] = "dropped by a reviewer"
        det[unreviewed & drop & alive] = "not reviewed yet"
        return Decision(~drop, codes, det, v)
