"""Annotation: a recipe over the rows of an imported dataset, its variables checked first, and the
nearest and diverse demonstration strategies."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from services.data.importer import import_dataset
from services.data.rows import DatasetNotFound, annotation_rows, source_rows
from services.generation.backends import BackendConfig, OpenAIBackend
from services.generation.run_setup import prepare_run
from services.generation.runner import RunSettings, execute_run
from services.recipes.demonstrations import DemoPicker, mmr
from services.recipes.plan import make_plan
from services.recipes.recipe import DemoSettings, Recipe, RecipeError
from services.sql.views import refresh_views
from tests.mock_openai import MockServer

SCHEMA = {"type": "object", "properties": {"label": {"enum": ["sport", "food"]}, "rationale": {"type": "string"}},
          "required": ["label", "rationale"]}


def _csv(tmp_path, rows: list[tuple[str, str]]):
    p = tmp_path / "texts.csv"
    p.write_text("review,shop\n" + "".join(f'"{t}",{s}\n' for t, s in rows), encoding="utf-8")
    return p


def _recipe(template: str, **src) -> Recipe:
    return Recipe.parse({"name": "annotate", "task": "You label texts.", "source": {"dataset": "reviews", **src},
                         "model": {"temperature": 0.7, "max_tokens": 32, "seed": 1},
                         "columns": [{"name": "topic", "kind": "structured", "n": 3, "output_schema": SCHEMA, "user_template": template}]})


def test_rows_of_a_dataset_are_the_items_and_their_fields_are_variables(store, tmp_path):
    path = _csv(tmp_path, [("The match went to penalties", "north"), ("Fresh bread every morning", "south"), ("A late goal", "north")])
    import_dataset(store, path, text_column="review", attribute_columns=["shop"], name="reviews")
    rows = annotation_rows(store, "reviews")
    assert rows[0] == {"shop": "north", "text": "The match went to penalties", "review": "The match went to penalties"}
    rec = _recipe("Shop {{ shop }}: {{ review }}")
    plan = make_plan(rec, rows=rows)
    assert [it.condition["review"] for it in plan.items] == [r["review"] for r in rows]
    assert plan.plan_id != make_plan(rec, rows=rows[:2]).plan_id  # other rows, another plan
    with pytest.raises(RecipeError) as err:
        make_plan(_recipe("{{ review }} {{ stars }}"), rows=rows)
    assert err.value.problems == [("column 'topic', field user_template",
                                   "refers to 'stars', which is not a field of dataset 'reviews' (it has: review, shop, text)")]
    with pytest.raises(RecipeError, match="rows must be read first"):
        make_plan(rec)
    with pytest.raises(DatasetNotFound, match="imported: reviews"):
        annotation_rows(store, "nope")


def test_an_annotation_run_votes_and_lands_in_sql(store, tmp_path):
    path = _csv(tmp_path, [(f"text number {i}", "x") for i in range(5)])
    rows = source_rows(store, "reviews", file=str(path), text_column="review", attribute_columns=["shop"], limit=4)
    assert len(rows) == 4  # imported from the file on first use
    rec = _recipe("{{ review }}")
    with MockServer() as url:
        cfg = BackendConfig("custom", url, "mock-model", "sk-test", timeout_s=5, max_retries=1)
        run_id = prepare_run(store, rec, cfg, RunSettings(concurrency=2), rows=rows)
        backend = OpenAIBackend(cfg)

        async def go():
            try:
                return await execute_run(store, run_id, backend)
            finally:
                await backend.aclose()
        out = asyncio.run(go())
    assert (out.generated, out.failed) == (4, 0)
    refresh_views(store)
    got = store.query("SELECT review, label, agreement, votes FROM samples_wide w JOIN samples_columns c USING (run_id, item_key, sample_idx)"
                      " WHERE w.step = 'output' AND run_id = ? ORDER BY c.item_idx", [run_id])
    assert [g[0] for g in got] == [f"text number {i}" for i in range(4)]
    for _, label, agreement, votes in got:
        assert label in ("sport", "food") and votes == 3 and agreement in (0.6667, 1.0)  # 3 votes, 2 labels: never 1/3


def test_nearest_and_diverse_demonstrations():
    examples = [{"id": "a", "text": "football match goal penalty"}, {"id": "b", "text": "football match goal striker"},
                {"id": "c", "text": "fresh bread bakery"}, {"id": "d", "text": "tennis serve"}]
    near = DemoPicker(DemoSettings(examples=examples, k=2, strategy="nearest"))
    picked = [d.id for d in near.pick(random.Random(0), {}, "a football match with a late goal")]
    assert picked[:2] == ["a", "b"]
    # MMR: with weight on diversity, the second pick is not the near-copy of the first
    docs = np.array([[1.0, 0.0], [0.99, 0.14], [0.6, 0.8]])
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    assert mmr(np.array([1.0, 0.0]), docs, 2, 0.0) == [0, 1]
    assert mmr(np.array([1.0, 0.0]), docs, 2, 0.7) == [0, 2]
    diverse = DemoPicker(DemoSettings(examples=examples, k=2, strategy="diverse", diversity=0.7))
    assert [d.id for d in diverse.pick(random.Random(0), {}, "a football match with a late goal")][0] == "a"
    assert "b" not in [d.id for d in diverse.pick(random.Random(0), {}, "a football match with a late goal")]
