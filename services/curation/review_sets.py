"""Which samples a review pass walks through: a source (all, not reviewed yet, kept or dropped by a
pipeline of the comparison), then optionally one cluster of those. Positions index the comparison's batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from services.curation.compare import Comparison

ALL = "All samples"
NOT_REVIEWED = "Not reviewed yet"
DROPPED_BY = "Dropped by "
KEPT_BY = "Kept by "
NOISE = -1  # the label of samples no cluster claims (and of samples the map does not cover)


def review_sources(names: Sequence[str]) -> list[str]:
    """The sets a reviewer can pick from, in the order they are offered."""
    return [ALL, NOT_REVIEWED, *[f"{DROPPED_BY}{n}" for n in names], *[f"{KEPT_BY}{n}" for n in names]]


def review_set(comparison: Comparison, source: str, decisions: Mapping[str, str]) -> np.ndarray:
    """Batch positions (ascending) of the samples in ``source``, one of ``review_sources(comparison.names)``.
    ``decisions`` maps sample key to a stored review decision."""
    keys, names = comparison.batch.keys, comparison.names
    if source == ALL:
        return np.arange(len(keys))
    if source == NOT_REVIEWED:
        return np.flatnonzero(np.array([k not in decisions for k in keys], dtype=bool))
    for prefix, want_kept in ((DROPPED_BY, False), (KEPT_BY, True)):
        name = source.removeprefix(prefix)
        if source.startswith(prefix) and name in names:
            kept = comparison.results[names.index(name)].kept
            return np.flatnonzero(kept if want_kept else ~kept)
    raise ValueError(f"unknown review set {source!r}; expected one of {review_sources(names)}")


def sample_verdicts(comparison: Comparison, position: int) -> list[tuple[str, str]]:
    """(pipeline, 'kept' or 'dropped: why') for one sample, for every pipeline compared."""
    return [(r.pipeline.name, "kept" if r.kept[position] else f"dropped: {r.reason[position] or r.code[position]}")
            for r in comparison.results]


def clamp_position(position: int, n: int) -> int:
    """A reviewer's place in a set of ``n`` samples, kept inside it when the set shrinks."""
    return max(0, min(position, n - 1))


def cluster_labels(keys: Sequence[str], clusters: Mapping[str, int]) -> np.ndarray:
    """Each sample's cluster, aligned with ``keys``; NOISE where the map has none."""
    return np.array([clusters.get(k, NOISE) for k in keys], dtype=int)


def clusters_in(chosen: np.ndarray, labels: np.ndarray) -> list[int]:
    """The clusters the chosen samples fall in, ascending (noise first)."""
    return sorted(set(labels[chosen].tolist()))


def in_cluster(chosen: np.ndarray, labels: np.ndarray, cluster: int | None) -> list[int]:
    """The chosen positions that fall in ``cluster``, in order."""
    return [j for j in chosen.tolist() if labels[j] == cluster]
