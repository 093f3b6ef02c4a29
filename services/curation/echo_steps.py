"""Prompt echo / instruction leak: an output that repeats its own rendered prompt.

Small instruction-following models often answer by copying the instruction back ("Write a
positive review of a Thai restaurant, written by a student…"). No other step sees it: the text
is neither a refusal nor a duplicate of another sample. The score is the share of the output's
word n-grams (``n`` words) that also occur in the sample's own prompt (system + user messages):
0 for an answer in its own words, near 1 for a copy of the prompt.
"""

from __future__ import annotations

import json
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from services.curation.step_base import BaseStep, Decision, FilterContext, SampleBatch, StepScores
from services.explore.diversity import ngrams, tokens


def prompt_text(messages: str | list | None) -> str:
    """The text of a sample's rendered prompt (its messages as stored: JSON or a list)."""
    if not messages:
        return ""
    try:
        msgs = json.loads(messages) if isinstance(messages, str) else messages
    except ValueError:
        return str(messages)
    return "\n".join(str(m.get("content") or "") for m in msgs if isinstance(m, dict))


def echo_scores(texts: list[str], prompts: list[str], n: int = 4) -> np.ndarray:
    """Share of each text's word n-grams found in its own prompt (NaN for a text with no n-gram
    or a sample with no prompt)."""
    out = np.full(len(texts), np.nan)
    for i, (t, p) in enumerate(zip(texts, prompts, strict=True)):
        grams = ngrams(tokens(t), n)
        if grams and p:
            have = set(ngrams(tokens(p), n))
            out[i] = sum(g in have for g in grams) / len(grams)
    return out


def sample_prompts(store, keys: list[str]) -> dict[str, str]:
    """sample_key -> rendered prompt text, from the samples table."""
    rows = store.query("SELECT sample_key, messages FROM samples WHERE sample_key IN (SELECT unnest(?::VARCHAR[]))", [list(keys)])
    return {k: prompt_text(m) for k, m in rows}


class PromptEchoStep(BaseStep):
    """Drop outputs whose word n-grams come from their own prompt at ``threshold`` or more."""

    kind: Literal["prompt_echo"] = "prompt_echo"
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    n: int = Field(4, ge=1, le=8)
    SCORE_PARAMS: ClassVar[tuple[str, ...]] = ("n",)
    TITLE: ClassVar[str] = "prompt echo"

    def label(self) -> str:
        return f"prompt echo ≥ {self.threshold:.0%}"

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores:
        if ctx.store is None:
            return StepScores(np.full(len(batch), np.nan), note="prompt echo needs the store (the samples' prompts): skipped")
        prompts = sample_prompts(ctx.store, batch.keys)
        values = echo_scores(batch.texts, [prompts.get(k, "") for k in batch.keys], self.n)
        missing = sum(1 for k in batch.keys if not prompts.get(k))
        return StepScores(values, note=f"{missing} sample(s) have no stored prompt: not scored" if missing else None)

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision:
        hit = np.nan_to_num(scores.values, nan=0.0) >= self.threshold
        codes = np.full(len(batch), None, dtype=object)
        detail = np.full(len(batch), None, dtype=object)
        codes[hit] = "prompt echo"
        for i in np.flatnonzero(hit).tolist():
            detail[i] = f"{scores.values[i]:.0%} of its {self.n}-word phrases come from its own prompt"
        return Decision(~hit, codes, detail, scores.values)
