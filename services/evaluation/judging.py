"""Faithfulness by an LLM judge: one rubric per (dimension, value), on a sample the user sizes.

The plan is drawn first and its cost estimated (characters / 4 for prompt tokens, the judge's
reply budget for completion tokens, priced from the shipped price table when the model is in it);
scoring runs only when asked, through the curation judge (scores cached by rubric, judge and
text, so nothing is paid twice). A sample counts as faithful to a condition at score >= 4.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.core.store import Store
from services.curation.judge_step import JUDGE_SYSTEM, score_missing
from services.generation.run_store import shipped_prices

FAITHFUL_AT = 4.0
REPLY_TOKENS = 120


def faithfulness_rubric(dimension: str, value: str) -> str:
    return (f"The sample was asked to have {dimension}: {value}. Score 5 if it clearly does, 3 if it is unclear, "
            f"1 if it clearly does not. Judge only this condition, not the quality of the writing.")


@dataclass
class JudgePlan:
    """Rows to score: set, id, text, dimension, value, rubric. ``notes`` say what was left out."""

    rows: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.rows)

    def prompt_tokens(self) -> int:
        chars = sum(len(JUDGE_SYSTEM) + len(r) + len(t) + 20 for r, t in zip(self.rows["rubric"], self.rows["text"], strict=True))
        return int(chars / 4)

    def cost(self, model: str) -> float | None:
        """Estimated dollars for ``model`` at the shipped price (None: not in the price table)."""
        price = shipped_prices().prices.get(model)
        return None if price is None else price.cost(self.prompt_tokens(), self.calls * REPLY_TOKENS)


def plan_judging(frames: dict[str, pd.DataFrame], dimensions: list[str], per_set: int, seed: int = 0) -> JudgePlan:
    """``per_set`` random samples of each set (frames: id, text, a column per dimension), each
    judged on every dimension it has."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, f in frames.items():
        take = f.iloc[np.sort(rng.choice(len(f), size=min(per_set, len(f)), replace=False))] if len(f) else f
        for d in dimensions:
            if d not in take:
                continue
            for r in take.itertuples(index=False):
                value = str(getattr(r, d))
                if value and value != "(none)":
                    rows.append({"set": name, "id": r.id, "text": r.text, "dimension": d, "value": value,
                                 "rubric": faithfulness_rubric(d, value)})
    notes = [] if dimensions else ["No condition dimension to judge."]
    return JudgePlan(pd.DataFrame(rows, columns=["set", "id", "text", "dimension", "value", "rubric"]), notes)


def run_judging(store: Store, backend, judge_label: str, plan: JudgePlan) -> list[str]:
    """Score what the plan needs and the cache lacks; returns sentences (failures included)."""
    said = []
    for rubric, group in plan.rows.groupby("rubric", sort=False):
        try:
            report = score_missing(store, backend, judge_label, rubric, group["text"].tolist())
        except Exception as exc:  # a failing backend is a sentence; the rest of the report stands
            said.append(f"The judge failed on {group['dimension'].iloc[0]}={group['value'].iloc[0]}: {type(exc).__name__}: {exc}")
            break
        if report.failed:
            said.append(report.summary())
    return said


def judged(store: Store, plan: JudgePlan, judge_label: str) -> pd.DataFrame:
    """set, dimension, value, planned, scored, faithful share (score >= FAITHFUL_AT) from the cache
    (one query for the whole plan: the page reads it on every rerun)."""
    from services.core.hashing import text_hash
    from services.curation.judge_step import rubric_hash

    cols = ["set", "dimension", "value", "planned", "scored", "faithful"]
    if plan.rows.empty:
        return pd.DataFrame(columns=cols)
    rows = plan.rows.assign(rh=[rubric_hash(r) for r in plan.rows["rubric"]], th=[text_hash(t) for t in plan.rows["text"]])
    have = dict(((rh, th), s) for rh, th, s in store.query(
        "SELECT rubric_hash, text_hash, score FROM judge_scores WHERE judge_model = ? AND rubric_hash IN (SELECT unnest(?::VARCHAR[]))"
        " AND text_hash IN (SELECT unnest(?::VARCHAR[]))",
        [judge_label, sorted(set(rows["rh"])), sorted(set(rows["th"]))]))
    rows["score"] = [have.get((rh, th)) for rh, th in zip(rows["rh"], rows["th"], strict=True)]
    out = []
    for (s, d, v), g in rows.groupby(["set", "dimension", "value"], sort=False):
        scores = g["score"].dropna().to_numpy(dtype=float)
        out.append({"set": s, "dimension": d, "value": v, "planned": len(g), "scored": len(scores),
                    "faithful": float(np.mean(scores >= FAITHFUL_AT)) if len(scores) else None})
    return pd.DataFrame(out, columns=cols)
