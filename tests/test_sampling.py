"""Sampling: grid, random, balanced, pairwise; exclusions, dependencies, seeds, enormous grids."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from services.recipes.recipe import Dimension, Recipe, RecipeError, Sampling
from services.recipes.sampling import Design, pairwise_cover, plan_size, sample_conditions


def recipe(dims, **sampling) -> Recipe:
    return Recipe(name="t", user_template="x", dimensions=dims, sampling=Sampling(**sampling))


def dims3():
    return [
        Dimension(name="label", values=["positive", "negative"]),
        Dimension(name="subtopic", depends_on="label", values_by_parent={"positive": ["food", "staff"], "negative": ["wait"]}),
        Dimension(name="style", values=["calm", "angry rant", "poem"]),
    ]


def test_grid_counts_each_cell_per_cell_times_and_respects_dependencies():
    r = recipe(dims3(), strategy="grid", per_cell=2)
    conds = sample_conditions(r)
    counts = Counter(tuple(sorted(c.items())) for c in conds)
    assert plan_size(r).cells == 9  # (2 + 1) subtopics-with-label x 3 styles
    assert len(counts) == 9 and set(counts.values()) == {2}
    for c in conds:
        assert (c["label"] == "positive") == (c["subtopic"] in {"food", "staff"})


def test_exclusion_rules_remove_cells():
    r = recipe(dims3(), strategy="grid", exclusions=['label == "positive" and style == "angry rant"'])
    conds = sample_conditions(r)
    assert len(conds) == 7
    assert not any(c["label"] == "positive" and c["style"] == "angry rant" for c in conds)
    assert plan_size(r).excluded_cells == 2


def test_random_follows_weights_within_tolerance():
    dims = [Dimension(name="a", values=[{"x": 3}, {"y": 1}]), Dimension(name="b", values=["p", "q"])]
    conds = sample_conditions(recipe(dims, strategy="random", n_items=20_000, seed=5))
    share = sum(c["a"] == "x" for c in conds) / len(conds)
    assert abs(share - 0.75) < 0.015
    assert abs(sum(c["b"] == "p" for c in conds) / len(conds) - 0.5) < 0.015


def test_same_seed_same_plan_and_different_seed_differs():
    r1 = recipe(dims3(), strategy="random", n_items=50, seed=1)
    assert sample_conditions(r1) == sample_conditions(r1)
    assert sample_conditions(r1) != sample_conditions(recipe(dims3(), strategy="random", n_items=50, seed=2))


def test_balanced_every_cell_equally_often():
    conds = sample_conditions(recipe(dims3(), strategy="balanced", n_items=40))
    counts = Counter(tuple(sorted(c.items())) for c in conds)
    assert len(conds) == 40 and len(counts) == 9
    assert max(counts.values()) - min(counts.values()) <= 1


def test_pairwise_covers_every_pair_with_far_fewer_items():
    dims = [Dimension(name=f"d{i}", values=[f"v{j}" for j in range(5)]) for i in range(5)]
    r = recipe(dims, strategy="pairwise")
    conds = sample_conditions(r)
    assert len(conds) < 60 < plan_size(r).cells  # grid: 3125
    for a, b in itertools.combinations(range(5), 2):
        seen = {(c[f"d{a}"], c[f"d{b}"]) for c in conds}
        assert len(seen) == 25, (a, b)


def test_pairwise_with_dependency_and_exclusion():
    r = recipe(dims3() + [Dimension(name="length", values=["50", "100"])], strategy="pairwise",
               exclusions=['label == "negative" and style == "poem"'])
    conds = sample_conditions(r)
    assert not any(c["label"] == "negative" and c["style"] == "poem" for c in conds)
    for c in conds:
        assert (c["label"] == "positive") == (c["subtopic"] in {"food", "staff"})
    pairs = {(c["subtopic"], c["style"]) for c in conds}
    expected = {(s, style) for s in ["food", "staff", "wait"] for style in ["calm", "angry rant", "poem"]} - {("wait", "poem")}
    assert expected <= pairs
    assert {(c["style"], c["length"]) for c in conds} == set(itertools.product(["calm", "angry rant", "poem"], ["50", "100"]))


def test_enormous_grid_is_counted_not_materialised():
    dims = [Dimension(name=f"d{i}", values=[str(j) for j in range(100)]) for i in range(5)]
    size = plan_size(recipe(dims, strategy="grid"))
    assert size.cells == 10**10 and not size.materialisable and "too many" in size.note
    with pytest.raises(RecipeError, match="too many"):
        sample_conditions(recipe(dims, strategy="grid"))
    # ...but it can be sampled from, uniformly or by weight.
    assert len(sample_conditions(recipe(dims, strategy="balanced", n_items=30))) == 30
    assert len(sample_conditions(recipe(dims, strategy="random", n_items=30))) == 30


def test_uniform_cell_draw_is_uniform_over_dependent_cells():
    d = Design(recipe(dims3(), strategy="random"))
    import random

    rng = random.Random(0)
    counts = Counter(d.draw_uniform_cell(rng)["subtopic"] for _ in range(9000))
    for v in ("food", "staff", "wait"):
        assert abs(counts[v] / 9000 - 1 / 3) < 0.03


def test_random_words_dimension_draws_k_distinct_words():
    dims = [Dimension(name="w", kind="random_words", words=["a", "b", "c", "d", "e"], k=3), Dimension(name="x", values=["1"])]
    conds = sample_conditions(recipe(dims, strategy="random", n_items=100))
    for c in conds:
        words = c["w"].split(", ")
        assert len(set(words)) == 3 and set(words) <= set("abcde")
    assert len({c["w"] for c in conds}) > 10


def test_preview_prefix_equals_full_plan():
    r = Recipe(name="t", user_template="x", dimensions=dims3() + [Dimension(name="w", kind="random_words", words=list("abcdef"), k=2)],
               sampling=Sampling(strategy="random", n_items=200, seed=3))
    assert sample_conditions(r, limit=10) == sample_conditions(r)[:10]


def test_exclusions_that_forbid_everything_are_reported():
    with pytest.raises(RecipeError, match="excluded|forbid"):
        sample_conditions(recipe(dims3(), strategy="random", n_items=5, exclusions=["true"]))
    with pytest.raises(RecipeError, match="excluded"):
        sample_conditions(recipe(dims3(), strategy="grid", exclusions=['style != ""']))


def test_exclusion_rule_naming_unknown_dimension():
    with pytest.raises(RecipeError, match="lable is not a dimension"):
        sample_conditions(recipe(dims3(), exclusions=['lable == "positive"']))
    with pytest.raises(RecipeError, match="exclusion rule 1"):
        sample_conditions(recipe(dims3(), exclusions=['label == ']))


def test_pairwise_cover_single_dimension_is_its_values():
    d = Design(recipe([Dimension(name="a", values=["x", "y"])], strategy="pairwise"))
    import random

    assert pairwise_cover(d, random.Random(0)) == [{"a": "x"}, {"a": "y"}]
