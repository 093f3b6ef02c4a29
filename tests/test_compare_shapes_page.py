"""Compare Filters exports a column run as one data type (sft, preference, classification, table)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from streamlit.testing.v1 import AppTest

from resources import get_store
from services.core.store import Store
from services.curation.export import shaped_frame
from services.generation.backends import BackendConfig, OpenAIBackend
from services.generation.runner import execute_run
from services.recipes.recipe import Recipe
from tests.explore_data import insert_run
from tests.mock_openai import MockServer
from tests.run_helpers import plan_run
from tests.test_compare_page import fake_embedder  # noqa: F401  (a fixture)

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "compare_filters.py")
LABEL = {"type": "object", "properties": {"label": {"enum": ["good", "bad"]}}, "required": ["label"]}


def seed_column_run(db_path: Path) -> tuple[list[str], str]:
    rec = Recipe.parse({
        "name": "shapes", "task": "You write data.", "dimensions": [{"name": "topic", "values": ["rain", "tea", "maps", "cats"]}],
        "sampling": {"strategy": "grid", "per_cell": 3}, "model": {"temperature": 0.7, "max_tokens": 16, "seed": 2},
        "columns": [
            {"name": "instruction", "user_template": "Item {{ index }}: ask one question about {{ topic }}"},
            {"name": "response", "user_template": "{{ instruction }}"},
            {"name": "verdict", "kind": "structured", "output_schema": LABEL, "user_template": "Rate {{ response }}"},
            {"name": "answers", "kind": "candidates", "n": 2, "user_template": "Again: {{ instruction }}"},
            {"name": "pref", "kind": "pairwise", "of": "answers", "rubric": "better"},
        ], "output_column": "instruction"})
    store = Store(db_path)
    with MockServer() as url:
        run_id = plan_run(store, rec, base_url=url, concurrency=4)
        backend = OpenAIBackend(BackendConfig("custom", url, "mock-model", "sk-test", timeout_s=5))

        async def go():
            try:
                return await execute_run(store, run_id, backend)
            finally:
                await backend.aclose()
        assert asyncio.run(go()).generated == 12
    keys = [k for (k,) in store.query("SELECT sample_key FROM samples WHERE run_id = ? AND step = 'output' ORDER BY item_idx", [run_id])]
    store.close()
    return keys, run_id


def test_a_column_run_exports_as_a_shape_with_its_card(db_path, fake_embedder):  # noqa: F811
    keys, run_id = seed_column_run(db_path)
    at = AppTest.from_file(PAGE, default_timeout=90).run()
    assert not at.exception, at.exception
    shape = at.radio(key="compare_filters_shape")
    assert shape.options == ["curated rows", "sft", "preference", "classification", "table"]
    assert any("12 samples kept by A, with their condition" in c.value for c in at.caption)  # curated rows by default

    expected = shaped_frame(get_store(), keys, "preference")  # pipeline A keeps all 12 (unique, long enough); the page's store
    shape.set_value("preference").run()
    assert not at.exception, at.exception
    caption = next(c.value for c in at.caption if "preference row(s)" in c.value)
    assert caption.startswith(f"{len(expected)} preference row(s) from the 12 samples kept by A")
    ties = expected.attrs["ties"]
    assert (f"{ties} tie(s)" in caption) == bool(ties) and len(expected) + ties == 12
    card = next(c.value for c in at.code if "configs:" in c.value)  # the shape's data card, shown as text
    assert f"Exported from run `{run_id}`" in card and ": preference" in card and "| pref | pairwise |" in card
    assert "both orders agree on" in card and (f"{ties} pair(s) are left out as ties" in card) == bool(ties)
    assert [b.label for b in at.get("download_button")] == ["JSONL", "CSV", "Parquet", "Hugging Face folder (zip)"]

    shape.set_value("classification").run()
    # no 'text' field to classify in this plan: every sample is left out, and the caption says so
    assert any(c.value.startswith("0 classification row(s) from the 12 samples kept by A; left out: 12 lacking a column")
               for c in at.caption)


def test_a_run_of_one_text_has_no_shapes(db_path, fake_embedder):  # noqa: F811
    store = Store(db_path)
    insert_run(store, "run-a", [(f"A calm story number {i} about rain." , {"mood": "calm"}) for i in range(6)], name="plain")
    store.close()
    at = AppTest.from_file(PAGE, default_timeout=90).run()
    assert not at.exception, at.exception
    assert not [r for r in at.radio if r.key == "compare_filters_shape"]
    assert any("6 samples kept by A" in c.value for c in at.caption)
