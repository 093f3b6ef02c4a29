"""Coverage per set: each condition value's share, empty and collapsed cells, near-duplicates.

A cell is one value of one dimension, or one pair of values of two dimensions. A cell is *empty*
in a set when another compared set fills it and this one does not (cells no set fills are not
counted: the recipe may make them impossible). A cell is *collapsed* when its texts are nearly
alike: mean pairwise cosine of their embeddings at or above ``COLLAPSE_COSINE`` (3+ texts).
Near-duplicates: texts with another text of the same set at cosine >= ``NEAR_DUP_COSINE``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from services.curation.dedup_steps import cosine_pairs
from services.explore.diversity import mean_pairwise_cosine
from services.explore.items import NONE

COLLAPSE_COSINE = 0.85
NEAR_DUP_COSINE = 0.95
MAX_PAIR_VALUES = 12  # pairs of dimensions with more values than this each are not gridded


@dataclass
class CoverageSet:
    frame: pd.DataFrame          # one row per text, a column per dimension
    vectors: np.ndarray | None


@dataclass
class Coverage:
    shares: pd.DataFrame         # set, dimension, value, n, share
    summary: pd.DataFrame        # set, texts, cells filled, empty cells, collapsed cells, near-duplicates
    empty: pd.DataFrame          # set, cell, filled by
    collapsed: pd.DataFrame      # set, cell, n, mean cosine
    notes: list[str] = field(default_factory=list)


def _cells(frame: pd.DataFrame, dims: list[str]) -> dict[str, np.ndarray]:
    """cell label -> row mask, for single values and small pairs of dimensions."""
    out: dict[str, np.ndarray] = {}
    for d in dims:
        col = frame[d].astype(str).to_numpy()
        for v in sorted(set(col.tolist()) - {NONE}):
            out[f"{d}={v}"] = col == v
    for a, b in combinations(dims, 2):
        if frame[a].nunique() > MAX_PAIR_VALUES or frame[b].nunique() > MAX_PAIR_VALUES:
            continue
        ca, cb = frame[a].astype(str).to_numpy(), frame[b].astype(str).to_numpy()
        for va, vb in sorted(set(zip(ca.tolist(), cb.tolist(), strict=True))):
            if NONE not in (va, vb):
                out[f"{a}={va}, {b}={vb}"] = (ca == va) & (cb == vb)
    return out


def coverage(sets: dict[str, CoverageSet], dimensions: list[str]) -> Coverage:
    """See the module doc; ``dimensions`` are the frame columns to measure (the names shown)."""
    shares, summary, empty, collapsed = [], [], [], []
    own = {k: [d for d in dimensions if d in s.frame and (s.frame[d].astype(str) != NONE).any()] for k, s in sets.items()}
    cells = {k: _cells(s.frame, own[k]) for k, s in sets.items()}
    everywhere = {c for cs in cells.values() for c in cs}
    for k, s in sets.items():
        n = len(s.frame)
        for d in dimensions:
            if d not in s.frame:
                continue
            for v, c in s.frame[d].astype(str).value_counts().sort_index().items():
                if v == NONE:
                    continue
                shares.append({"set": k, "dimension": d, "value": v, "n": int(c), "share": c / n if n else 0.0})
        mine = cells[k]
        # Only cells of dimensions this set asks for can be empty in it (a plain run has no subtopic).
        could = {c for c in everywhere if all(part.split("=", 1)[0] in own[k] for part in c.split(", "))}
        for c in sorted(could - set(mine)):
            empty.append({"set": k, "cell": c, "filled by": ", ".join(o for o in sets if o != k and c in cells[o])})
        n_collapsed = 0
        if s.vectors is not None and len(s.vectors) == n:
            for c, mask in mine.items():
                if mask.sum() >= 3:
                    cos = mean_pairwise_cosine(s.vectors[mask])
                    if cos is not None and cos >= COLLAPSE_COSINE:
                        n_collapsed += 1
                        collapsed.append({"set": k, "cell": c, "n": int(mask.sum()), "mean cosine": round(cos, 3)})
            pi, pj, _ = cosine_pairs(s.vectors, NEAR_DUP_COSINE)
            dup = len(np.unique(np.concatenate([pi, pj]))) if len(pi) else 0
        else:
            dup = None
        summary.append({"set": k, "texts": n, "cells filled": len(mine), "empty cells": len(could - set(mine)),
                        "collapsed cells": n_collapsed if s.vectors is not None else None,
                        "near-duplicate texts": dup})
    notes = [f"Cells are single values and pairs of values (dimensions of at most {MAX_PAIR_VALUES} values); empty: filled "
             f"by another set only; collapsed: mean cosine ≥ {COLLAPSE_COSINE}; near-duplicates: cosine ≥ {NEAR_DUP_COSINE}."]
    if not dimensions:
        notes.append("No condition dimension is shared by the sets: coverage counts texts and near-duplicates only.")
    return Coverage(pd.DataFrame(shares), pd.DataFrame(summary), pd.DataFrame(empty, columns=["set", "cell", "filled by"]),
                    pd.DataFrame(collapsed, columns=["set", "cell", "n", "mean cosine"]), notes)
