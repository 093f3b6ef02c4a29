"""Grow toward a target, as a loop of real runs: each round is one run of the normal runner.

Round k counts what the loop's runs (its starting runs and rounds 1..k-1) hold per cell, stops
when the distance to the target is within the tolerance, otherwise asks ``grow.allocate`` for the
next batch and writes it as a plan of its own (``plan_for_conditions``, id ``<recipe plan>-<loop>-r<k>``)
and a planned run, before anything is sent. The run then executes like any other: its budget is
what the loop's budget has left, its samples carry their full provenance, and its keys are the
runner's. The loop itself is stored on its runs (``settings.grow``: loop id, round and the spec),
so running the same loop again finds its rounds: a finished round is skipped, an interrupted or
failed one is resumed (the runner generates only what is missing), and nothing is paid twice.

A loop's id is a digest of what defines it (recipe version, cells, shares, starting runs, batch,
backend, model, parameters, name), not of its rounds, tolerance or budget: asking again with more
rounds or a larger budget continues the same loop.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from services.core.errors import StudioError
from services.core.hashing import text_hash
from services.core.store import Store
from services.curation.judge_step import rubric_hash
from services.evaluation.grow import Cell, GrowError, Target, allocate, make_target, plan_conditions, total_variation
from services.evaluation.judging import FAITHFUL_AT, faithfulness_rubric
from services.explore.diversity import mean_pairwise_cosine
from services.explore.gaps import MIN_COLLAPSE_CELL
from services.generation.backends import BackendConfig, request_params
from services.generation.presets import LOCAL
from services.generation.run_setup import ANY_HOW, check_budget
from services.generation.run_store import create_run, get_run, progress, unique_run_name
from services.generation.runner import Outcome, RunSettings
from services.recipes.plan import plan_for_conditions
from services.recipes.plan_store import save_plan
from services.recipes.recipe import ModelSettings, Recipe
from services.recipes.version_store import load_version, save_version

COLLAPSE_COSINE = 0.85  # the evaluation's threshold (services.evaluation.coverage)


@dataclass(frozen=True)
class GrowSpec:
    """What a loop is asked to do. ``shares``: {dimension: {value: share}}; None: uniform."""

    rounds: int
    batch: int
    dimensions: tuple[str, ...] | None = None
    shares: dict[str, dict[str, float]] | None = None
    base_runs: tuple[str, ...] = ()
    tolerance: float = 0.05
    budget_usd: float | None = None
    name: str = "grow"

    def check(self) -> None:
        if self.rounds < 1:
            raise GrowError(f"A grow loop needs at least 1 round (asked: {self.rounds}).")
        if self.batch < 1:
            raise GrowError(f"Each round needs a batch of at least 1 sample (asked: {self.batch}).")
        if not 0 <= self.tolerance < 1:
            raise GrowError(f"The tolerance is a distance between 0 and 1 (asked: {self.tolerance}).")
        if self.budget_usd is not None and self.budget_usd <= 0:
            raise GrowError(f"The loop's budget must be above $0 (asked: ${self.budget_usd}).")


class GrowStopped(StudioError):
    """A round ended without finishing (a failing backend, the budget, a cancel): the loop stops."""

    title = "The grow loop stopped"


@dataclass
class GrowOutcome:
    loop_id: str
    status: str  # reached, finished, budget, failed, cancelled
    message: str
    rounds_run: list[str] = field(default_factory=list)  # run ids of the rounds, in order


def loop_id(recipe_hash: str, spec: GrowSpec, cfg: BackendConfig, params: dict[str, Any]) -> str:
    body = json.dumps({
        "recipe": recipe_hash, "dims": list(spec.dimensions or []), "shares": spec.shares or {},
        "base": sorted(spec.base_runs), "batch": spec.batch, "backend": cfg.preset,
        "base_url": None if cfg.preset == LOCAL else cfg.base_url, "model": cfg.model, "params": params, "name": spec.name,
    }, sort_keys=True)
    return "grow-" + hashlib.blake2b(body.encode(), digest_size=5).hexdigest()


# -- the loop in the store --------------------------------------------------------------------
@dataclass(frozen=True)
class Round:
    round: int
    run_id: str
    status: str
    grow: dict[str, Any]


def loop_rounds(store: Store, loop: str) -> list[Round]:
    """The loop's rounds (one run each), in order."""
    rows = store.query(
        "SELECT run_id, status, settings FROM runs WHERE json_extract_string(settings, '$.grow.loop') = ?"
        " ORDER BY CAST(json_extract(settings, '$.grow.round') AS INTEGER)", [loop])
    out = []
    for run_id, status, settings in rows:
        g = json.loads(settings)["grow"]
        out.append(Round(int(g["round"]), run_id, status, g))
    return out


def list_loops(store: Store) -> list[dict[str, Any]]:
    """Every loop in the store, newest first: id, recipe name, rounds started and asked, spec."""
    rows = store.query(
        "SELECT json_extract_string(settings, '$.grow.loop') AS loop, max(created_at), count(*),"
        " arg_max(settings, created_at), arg_max(name, created_at), arg_max(recipe_hash, created_at)"
        " FROM runs WHERE json_extract_string(settings, '$.grow.loop') IS NOT NULL GROUP BY loop ORDER BY 2 DESC")
    return [{"loop": lp, "created_at": at, "rounds_started": int(n), "grow": json.loads(s)["grow"], "last_run": name,
             "recipe_hash": rh} for lp, at, n, s, name, rh in rows]


def spec_of(grow: dict[str, Any]) -> GrowSpec:
    """The spec stored on a round's run."""
    return GrowSpec(rounds=int(grow["rounds"]), batch=int(grow["batch"]), dimensions=tuple(grow.get("dimensions") or ()) or None,
                    shares=grow.get("shares") or None, base_runs=tuple(grow.get("base_runs") or ()),
                    tolerance=float(grow.get("tolerance", 0.05)), budget_usd=grow.get("budget_usd"), name=grow.get("name", "grow"))


def loop_samples(store: Store, run_ids: Sequence[str]) -> pd.DataFrame:
    """Every successful output of these runs: run_id, condition (dict), text."""
    if not run_ids:
        return pd.DataFrame(columns=["run_id", "condition", "text"])
    rows = store.query(
        "SELECT run_id, condition, text FROM samples WHERE run_id IN (SELECT unnest(?::VARCHAR[]))"
        " AND step = 'output' AND error IS NULL AND text IS NOT NULL ORDER BY created_at, item_idx, sample_idx",
        [list(run_ids)])
    return pd.DataFrame([(r, dict(c), t) for r, c, t in rows], columns=["run_id", "condition", "text"])


def _failed(store: Store, run_id: str) -> str | None:
    """The first error of a run's failed outputs (None: none failed)."""
    rows = store.query("SELECT error FROM samples WHERE run_id = ? AND step = 'output' AND error IS NOT NULL"
                       " ORDER BY item_idx LIMIT 1", [run_id])
    return rows[0][0] if rows else None


def _set_budget(store: Store, run_id: str, budget_usd: float) -> None:
    with store.write() as cur:
        cur.execute("UPDATE runs SET budget_usd = ? WHERE run_id = ?", [max(0.0, budget_usd), run_id])


def spent_usd(store: Store, run_ids: Sequence[str]) -> float:
    if not run_ids:
        return 0.0
    return float(store.scalar("SELECT coalesce(sum(cost_usd), 0) FROM samples WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                              [list(run_ids)]) or 0.0)


# -- what a round measures --------------------------------------------------------------------
@dataclass
class CellState:
    counts: Counter  # cell -> successful samples
    collapsed: set[Cell]
    unfaithful: dict[Cell, float]
    notes: list[str] = field(default_factory=list)


def collapsed_cells(store: Store, embedder: Any, target: Target, frame: pd.DataFrame) -> set[Cell]:
    """Cells with at least ``MIN_COLLAPSE_CELL`` samples whose mean pairwise cosine is >= 0.85
    (embeddings from the cache; only missing texts are embedded)."""
    from services.explore.embedding_store import embed_texts

    if frame.empty:
        return set()
    cells = [target.cell_of(c) for c in frame["condition"]]
    sizes = Counter(cells)
    big = {c for c, n in sizes.items() if n >= MIN_COLLAPSE_CELL and c in target.shares}
    if not big:
        return set()
    keep = [i for i, c in enumerate(cells) if c in big]
    vectors = embed_texts(store, embedder, [frame["text"].iloc[i] for i in keep])
    out = set()
    for cell in big:
        rows = [j for j, i in enumerate(keep) if cells[i] == cell]
        cos = mean_pairwise_cosine(vectors[np.array(rows)])
        if cos is not None and cos >= COLLAPSE_COSINE:
            out.add(cell)
    return out


def unfaithful_shares(store: Store, target: Target, frame: pd.DataFrame) -> dict[Cell, float]:
    """Per cell, the share of its judged samples that a faithfulness judge (any judge model, the
    Evaluate page's rubric per dimension and value) scored below 4 on one of the cell's values.
    Cells with no judged sample are absent."""
    if frame.empty:
        return {}
    rubric_of = {(d, v): rubric_hash(faithfulness_rubric(d, v)) for cond in frame["condition"] for d, v in cond.items()
                 if d in target.dimensions}
    hashes = [text_hash(t) for t in frame["text"]]
    rows = store.query(
        "SELECT rubric_hash, text_hash, min(score) FROM judge_scores WHERE rubric_hash IN (SELECT unnest(?::VARCHAR[]))"
        " AND text_hash IN (SELECT unnest(?::VARCHAR[])) GROUP BY rubric_hash, text_hash",
        [sorted(set(rubric_of.values())), sorted(set(hashes))]) if rubric_of else []
    if not rows:
        return {}
    scores = {(r, t): s for r, t, s in rows}
    judged: Counter = Counter()
    bad: Counter = Counter()
    for cond, th in zip(frame["condition"], hashes, strict=True):
        got = [scores.get((rubric_of[(d, cond[d])], th)) for d in target.dimensions if d in cond]
        got = [s for s in got if s is not None]
        if got:
            cell = target.cell_of(cond)
            judged[cell] += 1
            bad[cell] += any(s < FAITHFUL_AT for s in got)
    return {c: bad[c] / n for c, n in judged.items()}


def measure(store: Store, target: Target, frame: pd.DataFrame, embedder: Any | None) -> CellState:
    counts = Counter(target.cell_of(c) for c in frame["condition"])
    notes = []
    if embedder is None:
        collapsed: set[Cell] = set()
        notes.append("No embedder: collapsed cells were not looked for.")
    else:
        collapsed = collapsed_cells(store, embedder, target, frame)
    return CellState(counts, collapsed, unfaithful_shares(store, target, frame), notes)


# -- the loop ---------------------------------------------------------------------------------
def run_grow(store: Store, recipe: Recipe, spec: GrowSpec, cfg: BackendConfig, settings: RunSettings,
             execute: Callable[[str], Outcome], *, model: ModelSettings | None = None, embedder: Any | None = None,
             cancel: threading.Event | None = None, on_round: Callable[[int, str], None] | None = None,
             say: Callable[[str], None] | None = None, price_how: str = ANY_HOW) -> GrowOutcome:
    """Run (or continue) the loop; ``execute(run_id)`` runs one round's run to its end (the CLI's
    thread, or the studio's job manager) and returns its outcome. Raises ``GrowError`` or
    ``PriceNeeded`` before anything is written when the request cannot be kept."""
    spec.check()
    say = say or (lambda _text: None)
    cancel = cancel or threading.Event()
    check_budget(store, cfg.preset, cfg.model, spec.budget_usd, price_how)
    missing = [r for r in spec.base_runs if not store.query("SELECT 1 FROM runs WHERE run_id = ?", [r])]
    if missing:
        raise GrowError(f"The loop starts from run(s) {', '.join(missing)}, which are not in {store.path}.")
    target = make_target(recipe, spec.dimensions, spec.shares)
    for note in target.notes:
        say(note)
    version = save_version(store, recipe)
    m = model or recipe.model
    params = request_params(m.temperature, m.top_p, m.max_tokens, m.seed)
    loop = loop_id(version.recipe_hash, spec, cfg, params)
    done: dict[int, Round] = {r.round: r for r in loop_rounds(store, loop)}
    ran: list[str] = [done[k].run_id for k in sorted(done)]
    for k in range(1, spec.rounds + 1):
        if cancel.is_set():
            return GrowOutcome(loop, "cancelled", f"Cancelled before round {k} of {spec.rounds}: the finished rounds are kept;"
                               " run the same loop again to resume it.", ran)
        have = done.get(k)
        if have is not None and have.status == "finished" and not _failed(store, have.run_id):
            continue
        if have is None:
            earlier = [*spec.base_runs, *(done[j].run_id for j in sorted(done) if j < k)]
            state = measure(store, target, loop_samples(store, earlier), embedder)
            distance = total_variation(state.counts, target.shares)
            if distance is not None and distance <= spec.tolerance:
                return GrowOutcome(loop, "reached", f"The target was reached before round {k}: distance {distance:.3f} "
                                   f"is within the tolerance {spec.tolerance:g}.", ran)
            room = None
            if spec.budget_usd is not None:
                room = spec.budget_usd - spent_usd(store, [done[j].run_id for j in done])
                if room <= 0:
                    return GrowOutcome(loop, "budget", f"The loop's budget (${spec.budget_usd:.4f}) is spent: round {k} was not planned.", ran)
            run_id = _plan_round(store, recipe, version.recipe_hash, target, spec, cfg, settings, m, params, loop, k, state,
                                 room, say)
            done[k] = Round(k, run_id, "planned", {})
            ran.append(run_id)
        run_id = done[k].run_id
        if have is not None and spec.budget_usd is not None:
            # A resumed round gets what the loop's budget (perhaps raised since) leaves it.
            _set_budget(store, run_id, spec.budget_usd - spent_usd(store, [done[j].run_id for j in done if j != k]))
        if on_round:
            on_round(k, run_id)
        outcome = execute(run_id)
        p = progress(store, get_run(store, run_id))
        if outcome.status != "finished" or p.failed:
            status = "budget" if outcome.message and "budget" in outcome.message.lower() else outcome.status
            why = outcome.message or outcome.status
            if outcome.status == "finished":  # every request answered, but some samples failed
                status, why = "failed", f"{p.failed} of {p.total} sample(s) failed ({_failed(store, run_id)})"
            return GrowOutcome(loop, status, f"Round {k} of {spec.rounds} ({run_id}) stopped: {why.rstrip('.')}. "
                               f"Its {p.done} generated sample(s) are kept; run the same loop again to resume it.", ran)
        say(f"Round {k} of {spec.rounds} ({run_id}): {p.done} generated.")
    final = measure(store, target, loop_samples(store, [*spec.base_runs, *ran]), None)
    distance = total_variation(final.counts, target.shares)
    if distance is not None and distance <= spec.tolerance:
        return GrowOutcome(loop, "reached", f"All {spec.rounds} round(s) ran; distance {distance:.3f} is within the tolerance.", ran)
    return GrowOutcome(loop, "finished", f"All {spec.rounds} round(s) ran; distance to the target {distance:.3f}"
                       f" (tolerance {spec.tolerance:g}).", ran)


def _plan_round(store: Store, recipe: Recipe, recipe_hash: str, target: Target, spec: GrowSpec, cfg: BackendConfig,
                settings: RunSettings, m: ModelSettings, params: dict[str, Any], loop: str, k: int, state: CellState,
                room: float | None, say: Callable[[str], None]) -> str:
    picks = allocate(target.shares, state.counts, spec.batch, collapsed=state.collapsed, unfaithful=state.unfaithful)
    conds, failed = plan_conditions(recipe, target, picks, f"{loop}:r{k}")
    if failed:
        say(f"Round {k}: {len(failed)} pick(s) left out, no condition of the recipe fits "
            + ", ".join(sorted({target.label(c) for c in failed})[:5]))
    if not conds:
        raise GrowError(f"Round {k} could not plan any condition for the cells it picked.")
    plan = plan_for_conditions(recipe, conds, f"{loop}-r{k}")
    save_plan(store, plan)
    if m.seed is not None:  # the same seed would repeat the earlier rounds' answers to the same prompts
        params = {**params, "seed": int(m.seed) + 1000 * k}
    grow = {"loop": loop, "round": k, "rounds": spec.rounds, "batch": spec.batch, "dimensions": list(target.dimensions),
            "shares": spec.shares or {}, "base_runs": list(spec.base_runs), "tolerance": spec.tolerance,
            "budget_usd": spec.budget_usd, "name": spec.name,
            "collapsed": [target.label(c) for c in sorted(state.collapsed)],
            "unfaithful": {target.label(c): round(u, 3) for c, u in state.unfaithful.items()}}
    return create_run(
        store, plan_id=plan.plan_id, recipe_hash=recipe_hash, backend=cfg.preset,
        base_url=None if cfg.preset == LOCAL else cfg.base_url, model=cfg.model, params=params,
        settings={**settings.to_json(), "grow": grow}, samples_per_item=1, budget_usd=room,
        name=unique_run_name(store, f"{recipe.name} {spec.name} {k}/{spec.rounds}"))


# -- what the loop did --------------------------------------------------------------------------
@dataclass
class GrowReport:
    loop_id: str
    target: Target
    rounds: list[Round]
    distances: pd.DataFrame   # round (0 = the starting runs), samples, distance
    cells: pd.DataFrame       # cell, target share, then the count at the start and after each round
    planned: pd.DataFrame     # cell, then the samples planned in each round
    notes: list[str]


def grow_report(store: Store, loop: str, rounds: list[Round] | None = None) -> GrowReport:
    """The realised distribution round by round: the distance to the target after each round,
    the per-cell counts, and what each round planned (read from its plan)."""
    rounds = loop_rounds(store, loop) if rounds is None else rounds
    if not rounds:
        raise GrowError(f"No grow loop {loop} in {store.path}.")
    g = rounds[-1].grow
    recipe = load_version(store, get_run(store, rounds[-1].run_id).recipe_hash)
    target = make_target(recipe, g.get("dimensions") or None, g.get("shares") or None)
    frame = loop_samples(store, [*g.get("base_runs", []), *(r.run_id for r in rounds)])
    stage = {r: 0 for r in g.get("base_runs", [])} | {r.run_id: r.round for r in rounds}
    cells = [target.cell_of(c) for c in frame["condition"]]
    frame = frame.assign(stage=[stage[r] for r in frame["run_id"]], cell=cells)
    dist_rows, table = [], {}
    for s in range(0, max(stage.values(), default=0) + 1):
        counts = Counter(frame.loc[frame["stage"] <= s, "cell"])
        if s == 0 and not g.get("base_runs"):
            continue
        col = "start" if s == 0 else f"after round {s}"
        table[col] = counts
        d = total_variation(counts, target.shares)
        dist_rows.append({"round": s, "samples": int(sum(counts.values())), "distance": None if d is None else round(d, 4)})
    all_cells = list(target.shares) + sorted({c for c in cells if c not in target.shares})
    rows = []
    for c in all_cells:
        row = {"cell": target.label(c), "target share": round(target.shares.get(c, 0.0), 4)}
        row |= {col: int(counts.get(c, 0)) for col, counts in table.items()}
        rows.append(row)
    planned = {}
    for r in rounds:
        plan_id = get_run(store, r.run_id).plan_id
        got = store.query("SELECT condition FROM plan_items WHERE plan_id = ?", [plan_id])
        planned[f"round {r.round}"] = Counter(target.cell_of(dict(c)) for (c,) in got)
    plan_rows = [{"cell": target.label(c), **{k: int(v.get(c, 0)) for k, v in planned.items()}}
                 for c in target.shares if any(v.get(c, 0) for v in planned.values())]
    notes = list(target.notes)
    notes.append("Distance: total variation between the realised share of each cell (successful samples) and its target "
                 "share; 0 is the target exactly, 1 a distribution with nothing in common.")
    off = sum(1 for c in cells if c not in target.shares)
    if off:
        notes.append(f"{off} sample(s) fall outside the target's cells (a value the recipe does not have): they count "
                     "towards the distance as mass the target puts nowhere.")
    return GrowReport(loop, target, rounds, pd.DataFrame(dist_rows, columns=["round", "samples", "distance"]),
                      pd.DataFrame(rows), pd.DataFrame(plan_rows), notes)


def loop_fraction(store: Store, rounds: list[Round], asked: int) -> tuple[float, int]:
    """(share of the loop done, the round under way) for a progress bar: finished rounds count
    whole, the current one by its samples."""
    if not rounds:
        return 0.0, 1
    done = sum(1 for r in rounds if r.status == "finished")
    current = next((r for r in rounds if r.status != "finished"), None)
    part = progress(store, get_run(store, current.run_id)).fraction if current else 0.0
    return min(1.0, (done + part) / max(asked, 1)), (current.round if current else min(asked, rounds[-1].round + 1))


# -- in the studio: a loop in a background thread -------------------------------------------
@dataclass
class GrowJob:
    loop_id: str
    rounds: int
    thread: threading.Thread
    cancel: threading.Event
    current_run: str | None = None
    current_round: int = 0
    outcome: GrowOutcome | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()


class GrowJobs:
    """The process's grow loops: a thread per loop that runs each round through the job manager
    (so a round shows, and can be cancelled, like any run)."""

    def __init__(self, store: Store, jobs: Any):
        self.store, self.jobs = store, jobs
        self._loops: dict[str, GrowJob] = {}
        self._lock = threading.Lock()

    def start(self, recipe: Recipe, spec: GrowSpec, cfg: BackendConfig, settings: RunSettings,
              factory: Callable[[str], Callable[[], Any]], *, model: ModelSettings | None = None,
              embedder: Any | None = None, price_how: str = ANY_HOW) -> GrowJob:
        """Check the request here (``GrowError``/``PriceNeeded`` raise before any thread starts),
        then run the loop in the background."""
        spec.check()
        check_budget(self.store, cfg.preset, cfg.model, spec.budget_usd, price_how)
        make_target(recipe, spec.dimensions, spec.shares)
        m = model or recipe.model
        loop = loop_id(recipe.content_hash(), spec, cfg, request_params(m.temperature, m.top_p, m.max_tokens, m.seed))
        with self._lock:
            job = self._loops.get(loop)
            if job is not None and job.running:
                return job
            job = GrowJob(loop, spec.rounds, threading.Thread(target=lambda: None), threading.Event())

            def on_round(k: int, run_id: str) -> None:
                job.current_round, job.current_run = k, run_id

            def execute(run_id: str) -> Outcome:
                if job.cancel.is_set():
                    return Outcome("cancelled", "Cancelled by the user: run the same loop again to resume it.")
                self.jobs.start(run_id, factory(run_id))
                return self.jobs.wait(run_id) or Outcome("failed", "the round's worker ended without an outcome")

            def target() -> None:
                try:
                    job.outcome = run_grow(self.store, recipe, spec, cfg, settings, execute, model=model, embedder=embedder,
                                           cancel=job.cancel, on_round=on_round, say=job.messages.append, price_how=price_how)
                except Exception as exc:  # the loop's thread must end with a sentence, never a traceback
                    job.outcome = GrowOutcome(loop, "failed", str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}")

            job.thread = threading.Thread(target=target, name=f"grow-{loop}", daemon=True)
            self._loops[loop] = job
            job.thread.start()
            return job

    def get(self, loop: str) -> GrowJob | None:
        return self._loops.get(loop)

    def cancel(self, loop: str) -> bool:
        job = self._loops.get(loop)
        if job is None or not job.running:
            return False
        job.cancel.set()
        if job.current_run:
            self.jobs.cancel(job.current_run)
        return True

    def shutdown(self, timeout: float = 5.0) -> None:
        for loop in list(self._loops):
            self.cancel(loop)
        for job in list(self._loops.values()):
            job.thread.join(timeout)
