"""Recipe validation, templates and the sandbox, YAML round trips, plans."""

from __future__ import annotations

import csv
import glob
from pathlib import Path

import pytest

from services.recipes.plan import make_plan, template_report
from services.recipes.recipe import Demo, DemoSettings, Dimension, Recipe, RecipeError, Sampling
from services.recipes.recipe_yaml import from_yaml, to_yaml
from services.recipes.templating import TemplateProblem, render_string


def problems_of(**kw) -> list[str]:
    with pytest.raises(RecipeError) as info:
        Recipe.parse({"name": "t", "user_template": "x", **kw})
    return [f"{w}: {m}" for w, m in info.value.problems]


def test_bad_dimensions_each_get_a_clear_message():
    msgs = problems_of(dimensions=[
        {"name": "empty"},
        {"name": "dup", "values": ["a", "A "]},
        {"name": "w", "values": [{"text": "a", "weight": 0}, {"text": "b", "weight": -2}]},
        {"name": "orphan", "depends_on": "ghost", "values_by_parent": {"x": ["1"]}},
        {"name": "2bad", "values": ["a"]},
    ])
    text = "\n".join(msgs)
    assert "dimension 'empty': has no values" in text
    assert "duplicate value 'A '" in text
    assert "weight of 'a' must be a positive number, got 0.0" in text
    assert "weight of 'b' must be a positive number, got -2.0" in text
    assert "depends on 'ghost', which is not a dimension" in text
    assert "'2bad' is not a usable name" in text


def test_weight_that_is_not_a_number():
    msgs = problems_of(dimensions=[{"name": "a", "values": [{"text": "x", "weight": "heavy"}]}])
    assert any("weight" in m and "number" in m for m in msgs)


def test_dependency_cycle_is_named():
    msgs = problems_of(dimensions=[
        {"name": "a", "depends_on": "b", "values_by_parent": {"x": ["1"]}},
        {"name": "b", "depends_on": "a", "values_by_parent": {"1": ["x"]}},
    ])
    assert any("dependency cycle: a → b → a" in m for m in msgs)


def test_dependent_dimension_missing_values_for_a_parent_value():
    msgs = problems_of(dimensions=[
        {"name": "label", "values": ["pos", "neg"]},
        {"name": "sub", "depends_on": "label", "values_by_parent": {"pos": ["a"], "other": ["b"]}},
    ])
    assert any("no values for label = 'neg'" in m for m in msgs)
    assert any("'other', which 'label' does not have" in m for m in msgs)


def test_demo_settings_checked():
    msgs = problems_of(demos={"examples": [{"id": "1", "text": "a"}], "k": 3})
    assert any("k=3 but only 1" in m for m in msgs)


def test_sandbox_refuses_python_internals():
    for src in ["{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}", "{{ joiner.__init__.__globals__.os }}",
                "{% set x = [].append(1) %}{{ x }}"]:
        with pytest.raises(TemplateProblem, match="sandbox|unsafe"):
            render_string(src, {})


def test_syntax_error_has_line_and_message():
    with pytest.raises(TemplateProblem) as info:
        render_string("line one\n{% for x in %}\n{% endfor %}", {})
    assert info.value.line == 2 and "user template, line 2" in str(info.value)


def test_undefined_variable_names_it_and_what_exists():
    with pytest.raises(TemplateProblem) as info:
        render_string("Write about {{ cusine }}", {"cuisine": "Thai", "label": "pos"})
    assert "'cusine' is undefined" in str(info.value) and "cuisine, label" in str(info.value)


def test_derived_values_in_templates():
    assert render_string("{{ length|int + 50 }} words", {"length": "100"}) == "150 words"


def test_template_report_lists_unprovided_variables():
    r = Recipe(name="t", user_template="{{ label }} {{ mood }} {{ demos|length }}", dimensions=[Dimension(name="label", values=["a"])])
    rep = template_report(r)
    assert rep["user"]["variables"] == ["demos", "label", "mood"]
    assert rep["user"]["unprovided"] == ["mood"]


def test_plan_items_have_deterministic_keys_and_record_demos():
    demos = [Demo(id=f"d{i}", text=f"example {i}", attributes={"label": "pos" if i % 2 else "neg"}) for i in range(6)]
    r = Recipe(name="t", task="T", user_template="{{ label }}:{% for d in demos %}[{{ d.text }}]{% endfor %}",
               dimensions=[Dimension(name="label", values=["pos", "neg"])],
               demos=DemoSettings(examples=demos, k=2, strategy="matching", stratify_by="label"),
               sampling=Sampling(strategy="grid", per_cell=3))
    p1, p2 = make_plan(r), make_plan(r)
    assert [i.key for i in p1.items] == [i.key for i in p2.items]
    assert len({i.key for i in p1.items}) == 6
    by_id = {d.id: d for d in demos}
    for it in p1.items:
        assert len(it.demo_ids) == 2
        assert all(by_id[d].attributes["label"] == it.condition["label"] for d in it.demo_ids)
        assert it.messages[0] == {"role": "system", "content": "T"}
        assert all(f"[{by_id[d].text}]" in it.messages[1]["content"] for d in it.demo_ids)
    # A different seed is a different recipe version: new keys.
    r2 = r.model_copy(update={"sampling": Sampling(strategy="grid", per_cell=3, seed=9)})
    assert make_plan(r2).items[0].key != p1.items[0].key


def test_stratified_demos_spread_over_values():
    demos = [Demo(id=f"d{i}", text="x", attributes={"label": "pos" if i < 5 else "neg"}) for i in range(7)]
    r = Recipe(name="t", user_template="x", dimensions=[Dimension(name="label", values=["pos", "neg"])],
               demos=DemoSettings(examples=demos, k=2, strategy="stratified", stratify_by="label"),
               sampling=Sampling(strategy="random", n_items=30))
    labels = {d.id: d.attributes["label"] for d in demos}
    for it in make_plan(r).items:
        assert {labels[d] for d in it.demo_ids} == {"pos", "neg"}


def test_yaml_round_trip_of_every_demo_recipe():
    files = sorted(glob.glob("data/recipes/*.yaml"))
    assert len(files) >= 3
    for f in files:
        r = from_yaml(Path(f).read_text(encoding="utf-8"))
        again = from_yaml(to_yaml(r))
        assert again == r and again.content_hash() == r.content_hash()
        rows = None
        if r.source:  # an annotation recipe plans over the rows of the file it ships with
            with open(Path("data") / r.source.file, encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        assert make_plan(r, limit=3, rows=rows).items


def test_malformed_yaml_names_the_line():
    with pytest.raises(RecipeError, match="line 3, column 1"):
        from_yaml("name: x\ntask: ok\n\tdimensions: 1\n")
    with pytest.raises(RecipeError, match="mapping"):
        from_yaml("- just\n- a list\n")
    with pytest.raises(RecipeError, match="not UTF-8"):
        from_yaml(b"name: \xff\xfe caf\xe9")


def test_hash_ignores_defaults_and_changes_with_content():
    a = Recipe(name="t", user_template="x")
    assert a.content_hash() == Recipe.parse(a.canonical()).content_hash()
    assert a.content_hash() != Recipe(name="t", user_template="y").content_hash()
