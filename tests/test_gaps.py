"""Gap finders on planted structure: a collapsed cell, an ignored and an obeyed dimension,
near-duplicates across conditions, coverage of a reference set, and fill-the-gap recipes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.explore.cluster_keywords import cluster_summary, ctfidf_keywords, dominant_values, representatives
from services.explore.gaps import (
    GapError,
    condition_heatmap,
    coverage,
    fill_gap_recipe,
    near_duplicate_groups,
    probe_separability,
    save_gap_version,
)
from services.recipes.recipe import Recipe
from services.recipes.version_store import load_version, save_version


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def planted(seed: int = 0, per_cell: int = 20) -> tuple[pd.DataFrame, np.ndarray]:
    """topic (obeyed: moves the vector) x tone (ignored: no effect); cell (a, warm) collapsed."""
    rng = np.random.default_rng(seed)
    dim = 64
    centres = {t: rng.normal(size=dim) for t in ("a", "b", "c")}
    rows, vecs = [], []
    for topic, centre in centres.items():
        for tone in ("warm", "cold"):
            collapsed = topic == "a" and tone == "warm"
            base = centre + rng.normal(scale=1.0, size=dim)
            for i in range(per_cell):
                noise = rng.normal(scale=0.05 if collapsed else 1.0, size=dim)
                vecs.append((base if collapsed else centre) + noise)
                rows.append({"id": f"{topic}-{tone}-{i}", "text": f"text about {topic} number {i}", "run_id": "r1",
                             "topic": topic, "tone": tone})
    return pd.DataFrame(rows), _unit(np.array(vecs))


def test_planted_collapsed_cell_is_flagged_and_empty_cells_marked():
    frame, e = planted()
    cells = condition_heatmap(frame, e, "topic", "tone", values_b=["neutral"])
    flagged = cells[cells["collapsed"]]
    assert list(zip(flagged["topic"], flagged["tone"], strict=True)) == [("a", "warm")]
    empty = cells[cells["empty"]]
    assert set(empty["tone"]) == {"neutral"} and len(empty) == 3
    assert cells.loc[(cells.topic == "b") & (cells.tone == "cold"), "count"].item() == 20


def test_ignored_dimension_probes_at_chance_obeyed_one_well_above():
    frame, e = planted()
    frame["single"] = "only"
    probes = probe_separability(frame, e, ["topic", "tone", "single"]).set_index("dimension")
    assert probes.loc["topic", "accuracy"] > 0.95
    assert probes.loc["topic", "chance"] == pytest.approx(1 / 3)
    # tone: chance 0.5; the collapsed cell makes a little signal, still near chance
    assert probes.loc["tone", "accuracy"] < probes.loc["tone", "chance"] + 0.2
    assert probes.loc["single", "accuracy"] is None or np.isnan(probes.loc["single", "accuracy"])
    assert "one value" in probes.loc["single", "note"]


def test_near_duplicates_spanning_conditions():
    frame = pd.DataFrame({
        "id": list("abcde"), "text": ["same", "same!", "other", "alone", "other."], "run_id": ["r"] * 5,
        "tone": ["warm", "cold", "warm", "warm", "warm"],
    })
    e = _unit(np.array([[1, 0, 0], [0.99, 0.01, 0], [0, 1, 0], [0, 0, 1], [0, 0.999, 0.01]], dtype=np.float32))
    groups = near_duplicate_groups(frame, e, ["tone"], threshold=0.95)
    assert len(groups) == 2
    first = groups.iloc[0]
    assert first["spans_conditions"] and sorted(first["ids"]) == ["a", "b"]
    assert not groups.iloc[1]["spans_conditions"] and sorted(groups.iloc[1]["ids"]) == ["c", "e"]
    assert near_duplicate_groups(frame, np.eye(5, 3, dtype=np.float32)[:5], ["tone"]).empty


def test_coverage_counts_reference_points_without_synthetic_neighbours():
    syn = _unit(np.array([[1, 0, 0], [0.9, 0.1, 0]], dtype=np.float32))
    ref = _unit(np.array([[1, 0.05, 0], [0, 0, 1], [0, 1, 0]], dtype=np.float32))
    cov = coverage(syn, ref, radius=0.2)
    assert cov.n_uncovered == 2 and cov.uncovered.tolist() == [False, True, True]
    assert cov.uncovered_share == pytest.approx(2 / 3)
    assert coverage(np.zeros((0, 3), np.float32), ref).n_uncovered == 3


RECIPE = {
    "name": "reviews",
    "task": "Write a review.",
    "user_template": "A {{ tone }} review about {{ product }}.",
    "dimensions": [
        {"name": "tone", "values": ["warm", "cold", "neutral"]},
        {"name": "product", "values": ["phone", "laptop"]},
        {"name": "feature", "depends_on": "product", "values_by_parent": {"phone": ["battery"], "laptop": ["keyboard"]}},
    ],
}


def test_fill_gap_restrict_add_and_demos(store):
    parent = save_version(store, Recipe.parse(RECIPE))
    recipe = load_version(store, parent.recipe_hash)
    target = fill_gap_recipe(recipe, restrict={"tone": ["cold"], "product": ["phone"]})
    assert [v.text for v in target.dimension("tone").values] == ["cold"]
    assert list(target.dimension("feature").values_by_parent) == ["phone"]
    added = fill_gap_recipe(recipe, add_values={"tone": ["sarcastic", "warm"]})
    assert [v.text for v in added.dimension("tone").values] == ["warm", "cold", "neutral", "sarcastic"]
    with_demos = fill_gap_recipe(recipe, demos=[("A great phone.", {"tone": "warm"}), ("Meh.", {})])
    assert len(with_demos.demos.examples) == 2 and with_demos.demos.k == 2
    with pytest.raises(GapError):
        fill_gap_recipe(recipe, restrict={"colour": ["red"]})
    with pytest.raises(GapError):
        fill_gap_recipe(recipe, add_values={"feature": ["screen"]})
    saved = save_gap_version(store, parent.recipe_hash, target, note="fill gap: tone=cold, product=phone")
    assert saved.version == 2 and saved.parent_hash == parent.recipe_hash


def test_cluster_keywords_representatives_and_dominant_values():
    texts = ["pizza pasta italian", "pasta pizza oven", "sushi rice japan", "rice sushi fish", "noise words"]
    labels = np.array([0, 0, 1, 1, -1])
    kw = ctfidf_keywords(texts, labels, top=2)
    assert set(kw[0]) == {"pizza", "pasta"} and set(kw[1]) == {"sushi", "rice"}
    e = _unit(np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [1, 1]], dtype=np.float32))
    assert set(representatives(e, labels, 1, k=2)) == {2, 3}
    frame = pd.DataFrame({"text": texts, "cuisine": ["it", "it", "jp", "jp", "it"]})
    dom = dominant_values(frame, labels, 1, ["cuisine"]).iloc[0]
    assert dom["value"] == "jp" and dom["share_in_cluster"] == 1.0 and dom["lift"] == pytest.approx(2.5)
    summary = cluster_summary(texts, labels)
    assert list(summary["cluster"]) == ["0", "1", "noise"]
    assert ctfidf_keywords(["the a", "of the"], np.array([0, 0])) == {0: []}
