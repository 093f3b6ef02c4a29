"""Two or more pipelines on the same samples, side by side.

Per pipeline: kept and dropped counts with the reasons per step (the per-step drops add up to the
total dropped); per condition value and per cluster, the share removed, with a flag on a filter
that wipes out a cluster or a condition value; the intended distribution of each dimension (the
plan) against what remains; the samples one pipeline keeps and another drops, both ways; and the
same diversity metrics as the Explore page (``services.explore.diversity``) before and after; and
a map of the batch's own texts, so a reviewer's edit moves its point.

Everything expensive is cached in the ``ScoreCache`` (step scores, diversity per kept set), so a
threshold change recomputes only thresholds and group counts (bench/compare_rerun.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.core.hashing import digest, text_hash
from services.core.store import Store
from services.curation.pipeline import FilterContext, Pipeline, PipelineResult, SampleBatch, ScoreCache, run_pipeline
from services.explore.diversity import metrics
from services.explore.embedders import Embedder
from services.explore.embedding_store import embed_texts
from services.explore.items import ItemSet, usable
from services.explore.map_jobs import MapData, MapJob, MapJobs, MapRequest, finish_map
from services.explore.projection import pca_layout

HIT_HARD_SHARE = 0.5  # a group losing at least this share, and 1.5 times the overall share, is flagged
MAX_DIVERSITY_TEXTS = 2000


@dataclass(frozen=True)
class Flag:
    pipeline: str
    level: str  # 'wiped_out' or 'hit_hard'
    group: str  # 'cluster' or a dimension name
    value: str
    n: int
    removed: int

    @property
    def message(self) -> str:
        where = f"cluster {self.value}" if self.group == "cluster" else f"{self.group} = {self.value}"
        if self.level == "wiped_out":
            return f"{self.pipeline} removes every sample of {where} ({self.n} of {self.n})."
        return f"{self.pipeline} removes {self.removed} of {self.n} samples of {where} ({self.removed / self.n:.0%})."


@dataclass
class Comparison:
    batch: SampleBatch
    results: list[PipelineResult]
    frame: pd.DataFrame  # one row per sample: key, text, one column per dimension, cluster, kept_<i>
    summary: pd.DataFrame
    steps: pd.DataFrame
    reasons: pd.DataFrame
    by_condition: pd.DataFrame
    by_cluster: pd.DataFrame
    distribution: pd.DataFrame
    flags: list[Flag] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [r.pipeline.name for r in self.results]

    def kept_by_dropped_by(self, a: int, b: int, limit: int | None = 500) -> pd.DataFrame:
        """Samples pipeline ``a`` keeps and pipeline ``b`` drops, with b's step and reason."""
        ra, rb = self.results[a], self.results[b]
        idx = np.flatnonzero(ra.kept & ~rb.kept)
        total = len(idx)
        if limit is not None:
            idx = idx[:limit]
        steps = rb.pipeline.step_names()
        out = pd.DataFrame({
            "sample_key": [self.batch.keys[i] for i in idx],
            "text": [self.batch.texts[i] for i in idx],
            "condition": [", ".join(f"{k}={v}" for k, v in self.batch.conditions[i].items()) for i in idx],
            f"dropped by {rb.pipeline.name} at": [steps[rb.dropped_at[i]] for i in idx],
            "reason": [rb.reason[i] or rb.code[i] for i in idx],
        })
        out.attrs["total"] = total
        return out


def _unique_names(pipelines: list[Pipeline]) -> list[Pipeline]:
    seen: dict[str, int] = {}
    out = []
    for p in pipelines:
        name = p.name
        if name in seen:
            seen[name] += 1
            p = p.model_copy(update={"name": f"{name} ({seen[name]})"})
        else:
            seen[name] = 1
        out.append(p)
    return out


def sample_frame(batch: SampleBatch, clusters: dict[str, int] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"sample_key": batch.keys, "text": batch.texts})
    for d in batch.dimensions:
        frame[d] = [c.get(d, "(none)") for c in batch.conditions]
    if clusters is not None:
        frame["cluster"] = [int(clusters.get(k, -1)) for k in batch.keys]
    return frame


def _group_shares(frame: pd.DataFrame, column: str, results: list[PipelineResult], group_label: str) -> pd.DataFrame:
    keys = frame[column].astype(str).to_numpy()
    values, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    rows = []
    for r in results:
        removed = np.bincount(inverse, weights=(~r.kept).astype(np.float64), minlength=len(values)).astype(int)
        for v, n, k in zip(values.tolist(), counts.tolist(), removed.tolist(), strict=True):
            rows.append({"pipeline": r.pipeline.name, "group": group_label, "value": v, "n": n, "removed": k,
                         "share_removed": k / n if n else 0.0, "wiped_out": n > 0 and k == n})
    return pd.DataFrame(rows, columns=["pipeline", "group", "value", "n", "removed", "share_removed", "wiped_out"])


def _flags(table: pd.DataFrame, results: list[PipelineResult]) -> list[Flag]:
    if table.empty:
        return []
    overall = {r.pipeline.name: r.n_dropped / r.n if r.n else 0.0 for r in results}
    out = []
    for row in table.itertuples(index=False):
        if row.group == "cluster" and row.value == "-1":
            continue  # noise is not a mode a filter can wipe out
        if row.wiped_out:
            out.append(Flag(row.pipeline, "wiped_out", row.group, row.value, row.n, row.removed))
        elif row.n >= 5 and row.share_removed >= max(HIT_HARD_SHARE, 1.5 * overall[row.pipeline]):
            out.append(Flag(row.pipeline, "hit_hard", row.group, row.value, row.n, row.removed))
    return out


def compare(
    batch: SampleBatch,
    pipelines: list[Pipeline],
    ctx: FilterContext | None = None,
    cache: ScoreCache | None = None,
    *,
    clusters: dict[str, int] | None = None,
    intended: dict[str, dict[str, float]] | None = None,
) -> Comparison:
    """Run every pipeline on the same batch and line up what each keeps, drops and why."""
    cache = cache if cache is not None else ScoreCache()
    pipelines = _unique_names(pipelines)
    results = [run_pipeline(p, batch, ctx, cache) for p in pipelines]
    frame = sample_frame(batch, clusters)
    for i, r in enumerate(results):
        frame[f"kept_{i}"] = r.kept

    summary = pd.DataFrame([
        {"pipeline": r.pipeline.name, "samples": r.n, "kept": r.n_kept, "dropped": r.n_dropped,
         "kept_share": r.n_kept / r.n if r.n else 0.0, "steps": len(r.steps)}
        for r in results
    ])
    steps = pd.DataFrame([
        {"pipeline": r.pipeline.name, "step": s.name, "in": s.n_in, "dropped": s.dropped, "out": s.n_out, "note": s.note or ""}
        for r in results for s in r.steps
    ], columns=["pipeline", "step", "in", "dropped", "out", "note"])
    reasons = pd.DataFrame([
        {"pipeline": r.pipeline.name, "step": s.name, "reason": reason, "count": count}
        for r in results for s in r.steps for reason, count in sorted(s.reasons.items(), key=lambda kv: -kv[1])
    ], columns=["pipeline", "step", "reason", "count"])

    dims = batch.dimensions
    by_condition = pd.concat([_group_shares(frame, d, results, d) for d in dims], ignore_index=True) if dims else \
        pd.DataFrame(columns=["pipeline", "group", "value", "n", "removed", "share_removed", "wiped_out"])
    by_cluster = _group_shares(frame, "cluster", results, "cluster") if clusters is not None else \
        pd.DataFrame(columns=["pipeline", "group", "value", "n", "removed", "share_removed", "wiped_out"])
    flags = _flags(by_condition, results) + _flags(by_cluster, results)
    distribution = _distribution(frame, dims, results, intended or {})
    return Comparison(batch, results, frame, summary, steps, reasons, by_condition, by_cluster, distribution, flags)


def _distribution(frame: pd.DataFrame, dims: list[str], results: list[PipelineResult],
                  intended: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Per dimension value: the intended share (the plan), the share generated, and the share
    remaining after each pipeline."""
    rows = []
    for d in dims:
        col = frame[d].astype(str)
        values = sorted(set(col.tolist()) | set(intended.get(d, {})))
        before = col.value_counts(normalize=True)
        after = []
        for i, r in enumerate(results):
            kept = col[frame[f"kept_{i}"].to_numpy()]
            after.append((r.pipeline.name, kept.value_counts(normalize=True), len(kept)))
        for v in values:
            row = {"dimension": d, "value": v, "intended": intended.get(d, {}).get(v, np.nan), "generated": float(before.get(v, 0.0))}
            for name, shares, n in after:
                row[name] = float(shares.get(v, 0.0)) if n else 0.0
            rows.append(row)
    return pd.DataFrame(rows)


def intended_distribution(store: Store, run_id: str) -> dict[str, dict[str, float]]:
    """Share of each dimension value among the run's planned items (what the recipe asked for)."""
    rows = store.query(
        """SELECT k.key, k.value, count(*) FROM (
               SELECT unnest(map_entries(p.condition)) AS k FROM plan_items p JOIN runs r ON r.plan_id = p.plan_id
               WHERE r.run_id = ? AND (r.item_limit IS NULL OR p.idx < r.item_limit))
           GROUP BY ALL""",
        [run_id],
    )
    totals: dict[str, int] = {}
    for dim, _, n in rows:
        totals[dim] = totals.get(dim, 0) + int(n)
    out: dict[str, dict[str, float]] = {}
    for dim, value, n in rows:
        out.setdefault(dim, {})[value] = int(n) / totals[dim]
    return out


# -- diversity --------------------------------------------------------------------------------------


def _subsample(idx: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    if len(idx) <= limit:
        return idx
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(idx, size=limit, replace=False))


def diversity_before_after(
    comparison: Comparison,
    vectors: np.ndarray | None = None,
    cache: ScoreCache | None = None,
    *,
    max_texts: int = MAX_DIVERSITY_TEXTS,
    self_bleu: bool = True,
) -> pd.DataFrame:
    """Explore's diversity metrics for all samples and for what each pipeline keeps.

    Sets larger than ``max_texts`` are measured on a fixed random subset of that size (column
    ``measured_on``); ``vectors`` (aligned with the batch) add the embedding metrics. Self-BLEU
    (sacrebleu on 100 texts) costs about a second per set: ``self_bleu=False`` leaves it out."""
    frame = comparison.frame
    labels = frame["cluster"].to_numpy() if "cluster" in frame else None
    texts = np.array(comparison.batch.texts, dtype=object)
    sets = [("before filtering", np.ones(len(texts), dtype=bool))] + [(r.pipeline.name, r.kept) for r in comparison.results]
    rows = []
    for name, mask in sets:
        idx = _subsample(np.flatnonzero(mask), max_texts)
        key = ("diversity", comparison.batch.fingerprint, hashlib.sha1(np.packbits(mask).tobytes()).hexdigest(),
               vectors is not None, labels is not None, max_texts, self_bleu)

        def compute(idx: np.ndarray = idx, mask: np.ndarray = mask) -> dict:
            m = metrics(texts[idx].tolist(), vectors[idx] if vectors is not None else None, None,
                        bleu_sample=100 if self_bleu else 0)
            if labels is not None:  # cluster stats on every kept sample, not the subset
                from services.explore.diversity import cluster_stats

                m.update(cluster_stats(labels[mask]))
            return m

        m = cache.memo(key, compute) if cache is not None else compute()
        rows.append({"set": name, "samples": int(mask.sum()), "measured_on": len(idx), **{k: v for k, v in m.items() if k != "n"}})
    return pd.DataFrame(rows)


# -- the map of a batch ---------------------------------------------------------------------------


def batch_items(batch: SampleBatch) -> tuple[ItemSet, list[str]]:
    """The batch's texts (edits included) as map items, empty ones left out, with notes saying so."""
    frame = pd.DataFrame({"id": batch.keys, "text": batch.texts, "source": f"run:{batch.run_id}", "run_id": batch.run_id})
    checked = usable(ItemSet(frame=frame, label=batch.run_id or ""))
    return checked.items, checked.notes


def build_batch_map(store: Store, embedder: Embedder, batch: SampleBatch, job: MapJob | None = None) -> MapData:
    """Embed (cache first), lay out (UMAP) and cluster the batch's texts, as Explore does for a run
    but on the latest texts: Explore maps the generated originals, the comparison filters the edits.
    The layout and clusters are Explore's (``finish_map``, the same defaults), so an unedited run hits
    the same cached embeddings, layout and clusters as Explore's map of it."""
    job = job or MapJob(key="inline")
    items, notes = batch_items(batch)
    texts, n = items.texts, len(items)
    label = f"embedding {n} texts with {embedder.name}"
    job.report("embedding", 0, n, label)
    vectors = embed_texts(store, embedder, texts, progress=lambda done, total: job.report("embedding", done, total, label))
    data = MapData(items=items, vectors=vectors, pca=pca_layout(vectors), model=embedder.name, notes=list(notes))
    if n < 3:
        data.notes.append(f"{n} text(s): too few for a map, clusters or most metrics (need at least 3).")
        return data
    return finish_map(store, data, [text_hash(t) for t in texts], MapRequest(), job)


def start_batch_map(jobs: MapJobs, store: Store, embedder: Embedder, batch: SampleBatch) -> MapJob:
    """Submit (or find) the background map of this batch; an edit changes the batch, so the key."""
    key = digest("batch-map", batch.fingerprint, embedder.name)
    return jobs.submit(key, lambda job: build_batch_map(store, embedder, batch, job))
