"""Exports round-trip through pandas and Hugging Face `datasets`, with condition and provenance, never a key."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest

from services.curation.compare import compare, diversity_before_after
from services.curation.export import curated_frame, data_card, hf_zip, to_csv, to_jsonl, to_parquet, write_hf_folder
from services.curation.pipeline import FilterContext, Pipeline, load_batch, run_pipeline
from services.curation.review_store import edit_sample
from tests.explore_data import insert_run

SECRET = "sk-test-SECRET-never-exported-1234567890"

PIPE = Pipeline.parse({"name": "clean", "steps": [{"kind": "refusal"}, {"kind": "exact_dedup"}]})


@pytest.fixture
def curated(store, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    insert_run(store, "r1", [("Rain on the roof, ünïcode ✓.", {"mood": "calm", "text": "clash"}), ("As an AI language model, no.", {"mood": "sad", "text": "x"}),
                             ("A sunny day, with \"quotes\", commas\nand a newline.", {"mood": "glad", "text": "y"}),
                             ("a sunny day with quotes commas and a newline", {"mood": "glad", "text": "z"})])
    with store.write() as cur:
        cur.execute("UPDATE runs SET base_url = ? WHERE run_id = 'r1'", [f"https://user:{SECRET}@example.com/v1"])
    edit_sample(store, "r1-0", "Rain on the roof, edited.")
    result = run_pipeline(PIPE, load_batch(store, "r1"), FilterContext(store=store))
    return store, result, curated_frame(store, result)


def test_curated_frame_has_condition_and_provenance(curated):
    _, result, frame = curated
    assert frame["sample_key"].tolist() == ["r1-0", "r1-2"]
    row = frame.iloc[0]
    assert row["text"] == "Rain on the roof, edited." and row["original_text"] == "Rain on the roof, ünïcode ✓." and row["edit_version"] == 1
    assert row["mood"] == "calm" and row["condition_text"] == "clash"  # a dimension named like a base column is prefixed
    assert json.loads(row["condition"]) == {"mood": "calm", "text": "clash"}
    assert row["model"] == "fake-model" and row["run_id"] == "r1" and row["pipeline"] == "clean"
    assert row["pipeline_hash"] == PIPE.content_hash()


def test_round_trips_through_pandas(curated):
    _, _, frame = curated
    back_jsonl = pd.read_json(io.BytesIO(to_jsonl(frame)), lines=True)
    back_csv = pd.read_csv(io.BytesIO(to_csv(frame)))
    back_parquet = pd.read_parquet(io.BytesIO(to_parquet(frame)))
    for back in (back_jsonl, back_csv, back_parquet):
        assert back["text"].tolist() == frame["text"].tolist()
        assert back["mood"].tolist() == ["calm", "glad"]
        assert [json.loads(c) for c in back["condition"]] == [json.loads(c) for c in frame["condition"]]
    assert [list(x) for x in back_parquet["demo_ids"]] == [[], []]
    assert json.loads(back_csv["demo_ids"][0]) == []


def test_hugging_face_layout_loads_with_datasets(curated, tmp_path):
    import datasets

    store, result, frame = curated
    c = compare(result.batch, [PIPE])
    card = data_card(store, result, frame, diversity_before_after(c))
    folder = write_hf_folder(tmp_path / "hf", frame, card)
    ds = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 2 and ds["text"] == frame["text"].tolist() and ds["mood"] == ["calm", "glad"]
    assert "recipe_hash" in ds.column_names and "condition" in ds.column_names
    via_parquet = datasets.load_dataset("parquet", data_files=str(folder / "data" / "*.parquet"), split="train",
                                        cache_dir=str(tmp_path / "cache2"))
    assert via_parquet["sample_key"] == ["r1-0", "r1-2"]
    assert "| 2. exact dedup (normalised) | 3 | 1 | 2 |" in card and "kept: 2" in card and "Diversity" in card
    # The zip for the download button holds the same layout.
    with zipfile.ZipFile(io.BytesIO(hf_zip(frame, card))) as zf:
        assert sorted(zf.namelist()) == ["curated_dataset/README.md", "curated_dataset/data/train-00000-of-00001.parquet"]


def test_no_key_anywhere_in_exports(curated, tmp_path):
    store, result, frame = curated
    card = data_card(store, result, frame)
    blobs = [to_jsonl(frame), to_csv(frame), to_parquet(frame), card.encode(), hf_zip(frame, card)]
    assert all(SECRET.encode() not in b for b in blobs)
    assert "base_url" not in frame.columns
