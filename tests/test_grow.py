"""Grow toward a target, the pure part: target shares, distance, the allocation rule, conditions."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from services.evaluation.grow import (
    GrowError,
    allocate,
    draw_condition,
    make_target,
    parse_shares,
    plan_conditions,
    total_variation,
)
from services.recipes.recipe import Recipe
from services.recipes.sampling import Design


def reviews() -> Recipe:
    """label -> subtopic (dependent), cuisine, one exclusion rule, and a random-words dimension."""
    return Recipe.parse({
        "name": "grow-reviews", "task": "t", "user_template": "{{ label }} {{ subtopic }} {{ cuisine }} {{ words }}",
        "dimensions": [
            {"name": "label", "values": ["positive", "negative"]},
            {"name": "subtopic", "depends_on": "label",
             "values_by_parent": {"positive": ["staff", "portions"], "negative": ["wait", "prices", "noise"]}},
            {"name": "cuisine", "values": ["Thai", "Italian", {"text": "Japanese", "weight": 3}]},
            {"name": "words", "kind": "random_words", "words": ["a", "b", "c", "d"], "k": 2},
        ],
        "sampling": {"strategy": "random", "n_items": 10, "seed": 3,
                     "exclusions": ['cuisine == "Japanese" and subtopic == "portions"']},
    })


def test_the_default_target_is_uniform_over_possible_cells_and_never_names_an_impossible_one():
    t = make_target(reviews())
    assert t.dimensions == ("label", "subtopic", "cuisine")
    # 5 (label, subtopic) pairs x 3 cuisines, less the excluded (positive, portions, Japanese)
    assert len(t.shares) == 14
    assert ("positive", "portions", "Japanese") not in t.shares
    assert ("negative", "staff", "Thai") not in t.shares  # staff belongs to positive only
    assert all(q == pytest.approx(1 / 14) for q in t.shares.values())
    assert t.impossible == 2 * 5 * 3 - 14
    assert any("cannot be produced" in n for n in t.notes)


def test_shares_per_value_give_exact_marginals_spread_evenly_within():
    t = make_target(reviews(), ["cuisine"], {"label": {"positive": 0.8, "negative": 0.2}})
    assert t.dimensions == ("label", "cuisine")
    assert sum(t.shares.values()) == pytest.approx(1.0)
    assert sum(q for c, q in t.shares.items() if c[0] == "positive") == pytest.approx(0.8)
    assert t.shares[("negative", "Thai")] == pytest.approx(0.2 / 3)


@pytest.mark.parametrize(("dims", "shares", "words"), [
    (["flavour"], None, "'flavour', which is not one of its dimensions"),
    (["words"], None, "'words', which is a random_words dimension"),
    (None, {"label": {"positive": 0.5, "neutral": 0.5}}, "'neutral', which 'label' does not have (its values: positive, negative)"),
    (None, {"label": {"positive": 0.6, "negative": 0.3}}, "sum to 0.9, not 1 (positive 0.6, negative 0.3)"),
    (None, {"label": {"positive": 1.5, "negative": -0.5}}, "numbers of at least 0: negative=-0.5"),
])
def test_bad_targets_say_what_and_where(dims, shares, words):
    with pytest.raises(GrowError) as exc:
        make_target(reviews(), dims, shares)
    assert words in str(exc.value)


def test_a_recipe_without_categorical_dimensions_has_no_cells():
    r = Recipe.parse({"name": "plain", "task": "t", "user_template": "{{ w }}",
                      "dimensions": [{"name": "w", "kind": "random_words", "words": ["x", "y"], "k": 1}]})
    with pytest.raises(GrowError, match="no categorical dimension"):
        make_target(r)


def test_total_variation():
    target = {("a",): 0.5, ("b",): 0.5}
    assert total_variation({("a",): 5, ("b",): 5}, target) == 0
    assert total_variation({("a",): 10}, target) == pytest.approx(0.5)
    assert total_variation({("c",): 4}, target) == pytest.approx(1.0)  # off-target mass
    assert total_variation({}, target) is None


def test_allocation_fills_the_largest_deficit_first_and_lands_on_the_target():
    target = {("a",): 0.5, ("b",): 0.25, ("c",): 0.25}
    counts = Counter({("a",): 2, ("b",): 6})
    picks = allocate(target, counts, 8)
    assert len(picks) == 8
    assert picks[0] == ("a",)  # 0.5 * 16 - 2 = 6 missing: the largest deficit
    after = counts + Counter(picks)
    assert Counter(picks)[("b",)] == 0  # b is already over its share
    assert total_variation(after, target) == pytest.approx(0.125)


def test_collapsed_and_unfaithful_cells_come_first_but_never_past_their_share():
    target = {("a",): 0.5, ("b",): 0.5, ("x",): 0.0}
    counts = Counter({("a",): 10, ("b",): 10})
    assert allocate(target, counts, 4) == [("a",), ("b",), ("a",), ("b",)]
    assert allocate(target, counts, 4, collapsed={("b",)}) == [("b",), ("b",), ("a",), ("a",)]
    # 3 of b's 10 were judged unfaithful: b is served first, up to its share of the new total
    assert allocate(target, counts, 6, unfaithful={("b",): 0.3}) == [("b",)] * 3 + [("a",)] * 3
    under = Counter({("a",): 8, ("b",): 12})
    assert Counter(allocate(target, under, 4, collapsed={("a",)})) == Counter({("a",): 4})  # 12 of 24: its share
    picks = allocate(target, Counter({("x",): 50}), 10)
    assert ("x",) not in picks and len(picks) == 10
    assert allocate({("x",): 0.0}, counts, 3) == []
    assert allocate(target, counts, 0) == []


def test_a_batch_larger_than_the_bounds_still_fills():
    target = {("a",): 0.5, ("b",): 0.5}
    assert Counter(allocate(target, Counter({("a",): 3}), 5)) == Counter({("b",): 4, ("a",): 1})
    assert len(allocate(target, Counter(), 7)) == 7


def test_allocation_is_deterministic():
    target = {(str(i),): 1 / 7 for i in range(7)}
    assert allocate(target, Counter(), 10) == allocate(target, Counter(), 10)
    assert allocate(target, Counter(), 10)[:7] == list(target)  # ties: the order of the target


def test_conditions_fix_the_cell_draw_the_rest_and_respect_rules():
    r = reviews()
    design = Design(r)
    rng = random.Random(0)
    for _ in range(50):
        c = draw_condition(design, ("subtopic",), ("portions",), rng)
        assert c["label"] == "positive" and c["subtopic"] == "portions" and c["cuisine"] != "Japanese"
        assert len(c["words"].split(", ")) == 2
    t = make_target(r, ["label", "cuisine"])
    picks = allocate(t.shares, Counter(), 12)
    conds, failed = plan_conditions(r, t, picks, "seed")
    assert failed == [] and [t.cell_of(c) for c in conds] == picks
    assert plan_conditions(r, t, picks, "seed")[0] == conds  # reproducible from its seed


def test_parse_shares():
    assert parse_shares("label=positive:0.7,negative:0.3; cuisine=Thai:1") == {
        "label": {"positive": 0.7, "negative": 0.3}, "cuisine": {"Thai": 1.0}}
    assert parse_shares("label=a:b:0.5,c:0.5") == {"label": {"a:b": 0.5, "c": 0.5}}
    with pytest.raises(GrowError, match="'lots', not a number"):
        parse_shares("label=positive:lots")
    with pytest.raises(GrowError, match="dimension=value:share"):
        parse_shares("positive 0.7")
