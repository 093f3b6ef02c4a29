"""Train on synthetic, test on real: a classifier per run, tested on a real labelled set.

For each run, a logistic regression (the probe's estimator) is trained on the run's sample
embeddings with their requested label and tested on the reference texts' embeddings, at a
growing number of synthetic samples (a learning curve; each size averaged over ``repeats``
stratified subsets). A run is never tested on its own samples: the test set is the reference
only. Reference rows whose label no run uses are left out of every run's test (said in notes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.curation.label_noise import make_classifier


@dataclass
class Curve:
    """Long table: run, n_train, accuracy, macro_f1 (means over repeats); notes in words."""

    table: pd.DataFrame
    test_size: int
    notes: list[str] = field(default_factory=list)


def curve_sizes(n: int, start: int = 10) -> list[int]:
    """Roughly doubling sizes from ``start`` to n (n itself last)."""
    sizes, s = [], start
    while s < n:
        sizes.append(s)
        s *= 2
    return [*sizes, n]


def _subset(y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A stratified random subset of ``size`` indices with at least one of every class."""
    classes = np.unique(y)
    first = np.array([rng.choice(np.flatnonzero(y == c)) for c in classes])
    rest = np.setdiff1d(np.arange(len(y)), first)
    extra = rng.choice(rest, size=max(0, size - len(first)), replace=False) if size > len(first) else np.zeros(0, int)
    return np.concatenate([first, extra]).astype(np.int64)


def train_synthetic_test_real(runs: dict[str, tuple[np.ndarray, list[str]]], test_vectors: np.ndarray, test_labels: list[str],
                              *, repeats: int = 3, seed: int = 0) -> Curve:
    """``runs``: name -> (sample vectors, requested labels). See the module doc."""
    from sklearn.metrics import accuracy_score, f1_score

    notes: list[str] = []
    test_y = np.asarray(test_labels, dtype=object)
    used = set().union(*[set(map(str, labels)) for _, labels in runs.values()]) if runs else set()
    unused = sorted(set(test_y.tolist()) - used)
    if unused:
        notes.append(f"reference labels no run uses were left out of the test: {', '.join(unused)} "
                     f"({int(np.isin(test_y, unused).sum())} rows).")
    keep = np.isin(test_y, sorted(used))
    tx, ty = np.asarray(test_vectors)[keep], test_y[keep]
    rows = []
    if not len(ty):
        notes.append("no reference row has a label the runs use: nothing to test on.")
        return Curve(pd.DataFrame(columns=["run", "n_train", "accuracy", "macro_f1"]), 0, notes)
    for name, (x, labels) in runs.items():
        y = np.asarray([str(v) for v in labels], dtype=object)
        if len(set(y.tolist())) < 2:
            notes.append(f"{name}: its samples ask for fewer than two labels, so no classifier can be trained.")
            continue
        missing = sorted(set(ty.tolist()) - set(y.tolist()))
        if missing:
            notes.append(f"{name}: never asked for {', '.join(missing)}; those reference rows count as errors for it.")
        rng = np.random.default_rng(seed)
        for size in curve_sizes(len(y), start=max(10, len(set(y.tolist())))):
            accs, f1s = [], []
            for _ in range(1 if size == len(y) else repeats):
                idx = _subset(y, size, rng)
                model = make_classifier(seed).fit(np.asarray(x)[idx], y[idx])
                pred = model.predict(tx)
                accs.append(accuracy_score(ty, pred))
                f1s.append(f1_score(ty, pred, average="macro"))
            rows.append({"run": name, "n_train": size, "accuracy": float(np.mean(accs)), "macro_f1": float(np.mean(f1s))})
    return Curve(pd.DataFrame(rows), int(len(ty)), notes)
