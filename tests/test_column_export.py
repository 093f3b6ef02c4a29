"""Exports per data type from a column run, each loaded back with Hugging Face `datasets`."""

from __future__ import annotations

import asyncio

import datasets
import pytest

from services.core.store import Store
from services.curation.export import columns_card, shaped_card, shaped_frame, to_jsonl, write_hf_folder
from services.generation.backends import BackendConfig, OpenAIBackend
from services.generation.runner import execute_run
from services.recipes.recipe import Recipe
from tests.mock_openai import MockServer
from tests.run_helpers import plan_run

LABEL = {"type": "object", "properties": {"label": {"enum": ["good", "bad"]}, "rationale": {"type": "string"}},
         "required": ["label", "rationale"]}


@pytest.fixture
def column_run(store):
    rec = Recipe.parse({
        "name": "export-me", "task": "You write data.", "dimensions": [{"name": "text", "values": ["rain", "tea", "maps"]}],
        "sampling": {"strategy": "grid"}, "model": {"temperature": 0.7, "max_tokens": 16, "seed": 3},
        "columns": [
            {"name": "instruction", "user_template": "Ask about {{ text }}"},
            {"name": "response", "system_template": "Be helpful.", "user_template": "{{ instruction }}"},
            {"name": "verdict", "kind": "structured", "n": 3, "output_schema": LABEL, "user_template": "Rate {{ response }}"},
            {"name": "answers", "kind": "candidates", "n": 2, "user_template": "Again: {{ instruction }}"},
            {"name": "pref", "kind": "pairwise", "of": "answers", "rubric": "better"},
        ], "output_column": "response"})
    with MockServer() as url:
        run_id = plan_run(store, rec, base_url=url)
        backend = OpenAIBackend(BackendConfig("custom", url, "mock-model", "sk-test", timeout_s=5))

        async def go():
            try:
                return await execute_run(store, run_id, backend)
            finally:
                await backend.aclose()
        assert asyncio.run(go()).generated == 3
    keys = [k for (k,) in store.query("SELECT sample_key FROM samples WHERE run_id = ? AND step = 'output' ORDER BY item_idx", [run_id])]
    return store, run_id, keys


def _load(frame, tmp_path, name):
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(to_jsonl(frame))
    return datasets.load_dataset("json", data_files=str(path), split="train")


def test_each_shape_loads_with_datasets(column_run, tmp_path):
    store, run_id, keys = column_run
    sft = _load(shaped_frame(store, keys, "sft", prompt="instruction", response="response"), tmp_path, "sft")
    assert len(sft) == 3
    m = sft[0]["messages"]
    assert [x["role"] for x in m] == ["system", "user", "assistant"] and m[0]["content"] == "Be helpful."
    assert m[2]["content"].startswith("Sample for: ") and m[1]["content"] in m[2]["content"]  # the mock echoes the prompt

    frame = shaped_frame(store, keys, "preference")
    pref = _load(frame, tmp_path, "pref")
    assert set(pref.column_names) >= {"prompt", "chosen", "rejected", "reason"} and len(pref) + frame.attrs["ties"] == 3
    assert all(r["chosen"] != r["rejected"] and r["prompt"].startswith("Again: ") for r in pref)

    cls = shaped_frame(store, keys, "classification", label="verdict")
    ds = _load(cls, tmp_path, "cls")
    assert ds["text"] == ["rain", "tea", "maps"] and set(ds["label"]) <= {"good", "bad"}
    assert all(c in (2 / 3, 1.0) or round(c, 4) == 0.6667 for c in ds["confidence"])

    table = shaped_frame(store, keys, "table")
    assert {"instruction", "response", "verdict_label", "verdict_agreement", "pref_winner", "text"} <= set(table.columns)
    folder = write_hf_folder(tmp_path / "hf", table, shaped_card(store, run_id, table, "table"))
    loaded = datasets.load_dataset(str(folder), split="train")
    assert len(loaded) == 3 and "verdict_label" in loaded.column_names


def test_the_card_lists_columns_prompts_and_agreement(column_run):
    store, run_id, _ = column_run
    card = "\n".join(columns_card(store, run_id))
    assert "| verdict | structured ×3 | `Rate {{ response }}` | mean " in card and "of 3 samples (3 votes each)" in card
    assert "| pref | pairwise |" in card and "| instruction | text | `Ask about {{ text }}` | n/a |" in card


def test_curate_cli_exports_a_shape(column_run, tmp_path):
    from services.cli.main import main

    store, run_id, _ = column_run
    pipe = tmp_path / "pipe.yaml"
    pipe.write_text("name: keep-all\nsteps:\n- kind: exact_dedup\n")
    out = tmp_path / "pref.jsonl"
    store.close()  # the command opens the file itself
    assert main(["curate", "--run", run_id, "--pipeline", str(pipe), "--out", str(out), "--format", "jsonl",
                 "--shape", "preference", "--db", str(store.path), "--no-judge"]) == 0
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    again = Store(store.path)
    ties = again.scalar("SELECT count(*) FROM samples WHERE run_id = ? AND step = 'pref' AND value ->> 'winner' = 'tie'", [run_id])
    again.close()
    assert len(ds) == 3 - ties and {"prompt", "chosen", "rejected", "reason"} <= set(ds.column_names)
