"""Filter pipelines: ordered, validated steps run over a batch of samples, with a score cache.

A pipeline runs its steps in order; each step sees only the samples the previous steps kept, and
a sample is dropped by the first step that drops it (so the per-step drop counts add up to the
total dropped). Step scores are computed on the whole batch once and kept in a ``ScoreCache``
keyed by (batch, step kind, the parameters that change the scores, stored inputs): moving a
threshold re-thresholds cached scores instead of recomputing them.

Steps (see filter_steps, filter_dedup, filter_judge): length, regex, keywords, refusal,
exact_dedup, minhash, semantic_dedup, judge, adherence, review.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError, field_validator

from services.core.errors import StudioError
from services.core.store import Store
from services.curation.dedup_steps import ExactDedupStep, MinHashStep, SemanticDedupStep
from services.curation.echo_steps import PromptEchoStep
from services.curation.judge_step import JudgeStep
from services.curation.label_noise import LabelDisagreementStep
from services.curation.review_step import ReviewStep
from services.curation.step_base import Decision, FilterContext, FilterStep, SampleBatch, StepScores, Verdict
from services.curation.text_steps import AdherenceStep, KeywordStep, LengthStep, RefusalStep, RegexStep, length_dimensions

__all__ = [
    "STEP_TYPES", "AnyStep", "Decision", "FilterContext", "FilterStep", "Pipeline", "PipelineError", "PipelineResult",
    "SampleBatch", "ScoreCache", "StepScores", "Verdict", "default_pipeline", "load_batch", "parse_step", "run_pipeline",
]

STEP_TYPES: dict[str, type] = {
    "length": LengthStep, "regex": RegexStep, "keywords": KeywordStep, "refusal": RefusalStep,
    "exact_dedup": ExactDedupStep, "minhash": MinHashStep, "semantic_dedup": SemanticDedupStep,
    "judge": JudgeStep, "adherence": AdherenceStep, "review": ReviewStep,
    "prompt_echo": PromptEchoStep, "label_disagreement": LabelDisagreementStep,
}
STEP_TITLES = {k: t.TITLE for k, t in STEP_TYPES.items()}

AnyStep = Annotated[
    LengthStep | RegexStep | KeywordStep | RefusalStep | ExactDedupStep | MinHashStep | SemanticDedupStep | JudgeStep
    | AdherenceStep | ReviewStep | PromptEchoStep | LabelDisagreementStep,
    Field(discriminator="kind"),
]


class PipelineError(StudioError, ValueError):
    """A pipeline or step that does not validate; ``problems`` are sentences a user can act on."""

    title = "The pipeline is not valid"

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def _problems(exc: ValidationError, where: str = "") -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if not isinstance(p, int) or where == "")
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        out.append(f"{where}{loc + ': ' if loc and err.get('type') != 'value_error' else ''}{msg}")
    return out


def parse_step(data: dict[str, Any]) -> FilterStep:
    """A step from a dict with 'kind'; raises PipelineError with readable problems."""
    kind = (data or {}).get("kind")
    if kind not in STEP_TYPES:
        raise PipelineError([f"unknown step kind {kind!r} (known: {', '.join(STEP_TYPES)})"])
    try:
        return STEP_TYPES[kind].model_validate(data)
    except ValidationError as exc:
        raise PipelineError(_problems(exc, f"{STEP_TITLES[kind]}: ")) from None


class Pipeline(BaseModel):
    """An ordered list of steps with a name."""

    name: str = "pipeline"
    steps: list[AnyStep] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = (v or "").strip()
        if not v:
            raise ValueError("the pipeline needs a name")
        return v

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Pipeline:
        """Validate a pipeline, or raise PipelineError naming each bad step."""
        problems: list[str] = []
        steps = []
        for i, s in enumerate((data or {}).get("steps") or []):
            try:
                steps.append(parse_step(s))
            except PipelineError as exc:
                problems.extend(f"step {i + 1}: {p}" for p in exc.problems)
        try:
            pipe = cls(name=(data or {}).get("name", "pipeline"), steps=[])
        except ValidationError as exc:
            problems.extend(_problems(exc))
            pipe = None
        if problems:
            raise PipelineError(problems)
        assert pipe is not None
        pipe.steps = steps
        return pipe

    def canonical_steps(self) -> list[dict[str, Any]]:
        return [s.model_dump(mode="json") for s in self.steps]

    def content_hash(self) -> str:
        body = json.dumps({"name": self.name, "steps": self.canonical_steps()}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(body.encode()).hexdigest()[:24]

    def step_names(self) -> list[str]:
        return [f"{i + 1}. {s.label()}" for i, s in enumerate(self.steps)]


# -- starting pipelines ----------------------------------------------------------------------------

# What a fresh Compare page shows. B starts stricter than A, so two fresh pipelines already disagree on real data.
DEFAULT_PIPELINES: tuple[tuple[str, tuple[dict[str, Any], ...]], ...] = (
    ("A", ({"kind": "length", "min": 3}, {"kind": "refusal"}, {"kind": "exact_dedup"})),
    ("B", ({"kind": "length", "min": 20}, {"kind": "refusal"}, {"kind": "minhash"},
           {"kind": "semantic_dedup", "threshold": 0.85}, {"kind": "adherence"})),
    ("C", ({"kind": "refusal"}, {"kind": "minhash"})),
    ("D", ({"kind": "length", "min": 3}, {"kind": "exact_dedup"})),
)


def default_pipeline(i: int, batch: SampleBatch) -> dict[str, Any]:
    """Starting pipeline ``i`` for this batch (raw, as the editor returns it). A step that cannot
    apply to the batch is left out, so a default never opens in an error or a silent no-op:
    condition adherence checks the first dimension whose values ask for a length, if any."""
    name, steps = DEFAULT_PIPELINES[i % len(DEFAULT_PIPELINES)]
    out = []
    for step in steps:
        if step["kind"] == "adherence":
            dims = length_dimensions(batch)
            if not dims:
                continue
            step = {**step, "length_dimension": dims[0]}
        out.append(dict(step))
    return {"name": name, "steps": out}


# -- the score cache -------------------------------------------------------------------------------


class ScoreCache:
    """Step scores per (batch, step kind, score parameters, stored-input token), LRU, thread-safe.

    One per process (built by a ``st.cache_resource`` factory): every rerun of the Compare page
    after a slider move finds the expensive part here."""

    def __init__(self, max_entries: int = 64) -> None:
        self._data: OrderedDict[tuple, StepScores] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, step: FilterStep, batch: SampleBatch, ctx: FilterContext) -> StepScores:
        key = (batch.fingerprint, step.kind, step.score_key(), step.cache_token(batch, ctx))
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
                self.hits += 1
                return found
        scores = step.score(batch, ctx)
        with self._lock:
            self.misses += 1
            self._data[key] = scores
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
        return scores

    def memo(self, key: tuple, compute):
        """Any other cached computation (e.g. diversity of a kept set), in the same LRU."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
        value = compute()
        with self._lock:
            self.misses += 1
            self._data[key] = value
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


# -- running a pipeline ------------------------------------------------------------------------------


@dataclass
class StepOutcome:
    index: int
    name: str
    kind: str
    n_in: int
    dropped: int
    reasons: dict[str, int]
    note: str | None = None

    @property
    def n_out(self) -> int:
        return self.n_in - self.dropped


@dataclass
class PipelineResult:
    """A pipeline's verdicts on a batch. ``dropped_at`` is the index of the dropping step, -1 if kept."""

    pipeline: Pipeline
    batch: SampleBatch
    kept: np.ndarray
    dropped_at: np.ndarray
    code: np.ndarray
    reason: np.ndarray
    scores: list[np.ndarray]  # per step, every sample (NaN where the step gives none)
    steps: list[StepOutcome] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.kept)

    @property
    def n_kept(self) -> int:
        return int(self.kept.sum())

    @property
    def n_dropped(self) -> int:
        return self.n - self.n_kept

    @property
    def notes(self) -> list[str]:
        return [f"step {s.index + 1} ({s.name}): {s.note}" for s in self.steps if s.note]

    def verdict_rows(self) -> list[tuple[str, int, str, bool, str | None, float | None]]:
        """(sample_key, step_idx, step_name, kept, reason, score) for each step each sample reached."""
        rows = []
        for si, outcome in enumerate(self.steps):
            reached = np.flatnonzero((self.dropped_at == -1) | (self.dropped_at >= si))
            sc = self.scores[si]
            for i in reached.tolist():
                kept = bool(self.dropped_at[i] != si)
                s = float(sc[i]) if not np.isnan(sc[i]) else None
                rows.append((self.batch.keys[i], si, outcome.name, kept, None if kept else self.reason[i], s))
        return rows


def run_pipeline(pipeline: Pipeline, batch: SampleBatch, ctx: FilterContext | None = None,
                 cache: ScoreCache | None = None) -> PipelineResult:
    """Run the steps in order over the batch; each step decides on the samples still alive."""
    ctx = ctx or FilterContext()
    n = len(batch)
    alive = np.ones(n, dtype=bool)
    dropped_at = np.full(n, -1, dtype=np.int64)
    code = np.full(n, None, dtype=object)
    reason = np.full(n, None, dtype=object)
    all_scores: list[np.ndarray] = []
    outcomes: list[StepOutcome] = []
    for si, step in enumerate(pipeline.steps):
        scores = cache.get(step, batch, ctx) if cache is not None else step.score(batch, ctx)
        dec = step.decide(scores, alive, batch)
        newly = alive & ~dec.kept
        idx = np.flatnonzero(newly)
        dropped_at[idx] = si
        code[idx] = dec.code[idx]
        reason[idx] = dec.detail[idx]
        counts: dict[str, int] = {}
        if len(idx):
            vals, cnt = np.unique(np.array([c or "dropped" for c in dec.code[idx].tolist()], dtype=object), return_counts=True)
            counts = dict(zip(vals.tolist(), cnt.astype(int).tolist(), strict=True))
        outcomes.append(StepOutcome(si, f"{si + 1}. {step.label()}", step.kind, int(alive.sum()), len(idx), counts, scores.note))
        all_scores.append(np.asarray(dec.score, dtype=np.float64))
        alive &= ~newly
    return PipelineResult(pipeline, batch, alive, dropped_at, code, reason, all_scores, outcomes)


# -- loading samples -------------------------------------------------------------------------------


def load_batch(store: Store, run_id: str) -> SampleBatch:
    """A run's successful output samples, with their latest (possibly edited) texts, in plan order."""
    rows = store.query(
        """SELECT sample_key, text, condition, edit_version FROM samples_latest
           WHERE run_id = ? AND step = 'output' AND error IS NULL ORDER BY item_idx, sample_idx, sample_key""",
        [run_id],
    )
    return SampleBatch(keys=[r[0] for r in rows], texts=[r[1] or "" for r in rows], conditions=[dict(r[2] or {}) for r in rows],
                       run_id=run_id, n_edited=sum(1 for r in rows if r[3]))
