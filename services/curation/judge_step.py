"""The LLM-as-judge step.

Judge: a rubric prompt, a 1-5 score with a one-sentence rationale, any chat backend (the generation
``ChatBackend``). Scores are cached in ``judge_scores`` by (rubric hash, judge model, text hash),
so a text is never scored twice under the same rubric and judge. Scoring is an explicit action
(``score_missing``): it writes every score as it arrives, so a backend that fails half the time
leaves the good half stored and the rest to retry. A comparison only reads the cache.

Review: keep only what a reviewer kept (``review_decisions``); unreviewed samples are dropped by
default, or kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
from pydantic import model_validator

from services.core.clock import utc_now
from services.core.hashing import text_hash
from services.core.store import Store
from services.curation.step_base import BaseStep, Decision, FilterContext, SampleBatch, StepScores

JUDGE_SYSTEM = (
    "You are a strict judge of synthetic training data. Score the sample against the rubric from 1 (unusable) "
    "to 5 (excellent). Answer with JSON only, no other text: {\"score\": <integer 1-5>, \"rationale\": \"<one sentence>\"}"
)
_JSON = re.compile(r"\{.*?\}", re.DOTALL)
_SCORE = re.compile(r"score\W{0,4}([1-5])(?:\.\d+)?\b", re.IGNORECASE)
_LEAD = re.compile(r"^\W*([1-5])\b")


def rubric_hash(rubric: str) -> str:
    return hashlib.sha256(("judge-v1\x1f" + JUDGE_SYSTEM + "\x1f" + rubric.strip()).encode()).hexdigest()[:24]


def judge_messages(rubric: str, text: str) -> list[dict[str, str]]:
    # The rubric first and the sample last: a local server's prefix cache then skips most prefill.
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": f"Rubric: {rubric.strip()}\n\nSample:\n{text}"}]


def parse_judgement(reply: str) -> tuple[float, str]:
    """(score 1-5, rationale) from a judge's reply: JSON first, then 'score: N', then a leading digit."""
    for m in _JSON.finditer(reply or ""):
        try:
            obj = json.loads(m.group(0))
        except ValueError:
            continue
        if isinstance(obj, dict) and "score" in obj:
            score = float(obj["score"])
            if 1 <= score <= 5:
                return score, str(obj.get("rationale") or "")[:500]
    m = _SCORE.search(reply or "") or _LEAD.search(reply or "")
    if m:
        return float(m.group(1)), (reply or "").strip()[:500]
    raise ValueError(f"no 1-5 score in the judge's reply: {(reply or '')[:120]!r}")


def cached_scores(store: Store, rubric: str, judge_model: str, texts: list[str]) -> dict[str, tuple[float, str | None]]:
    """text hash -> (score, rationale) already stored for this rubric and judge."""
    hashes = list(dict.fromkeys(text_hash(t) for t in texts))
    if not hashes:
        return {}
    rows = store.query(
        "SELECT text_hash, score, rationale FROM judge_scores WHERE rubric_hash = ? AND judge_model = ?"
        " AND text_hash IN (SELECT unnest(?::VARCHAR[]))",
        [rubric_hash(rubric), judge_model, hashes],
    )
    return {h: (float(s), r) for h, s, r in rows}


def count_scores(store: Store, rubric: str, judge_model: str) -> int:
    return int(store.scalar("SELECT count(*) FROM judge_scores WHERE rubric_hash = ? AND judge_model = ?",
                            [rubric_hash(rubric), judge_model]) or 0)


def _save(store: Store, rubric: str, judge_model: str, rows: list[tuple[str, float, str]]) -> None:
    if not rows:
        return
    now = utc_now()
    with store.write() as cur:
        cur.executemany(
            "INSERT INTO judge_scores (rubric_hash, judge_model, text_hash, score, rationale, scored_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [[rubric_hash(rubric), judge_model, h, s, r, now] for h, s, r in rows],
        )


@dataclass
class JudgeReport:
    scored: int = 0
    cached: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    stopped: str | None = None

    def summary(self) -> str:
        msg = f"{self.scored} scored now, {self.cached} already scored, {self.failed} failed"
        if self.errors:
            msg += f" (first error: {self.errors[0]})"
        if self.stopped:
            msg += f". Stopped: {self.stopped}"
        return msg


async def _score_async(store: Store, backend_or_factory, judge_model: str, rubric: str, todo: list[tuple[str, str]], concurrency: int,
                       report: JudgeReport, max_tokens: int) -> None:
    from services.generation.backends import describe_error, is_quota_error

    # A factory builds the backend inside this event loop and closes it here: an async HTTP
    # client belongs to the loop it was first used in.
    owned = callable(backend_or_factory) and not hasattr(backend_or_factory, "complete")
    backend = backend_or_factory() if owned else backend_or_factory
    sem = asyncio.Semaphore(max(1, concurrency))
    stop = asyncio.Event()
    pending: list[tuple[str, float, str]] = []

    async def one(h: str, text: str) -> None:
        if stop.is_set():
            return
        async with sem:
            if stop.is_set():
                return
            try:
                res = await backend.complete(judge_messages(rubric, text), {"temperature": 0.0, "max_tokens": max_tokens})
                score, why = parse_judgement(res.text)
            except Exception as exc:  # every failure is counted and described; the sample stays unscored
                report.failed += 1
                if len(report.errors) < 5:
                    report.errors.append(describe_error(exc) if not isinstance(exc, ValueError) else str(exc))
                if is_quota_error(exc):
                    report.stopped = describe_error(exc)
                    stop.set()
                return
            pending.append((h, score, why))
            report.scored += 1
            if len(pending) >= 16:  # write as we go: an interrupted scoring keeps what it paid for
                batch = pending[:]
                pending.clear()
                _save(store, rubric, judge_model, batch)

    try:
        await asyncio.gather(*(one(h, t) for h, t in todo))
    finally:
        _save(store, rubric, judge_model, pending)
        if owned:
            await backend.aclose()


def score_missing(store: Store, backend, judge_model: str, rubric: str, texts: list[str], *, concurrency: int = 4,
                  max_tokens: int = 120) -> JudgeReport:
    """Score the texts this rubric and judge have not scored yet (each distinct text once).

    ``backend`` is a ``services.generation.backends.ChatBackend`` or a no-argument function that builds one
    (then it is built and closed inside the scoring's own event loop); ``judge_model`` is the cache label (e.g.
    'openai/gpt-4o-mini'), never a key. Safe to call again: only what is missing is sent.
    """
    if not rubric.strip():
        raise ValueError("the judge needs a rubric")
    have = cached_scores(store, rubric, judge_model, texts)
    todo: dict[str, str] = {}
    for t in texts:
        h = text_hash(t)
        if h not in have and h not in todo:
            todo[h] = t
    report = JudgeReport(cached=len(have))
    if todo:
        asyncio.run(_score_async(store, backend, judge_model, rubric, list(todo.items()), concurrency, report, max_tokens))
    return report


class JudgeStep(BaseStep):
    """Keep samples an LLM judge scored >= threshold (1-5) under a rubric. Reads cached scores;
    samples not scored yet are kept or dropped as ``unscored`` says, with that reason."""

    kind: Literal["judge"] = "judge"
    rubric: str = "The sample is fluent, on task, and would be useful as training data."
    judge_model: str = "local/SmolLM2-135M-Instruct"
    threshold: float = 3.0
    unscored: Literal["keep", "drop"] = "keep"
    SCORE_PARAMS: ClassVar[tuple[str, ...]] = ("rubric", "judge_model")
    TITLE: ClassVar[str] = "LLM judge"

    @model_validator(mode="after")
    def _check(self) -> JudgeStep:
        if not 1 <= self.threshold <= 5:
            raise ValueError(f"the judge threshold must be between 1 and 5, got {self.threshold}")
        if not self.rubric.strip():
            raise ValueError("the judge needs a rubric")
        if not self.judge_model.strip():
            raise ValueError("name the judge model")
        return self

    def label(self) -> str:
        return f"judge ≥ {self.threshold:g} ({self.judge_model})"

    def cache_token(self, batch: SampleBatch, ctx: FilterContext) -> str:
        return str(count_scores(ctx.store, self.rubric, self.judge_model)) if ctx.store is not None else ""

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores:
        n = len(batch)
        if ctx.store is None:
            return StepScores(np.full(n, np.nan), {"why": [None] * n}, note="the judge needs the store: skipped")
        if ctx.judge is not None:
            score_missing(ctx.store, ctx.judge, self.judge_model, self.rubric, batch.texts, concurrency=ctx.judge_concurrency)
        have = cached_scores(ctx.store, self.rubric, self.judge_model, batch.texts)
        hashes = [text_hash(t) for t in batch.texts]
        values = np.array([have[h][0] if h in have else np.nan for h in hashes])
        why = [have[h][1] if h in have else None for h in hashes]
        missing = int(np.isnan(values).sum())
        note = f"{missing} of {n} samples not scored by the judge yet" if missing else None
        return StepScores(values, {"why": why}, note=note)

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision:
        v = scores.values
        unscored = np.isnan(v)
        low = ~unscored & (np.nan_to_num(v, nan=0) < self.threshold)
        drop = low | (unscored & (self.unscored == "drop"))
        n = len(v)
        codes = np.full(n, None, dtype=object)
        det = np.full(n, None, dtype=object)
        codes[low] = f"judge score < {self.threshold:g}"
        codes[unscored & drop] = "not scored by the judge"
        for i in np.flatnonzero(low & alive).tolist():
            det[i] = f"judge score {v[i]:g} < {self.threshold:g}: {(scores.extra['why'][i] or '')[:200]}"
        for i in np.flatnonzero(unscored & drop & alive).tolist():
            det[i] = "not scored by the judge yet"
        return Decision(~drop, codes, det, v)


def judge_backend_factory(preset: str, model: str, *, base_url: str | None = None, api_key: str | None = None,
                          local=None, timeout_s: float = 60.0, max_retries: int = 1):
    """A no-argument function building the judge's chat backend for ``score_missing``; the built-in
    model's server starts on first use. The key stays in memory."""
    from services.generation.connect import backend_factory, preset_config

    cfg = preset_config(preset, model=model, base_url=base_url, api_key=api_key, timeout_s=timeout_s, max_retries=max_retries)
    return backend_factory(cfg, local)
