"""The headless curate command: pipeline YAML over a run, verdicts stored, curated data exported."""

from __future__ import annotations

import datasets
import pandas as pd

from services.cli.main import main
from services.core.store import Store
from tests.explore_data import insert_run

TEXTS = [
    ("The pasta was fresh and the staff were friendly to everyone at our table.", {"label": "positive"}),
    ("As an AI language model, I cannot write a restaurant review.", {"label": "negative"}),
    ("The pasta was fresh and the staff were friendly to everyone at our table.", {"label": "positive"}),
    ("Cold soup, a long wait and a bill that made no sense at all for what we got.", {"label": "negative"}),
    ("Too short.", {"label": "positive"}),
]


def _db(tmp_path):
    path = tmp_path / "cli.duckdb"
    store = Store(path)
    insert_run(store, "r1", TEXTS)
    store.close()
    return path


def test_curate_exports_hf_folder_and_stores_verdicts(tmp_path, capsys):
    db = _db(tmp_path)
    out = tmp_path / "curated"
    code = main(["curate", "--run", "r1", "--pipeline", "data/pipelines/basic_curation.yaml", "--out", str(out), "--db", str(db)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "kept 2 of 5 samples" in printed
    ds = datasets.load_dataset(str(out), split="train")
    assert sorted(ds["label"]) == ["negative", "positive"] and "model" in ds.column_names
    assert "basic-curation" in (out / "README.md").read_text()
    store = Store(db)
    dropped = store.scalar("SELECT count(*) FROM filter_verdicts WHERE NOT kept")
    store.close()
    assert dropped == 3  # the refusal, the duplicate, the too-short text


def test_curate_jsonl_and_bad_inputs(tmp_path, capsys):
    db = _db(tmp_path)
    out = tmp_path / "kept.jsonl"
    assert main(["curate", "--run", "r1", "--pipeline", "data/pipelines/basic_curation.yaml", "--out", str(out),
                 "--format", "jsonl", "--db", str(db)]) == 0
    assert len(pd.read_json(out, lines=True)) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n- kind: length\n  min: 10\n  max: 2\n")
    assert main(["curate", "--run", "r1", "--pipeline", str(bad), "--out", str(out), "--db", str(db)]) == 2
    assert "minimum length (10) is above the maximum (2)" in capsys.readouterr().err
    assert main(["curate", "--run", "nope", "--pipeline", "data/pipelines/basic_curation.yaml", "--out", str(out), "--db", str(db)]) == 2
    assert "no generated samples" in capsys.readouterr().err
