"""Every diversity metric of the studio, per set (a run or a dataset), with a 95% interval.

Set-level metrics (distinct-n, vocabulary, Self-BLEU, mean cosine, Vendi, clusters) cannot be
bootstrapped with replacement: a resample repeats texts, and repeats read as lost diversity. So
each draw is a random subset *without* replacement of one size m for every set compared (half
the smallest set), which also makes sets of different sizes comparable: every figure is "at m
texts". The value shown is the median over draws and the interval the 2.5–97.5 percentiles; a
difference is called real only where two intervals do not overlap (a conservative test).
Self-BLEU is quadratic, so it uses fewer draws of at most ``BLEU_TEXTS`` texts (said in notes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.evaluation.lexical import at_budget, budget_metrics
from services.explore.diversity import cluster_stats, mean_pairwise_cosine, self_bleu, tokens

BLEU_TEXTS = 25
MAX_BUDGET = 20_000

# key -> (label, +1 when higher means more diverse, -1 when lower does, 0 when neither)
METRICS: dict[str, tuple[str, int]] = {
    "distinct_1": ("distinct-1", 1), "distinct_2": ("distinct-2", 1), "distinct_3": ("distinct-3", 1),
    "vocabulary": ("vocabulary (at m texts)", 1),
    "vocab_at_budget": ("vocabulary at a fixed token budget", 1),
    "distinct_2_at_budget": ("distinct-2 at a fixed token budget", 1),
    "mtld": ("MTLD", 1),
    "self_bleu": ("Self-BLEU (lower: more diverse)", -1),
    "mean_cosine": ("mean pairwise cosine (lower: more diverse)", -1),
    "vendi": ("Vendi score", 1),
    "clusters": ("clusters", 0), "cluster_entropy_bits": ("cluster entropy (bits)", 1),
}


@dataclass
class SetInput:
    """One set to measure: its texts, their embeddings (or None) and map clusters (or None)."""

    texts: list[str]
    vectors: np.ndarray | None = None
    clusters: np.ndarray | None = None


@dataclass
class Intervals:
    """Long table: set, metric, value, lo, hi; plus the subset size, token budget and notes."""

    table: pd.DataFrame
    m: int
    budget: int
    draws: int
    notes: list[str] = field(default_factory=list)


def _gram_ids(toks: list[list[str]], n: int) -> list[np.ndarray]:
    """Each text's n-grams as integer ids (one id per distinct n-gram of the set): a draw's
    distinct-n is then a numpy unique over concatenated arrays, not a set of tuples."""
    ids: dict[tuple[str, ...], int] = {}
    return [np.array([ids.setdefault(tuple(t[i : i + n]), len(ids)) for i in range(len(t) - n + 1)], dtype=np.int64)
            for t in toks]


def _distinct(grams: list[np.ndarray], idx: np.ndarray) -> float | None:
    parts = [grams[i] for i in idx]
    total = sum(len(p) for p in parts)
    return len(np.unique(np.concatenate(parts))) / total if total else None


def _vendi(e: np.ndarray) -> float | None:
    if len(e) == 0:
        return None
    k = e @ e.T if len(e) < e.shape[1] else e.T @ e  # same non-zero eigenvalues, smaller matrix
    eig = np.linalg.eigvalsh(k.astype(np.float64) / len(e))
    eig = eig[eig > 1e-12]
    eig = eig / eig.sum()
    return float(np.exp(-np.sum(eig * np.log(eig))))


def _draw(toks: list[list[str]], grams: dict[int, list[np.ndarray]], s: SetInput, idx: np.ndarray, budget: int,
          rng: np.random.Generator) -> dict[str, float | None]:
    out: dict[str, float | None] = {f"distinct_{n}": _distinct(grams[n], idx) for n in (1, 2, 3)}
    parts = [grams[1][i] for i in idx]
    out["vocabulary"] = float(len(np.unique(np.concatenate(parts)))) if parts else 0.0
    out.update(budget_metrics(at_budget(toks, budget, rng)))
    if s.vectors is not None and len(s.vectors):
        e = np.asarray(s.vectors[idx], dtype=np.float64)
        out["mean_cosine"] = mean_pairwise_cosine(e)
        out["vendi"] = _vendi(e)
    if s.clusters is not None:
        cs = cluster_stats(s.clusters[idx])
        out["clusters"], out["cluster_entropy_bits"] = cs["clusters"], cs["cluster_entropy_bits"]
    return out


def diversity_intervals(sets: dict[str, SetInput], *, draws: int = 60, bleu_draws: int = 5, seed: int = 0) -> Intervals:
    """Every metric per set on ``draws`` random subsets of one common size (see the module doc)."""
    names = [k for k, s in sets.items() if len(s.texts) >= 2]
    notes = [f"{k}: fewer than 2 texts, no diversity figures." for k, s in sets.items() if len(s.texts) < 2]
    if not names:
        return Intervals(pd.DataFrame(columns=["set", "metric", "value", "lo", "hi"]), 0, 0, draws, notes)
    toks = {k: [tokens(t) for t in sets[k].texts] for k in names}
    grams = {k: {n: _gram_ids(toks[k], n) for n in (1, 2, 3)} for k in names}
    m = max(2, min(len(sets[k].texts) for k in names) // 2)
    budget = int(min(MAX_BUDGET, min(sum(len(t) for t in toks[k]) for k in names) // 2)) or 1
    rng = np.random.default_rng(seed)
    rows = []
    for k in names:
        s, n = sets[k], len(sets[k].texts)
        samples: dict[str, list[float]] = {}
        for d in range(draws):
            idx = np.sort(rng.choice(n, size=m, replace=False))
            for key, v in _draw(toks[k], grams[k], s, idx, budget, rng).items():
                if v is not None:
                    samples.setdefault(key, []).append(float(v))
            if d < bleu_draws:
                sb, _ = self_bleu([s.texts[i] for i in idx[: BLEU_TEXTS]], sample=BLEU_TEXTS, seed=d)
                if sb is not None:
                    samples.setdefault("self_bleu", []).append(sb)
        for key in METRICS:
            vals = samples.get(key)
            if vals:
                lo, med, hi = np.percentile(vals, [2.5, 50, 97.5])
                rows.append({"set": k, "metric": key, "value": float(med), "lo": float(lo), "hi": float(hi)})
    notes.append(f"Every figure is measured on random subsets of {m} texts per set ({draws} draws; Self-BLEU: "
                 f"{bleu_draws} draws of at most {BLEU_TEXTS} texts), token-budget figures on {budget:,} tokens.")
    return Intervals(pd.DataFrame(rows), m, budget, draws, notes)


def compare_table(iv: Intervals, baseline: str) -> pd.DataFrame:
    """One row per metric, a 'value [lo, hi]' column per set and, per other set, a '<set>: difference'
    column saying whether it differs from ``baseline`` beyond the intervals ('more diverse' /
    'less diverse' / 'higher' / 'lower' / '')."""
    t = iv.table
    sets = list(dict.fromkeys(t["set"]))
    out = []
    for key, (label, sign) in METRICS.items():
        rows = {r.set: r for r in t[t["metric"] == key].itertuples()}
        if not rows:
            continue
        rec: dict[str, str] = {"metric": label}
        for s in sets:
            r = rows.get(s)
            rec[s] = "—" if r is None else f"{_fmt(r.value)} [{_fmt(r.lo)}, {_fmt(r.hi)}]"
        base = rows.get(baseline)
        for s in sets:
            if s == baseline or base is None or s not in rows:
                continue
            r = rows[s]
            verdict = ""
            if r.lo > base.hi or r.hi < base.lo:
                up = r.lo > base.hi
                verdict = ("higher" if up else "lower") if sign == 0 else ("more diverse" if (up == (sign > 0)) else "less diverse")
            rec[f"{s}: difference"] = verdict
        out.append(rec)
    return pd.DataFrame(out)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
