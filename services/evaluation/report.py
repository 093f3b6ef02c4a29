"""The comparison report: two or more sets (runs, or runs and a dataset) side by side.

``build_report`` takes a finished map of the union of the sets (one embedding space, one
projection, one clustering: the same map for every set) and computes every section; each section
that cannot be computed says why in a sentence and the others still are. Nothing here calls a
model: the LLM judge is a separate, paid action (``services.evaluation.judging``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.core.store import Store
from services.curation.echo_steps import echo_scores, sample_prompts
from services.curation.label_noise import ProbeError, label_issues, probe
from services.evaluation.cost import run_costs
from services.evaluation.coverage import Coverage, CoverageSet, coverage
from services.evaluation.intervals import Intervals, SetInput, compare_table, diversity_intervals
from services.evaluation.reference import Reference
from services.evaluation.tstr import Curve, train_synthetic_test_real
from services.explore.items import NONE, ItemSet

ECHO_AT = 0.5
EXAMPLE_CHARS = 240


@dataclass
class Report:
    sets: list[str]
    baseline: str
    diversity: Intervals
    diversity_table: pd.DataFrame
    coverage: Coverage
    cost: pd.DataFrame
    faithfulness: pd.DataFrame          # set, dimension, n, accuracy, chance, macro_f1, folds
    worst_cells: pd.DataFrame           # set, dimension, value, n, recall, example
    label_queue: pd.DataFrame           # set, id, requested, predicted, confidence, text (least confident first)
    echo: pd.DataFrame                  # set, scored, echoing, share
    echo_examples: pd.DataFrame         # set, id, echo, text
    tstr: Curve | None
    label_dimension: str | None
    dimensions: list[str]
    notes: dict[str, list[str]] = field(default_factory=dict)


def set_masks(items: ItemSet) -> dict[str, np.ndarray]:
    """One boolean mask per set: each run by its unique name, each dataset by its name."""
    f = items.frame
    out: dict[str, np.ndarray] = {}
    for rid in dict.fromkeys(f["run_id"].dropna().tolist()):
        out[items.run_names.get(rid, rid)] = (f["run_id"] == rid).to_numpy()
    for src in dict.fromkeys(f.loc[f["run_id"].isna(), "source"].tolist()):
        out[str(src).split(":", 1)[-1]] = ((f["source"] == src) & f["run_id"].isna()).to_numpy()
    return out


def shared_dimensions(items: ItemSet, masks: dict[str, np.ndarray]) -> list[str]:
    """Dimensions (frame columns) that at least one set has values for."""
    f = items.frame
    return [d for d in items.dimensions if any((f.loc[m, d] != NONE).any() for m in masks.values())]


def _clip(text: str) -> str:
    t = " ".join(str(text).split())
    return t if len(t) <= EXAMPLE_CHARS else t[: EXAMPLE_CHARS - 1] + "…"


def build_report(store: Store, items: ItemSet, vectors: np.ndarray, clusters: np.ndarray | None, *,
                 label_dimension: str | None = None, reference: Reference | None = None,
                 reference_vectors: np.ndarray | None = None, draws: int = 60, seed: int = 0) -> Report:
    """Every offline section of the report (see the module doc). ``label_dimension`` is a frame column."""
    notes: dict[str, list[str]] = {k: [] for k in ("diversity", "coverage", "cost", "faithfulness", "labels", "echo", "tstr")}
    masks = set_masks(items)
    names = list(masks)
    f = items.frame
    dims = shared_dimensions(items, masks)
    label_dim = label_dimension if label_dimension in dims else None
    if label_dimension and label_dim is None:
        notes["labels"].append(f"No set has a {items.name(label_dimension)!r} condition: label sections are empty.")
    elif not label_dimension:
        notes["labels"].append("No label dimension chosen: the label-noise and train-on-synthetic sections need one.")

    div = diversity_intervals({k: SetInput(f.loc[m, "text"].tolist(), vectors[m], None if clusters is None else clusters[m])
                               for k, m in masks.items()}, draws=draws, seed=seed)
    notes["diversity"] += div.notes
    if clusters is None:
        notes["diversity"].append("No clustering on this map yet: the cluster figures are left out.")

    cov = coverage({k: CoverageSet(f.loc[m, dims].rename(columns=items.name).reset_index(drop=True), vectors[m]) for k, m in masks.items()},
                   [items.name(d) for d in dims])
    run_ids = [r for r in dict.fromkeys(f["run_id"].dropna().tolist())]
    cost = run_costs(store, run_ids, items.run_names) if run_ids else pd.DataFrame()
    if len(run_ids) < len(names):
        notes["cost"].append("Datasets have no generation cost: only runs are listed.")

    faith, worst, queue = [], [], []
    for k, m in masks.items():
        idx = np.flatnonzero(m)
        for d in dims:
            vals = f.loc[m, d].to_numpy()
            has = vals != NONE
            if has.sum() == 0 or len(set(vals[has].tolist())) < 2:
                continue
            sub = idx[has]
            try:
                res = probe(vectors[sub], vals[has], dimension=items.name(d), seed=seed)
            except ProbeError as exc:
                notes["faithfulness"].append(f"{k}: {exc}")
                continue
            notes["faithfulness"] += [f"{k}: {n}" for n in res.notes]
            faith.append({"set": k, "dimension": items.name(d), "n": len(res.labels), "accuracy": res.accuracy,
                          "chance": res.chance, "macro_f1": res.macro_f1, "folds": res.folds})
            in_probe = sub[np.isin(vals[has].astype(str), res.classes)]
            conf = res.self_confidence()
            for row in res.per_value().head(3).itertuples():
                ci = res.classes.index(row.value)
                wrong = np.flatnonzero((res.labels == ci) & (res.predicted != ci))
                ex = _clip(f.at[int(in_probe[wrong[np.argmin(conf[wrong])]]), "text"]) if len(wrong) else ""
                worst.append({"set": k, "dimension": items.name(d), "value": row.value, "n": row.n, "recall": row.recall, "example": ex})
            if d == label_dim:
                for j in label_issues(res):
                    i = int(in_probe[j])
                    queue.append({"set": k, "id": f.at[i, "id"], "requested": res.classes[res.labels[j]],
                                  "predicted": res.classes[res.predicted[j]], "confidence": float(conf[j]), "text": _clip(f.at[i, "text"])})
        if not any(r["set"] == k for r in faith):
            notes["faithfulness"].append(f"{k}: no condition dimension with two or more values, so no classifier.")
    faithfulness = pd.DataFrame(faith, columns=["set", "dimension", "n", "accuracy", "chance", "macro_f1", "folds"])
    worst_cells = pd.DataFrame(worst, columns=["set", "dimension", "value", "n", "recall", "example"]).sort_values(["recall", "set"])
    label_queue = pd.DataFrame(queue, columns=["set", "id", "requested", "predicted", "confidence", "text"]).sort_values("confidence")

    echo_rows, echo_ex = [], []
    for k, m in masks.items():
        keys = f.loc[m & f["run_id"].notna().to_numpy(), "id"].tolist()
        if not keys:
            continue
        prompts = sample_prompts(store, keys)
        texts = f.loc[f["id"].isin(keys), "text"].tolist()
        sc = echo_scores(texts, [prompts.get(i, "") for i in keys])
        scored = ~np.isnan(sc)
        hit = np.nan_to_num(sc, nan=0.0) >= ECHO_AT
        echo_rows.append({"set": k, "scored": int(scored.sum()), "echoing": int(hit.sum()),
                          "share": float(hit.sum() / scored.sum()) if scored.any() else None})
        for i in np.argsort(-np.nan_to_num(sc, nan=-1))[:3]:
            if hit[i]:
                echo_ex.append({"set": k, "id": keys[i], "echo": float(sc[i]), "text": _clip(texts[i])})
    notes["echo"].append(f"Echoing: at least {ECHO_AT:.0%} of a text's 4-word phrases come from its own prompt "
                         "(the 'prompt echo' filter step drops them).")

    curve = None
    if label_dim and reference is not None:
        if not reference.texts:
            notes["tstr"] += reference.notes or ["The reference dataset has no labelled rows."]
        elif reference_vectors is None or len(reference_vectors) != len(reference.texts):
            notes["tstr"].append("The reference texts have no embeddings yet.")
        else:
            runs = {}
            for k, m in masks.items():
                if not f.loc[m, "run_id"].notna().any():
                    continue  # a dataset in the comparison is not trained on
                lab = f.loc[m, label_dim].to_numpy()
                ok = lab != NONE
                runs[k] = (vectors[m][ok], lab[ok].tolist())
            curve = train_synthetic_test_real(runs, reference_vectors, reference.labels, seed=seed)
            notes["tstr"] += reference.notes + curve.notes
    elif label_dim:
        notes["tstr"].append("No reference dataset chosen.")
    return Report(names, names[0] if names else "", div, compare_table(div, names[0]) if names else pd.DataFrame(), cov, cost,
                  faithfulness, worst_cells, label_queue,
                  pd.DataFrame(echo_rows, columns=["set", "scored", "echoing", "share"]),
                  pd.DataFrame(echo_ex, columns=["set", "id", "echo", "text"]), curve, label_dim and items.name(label_dim), dims, notes)


def set_frames(items: ItemSet, dims: list[str]) -> dict[str, pd.DataFrame]:
    """Per set: id, text and its dimensions under their users' names (for the judge's plan)."""
    f = items.frame
    return {k: f.loc[m, ["id", "text", *dims]].rename(columns=items.name).reset_index(drop=True) for k, m in set_masks(items).items()}


def reference_vectors(store: Store, embedder, reference: Reference, max_embed: int = 300) -> tuple[np.ndarray | None, str | None]:
    """The reference texts' embeddings through the cache, or (None, why) when more than
    ``max_embed`` would have to be embedded in the page (map the dataset on Explore to embed it)."""
    from services.curation.dedup_steps import cached_vectors

    if not reference.texts:
        return None, None
    vectors, missing = cached_vectors(store, embedder, reference.texts, max_embed)
    if vectors is None:
        return None, f"{missing} reference texts have no cached embedding: map the dataset on Explore once to embed them."
    return vectors, None
