"""Which samples a review pass walks through: sources, the not-reviewed set, per-pipeline sets, clusters."""

from __future__ import annotations

import numpy as np
import pytest

from services.curation.compare import compare
from services.curation.pipeline import FilterContext, Pipeline, load_batch
from services.curation.review_sets import (
    ALL,
    NOISE,
    NOT_REVIEWED,
    clamp_position,
    cluster_labels,
    clusters_in,
    in_cluster,
    review_set,
    review_sources,
    sample_verdicts,
)
from services.curation.review_store import review_decisions, set_review
from tests.explore_data import insert_run

A = Pipeline.parse({"name": "A", "steps": [{"kind": "refusal"}, {"kind": "exact_dedup"}]})
B = Pipeline.parse({"name": "B", "steps": [{"kind": "length", "min": 5}, {"kind": "exact_dedup"}]})
CALM, REFUSALS, JOY = list(range(12)), list(range(12, 18)), list(range(18, 24))


@pytest.fixture
def comparison(store):
    """12 distinct calm stories, 6 refusals (A drops them), 6 identical two-word texts (B drops them
    all as too short, A keeps the first as the exact duplicates' representative)."""
    samples = [(f"A calm story about rain number {i} with a long enough body of words.", {"mood": "calm"}) for i in range(12)]
    samples += [(f"As an AI language model, I cannot write story {i}.", {"mood": "angry"}) for i in range(6)]
    samples += [("Short joy.", {"mood": "happy"})] * 6
    insert_run(store, "r1", samples)
    return compare(load_batch(store, "r1"), [A, B], FilterContext(store=store))


def test_sources_list_every_pipeline_both_ways():
    assert review_sources(["A", "B"]) == [ALL, NOT_REVIEWED, "Dropped by A", "Dropped by B", "Kept by A", "Kept by B"]
    assert review_sources([]) == [ALL, NOT_REVIEWED]


def test_sets_per_pipeline_follow_its_verdicts(comparison):
    assert review_set(comparison, ALL, {}).tolist() == list(range(24))
    assert review_set(comparison, "Dropped by A", {}).tolist() == REFUSALS + JOY[1:]
    assert review_set(comparison, "Kept by A", {}).tolist() == CALM + JOY[:1]
    assert review_set(comparison, "Dropped by B", {}).tolist() == JOY
    assert review_set(comparison, "Kept by B", {}).tolist() == CALM + REFUSALS
    # Kept and dropped by one pipeline split the batch.
    for name in comparison.names:
        kept, dropped = review_set(comparison, f"Kept by {name}", {}), review_set(comparison, f"Dropped by {name}", {})
        assert sorted([*kept.tolist(), *dropped.tolist()]) == list(range(24))


def test_not_reviewed_leaves_out_stored_decisions(store, comparison):
    keys = comparison.batch.keys
    assert review_set(comparison, NOT_REVIEWED, review_decisions(store, keys)).tolist() == list(range(24))
    set_review(store, [keys[0], keys[5]], "keep")
    set_review(store, [keys[12]], "drop")
    left = review_set(comparison, NOT_REVIEWED, review_decisions(store, keys)).tolist()
    assert left == [j for j in range(24) if j not in (0, 5, 12)]


def test_unknown_sets_are_refused(comparison):
    with pytest.raises(ValueError, match="unknown review set 'Dropped by C'"):
        review_set(comparison, "Dropped by C", {})
    with pytest.raises(ValueError, match="unknown review set"):
        review_set(comparison, "Everything", {})


def test_duplicate_pipeline_names_get_their_own_sets(store, comparison):
    # Two pipelines called A: the comparison renames the second, and its sets follow its verdicts.
    strict = Pipeline.parse({"name": "A", "steps": [{"kind": "length", "min": 5}]})
    c = compare(comparison.batch, [A, strict], FilterContext(store=store))
    assert c.names == ["A", "A (2)"]
    assert "Dropped by A (2)" in review_sources(c.names)
    assert review_set(c, "Dropped by A (2)", {}).tolist() == JOY
    assert review_set(c, "Dropped by A", {}).tolist() == REFUSALS + JOY[1:]


def test_verdicts_name_each_pipeline_and_why(comparison):
    calm = sample_verdicts(comparison, 0)
    assert calm == [("A", "kept"), ("B", "kept")]
    refusal = dict(sample_verdicts(comparison, 12))
    assert refusal["B"] == "kept"
    assert refusal["A"].startswith("dropped: ") and "refusal" in refusal["A"].lower()
    joy = dict(sample_verdicts(comparison, 20))
    assert joy["A"].startswith("dropped: ") and joy["B"].startswith("dropped: ")
    assert joy["A"] != joy["B"]  # a duplicate for A, too short for B


def test_position_stays_inside_a_shrinking_set():
    assert clamp_position(0, 5) == 0
    assert clamp_position(3, 5) == 3
    assert clamp_position(9, 5) == 4  # the set shrank below the old place: its last sample
    assert clamp_position(-1, 5) == 0


def test_clusters_of_the_chosen_samples(comparison):
    keys = comparison.batch.keys
    # The map covers all but the last sample; 0 and 1 are clusters, the refusals are noise.
    clusters = {k: (0 if j < 12 else NOISE if j < 18 else 1) for j, k in enumerate(keys[:-1])}
    labels = cluster_labels(keys, clusters)
    assert labels.tolist() == [0] * 12 + [NOISE] * 6 + [1] * 5 + [NOISE]
    dropped_by_b = review_set(comparison, "Dropped by B", {})
    assert clusters_in(dropped_by_b, labels) == [NOISE, 1]
    assert in_cluster(dropped_by_b, labels, 1) == JOY[:-1]
    assert in_cluster(dropped_by_b, labels, NOISE) == JOY[-1:]
    assert in_cluster(dropped_by_b, labels, 0) == []
    assert clusters_in(review_set(comparison, ALL, {}), labels) == [NOISE, 0, 1]
    empty = np.array([], dtype=int)
    assert clusters_in(empty, labels) == [] and in_cluster(empty, labels, None) == []
