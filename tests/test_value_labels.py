"""Values with a short label (shown, stored in the condition) and a full text (rendered in prompts)."""

from __future__ import annotations

import hashlib
import json

import pytest

from services.demo.recipe_files import demo_recipe_files, load_demo_recipe
from services.generation.steps import ColumnRenderer
from services.recipes.plan import item_key, make_plan
from services.recipes.recipe import Recipe, RecipeError
from services.recipes.recipe_yaml import from_yaml, to_yaml
from services.recipes.sampling import value_counts
from services.recipes.value_import import format_value_lines, parse_value_lines, parse_values_file, split_at_colon

CHEF = "Chef: a cook who loves spice and tells stories about the market"
PILOT = "Pilot: flies night mail across the mountains"


def labelled(strategy: str = "grid", **sampling) -> Recipe:
    return Recipe.parse({
        "name": "personas",
        "user_template": "You are {{ persona }}. Shown as {{ persona.label }}. Topic: {{ topic }}.",
        "dimensions": [
            {"name": "persona", "values": [{"label": "Chef", "text": CHEF}, {"label": "Pilot", "text": PILOT}, "Clerk"]},
            {"name": "topic", "depends_on": "persona", "values_by_parent": {
                "Chef": [{"label": "Soup", "text": "Soup: a warm bowl on a cold day"}, "Bread"],
                "Pilot": ["Storms"], "Clerk": ["Queues", "Forms"]}},
        ],
        "sampling": {"strategy": strategy, **sampling},
    })


def test_unlabelled_recipe_hash_is_the_plain_canonical_json():
    # The hash of a recipe without labels is computed over plain string values, as before labels existed.
    r = Recipe.parse({"name": "x", "user_template": "{{ a }}", "dimensions": [{"name": "a", "values": ["p", "q"]}]})
    body = {"dimensions": [{"name": "a", "values": ["p", "q"]}], "name": "x", "user_template": "{{ a }}"}
    expected = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert r.content_hash() == expected
    # A label equal to its text is no label: same recipe, same hash.
    same = Recipe.parse({"name": "x", "user_template": "{{ a }}",
                         "dimensions": [{"name": "a", "values": [{"label": "p", "text": "p"}, "q"]}]})
    assert same.content_hash() == r.content_hash()


@pytest.mark.parametrize("stem", sorted(demo_recipe_files()))
def test_shipped_recipes_keep_their_hashes_and_plan_keys(stem):
    recipe = load_demo_recipe(stem)
    # Every value serialises as before (a string, or {text, weight}); no label key appears.
    for d in recipe.dimensions:
        for v in d.all_values():
            assert v.label == "" and v.key == v.text
            assert not (isinstance(v.model_dump(), dict) and "label" in v.model_dump())
    if recipe.source is not None:  # over a dataset's rows: planned from them, not from values
        return
    plan = make_plan(recipe, limit=20)
    texts = {d.name: {v.text for v in d.all_values()} for d in recipe.dimensions if d.kind == "categorical"}
    for it in plan.items:
        for name, allowed in texts.items():
            assert it.condition[name] in allowed  # conditions store the texts, as they always did
        assert it.key == item_key(recipe.content_hash(), it.index, it.condition, it.demo_ids)


def test_rendering_uses_the_text_and_the_condition_stores_the_label():
    plan = make_plan(labelled())
    chef_soup = next(it for it in plan.items if it.condition == {"persona": "Chef", "topic": "Soup"})
    assert chef_soup.messages[-1]["content"] == f"You are {CHEF}. Shown as Chef. Topic: Soup: a warm bowl on a cold day."
    clerk = next(it for it in plan.items if it.condition["persona"] == "Clerk")
    assert clerk.messages[-1]["content"].startswith("You are Clerk. Shown as Clerk.")
    assert {it.condition["persona"] for it in plan.items} == {"Chef", "Pilot", "Clerk"}
    assert len(plan.items) == 5  # the grid follows the dependency: 2 + 1 + 2


def test_columns_render_the_text_too():
    r = Recipe.parse({**labelled().canonical(), "user_template": "",
                      "columns": [{"name": "answer", "kind": "text", "user_template": "As {{ persona }}: {{ topic.label }}"}]})
    item = next(it for it in make_plan(r).items if it.condition["persona"] == "Chef" and it.condition["topic"] == "Soup")
    msgs = ColumnRenderer(r).messages(r.columns[0], item, {})
    assert msgs[-1]["content"] == f"As {CHEF}: Soup"


@pytest.mark.parametrize("strategy", ["random", "balanced", "pairwise"])
def test_sampling_strategies_and_rules_work_on_labels(strategy):
    r = labelled(strategy, n_items=40, exclusions=['persona == "Pilot"'])
    plan = make_plan(r)
    assert plan.items
    assert all(it.condition["persona"] in {"Chef", "Clerk"} for it in plan.items)
    for it in plan.items:  # children drawn from their parent's list, keyed by the parent's label
        allowed = {"Chef": {"Soup", "Bread"}, "Clerk": {"Queues", "Forms"}}[it.condition["persona"]]
        assert it.condition["topic"] in allowed
    counts = value_counts(r)
    assert set(counts["persona"]) == {"Chef", "Pilot", "Clerk"} and counts["persona"]["Pilot"] == 0
    assert sum(counts["persona"].values()) == len(plan.items)


def test_labels_change_the_hash_and_survive_yaml():
    r = labelled()
    plain = Recipe.parse({**r.canonical(), "dimensions": [{"name": "persona", "values": [CHEF, PILOT, "Clerk"]}]})
    assert plain.content_hash() != r.content_hash()
    back = from_yaml(to_yaml(r))
    assert back.content_hash() == r.content_hash()
    assert back.dimension("persona").values[0].label == "Chef"


def test_duplicate_labels_are_reported():
    with pytest.raises(RecipeError, match="duplicate value 'Chef'"):
        Recipe.parse({"name": "x", "dimensions": [
            {"name": "p", "values": [{"label": "Chef", "text": CHEF}, {"label": "Chef", "text": "Chef: another"}]}]})


def test_value_lines_and_uploads_carry_labels():
    parsed = parse_value_lines(f"Chef :: {CHEF} | 2\nClerk\n")
    assert [(v.label, v.text, v.weight) for v in parsed.values] == [("Chef", CHEF, 2.0), ("", "Clerk", 1.0)]
    assert parse_value_lines(format_value_lines(parsed.values)).values == parsed.values
    split, n = split_at_colon(parse_value_lines(f"{CHEF}\n{PILOT}\nno colon here").values)
    assert n == 2 and [v.key for v in split] == ["Chef", "Pilot", "no colon here"]
    assert split[0].text == CHEF  # the prompt keeps the whole line
    csv = parse_values_file("v.csv", f'label,value\nChef,"{CHEF}"\n,Clerk\n'.encode())
    assert [(v.label, v.text) for v in csv.values] == [("Chef", CHEF), ("", "Clerk")]


def test_explore_heatmap_cells_use_labels():
    from services.explore.recipe_cells import recipe_cells

    cells = recipe_cells(labelled(), "persona", "topic")
    assert cells.values_a == ["Chef", "Pilot", "Clerk"]
    assert ("Chef", "Soup") in cells.possible and ("Pilot", "Soup") not in cells.possible
