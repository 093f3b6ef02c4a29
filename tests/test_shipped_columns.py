"""Every shipped column recipe runs headless from the CLI against the mock OpenAI server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.core.store import Store
from services.generation.run_store import get_run, progress
from services.sql.views import refresh_views
from tests.mock_openai import MockServer

ROOT = Path(__file__).resolve().parent.parent
# recipe -> the columns each sample must have, and a field of samples_columns to check
SHIPPED = {
    "instruction_response_judge": (["instruction", "response", "quality"], "score"),
    "passage_qa": (["passage", "question", "answer", "explanation"], "explanation"),
    "preference_pairs": (["instruction", "answers", "preference"], "chosen"),
    "draft_critique_revision": (["draft", "critique", "revision"], "revision"),
    "label_first_lines": (["tone", "label"], "agreement"),
}


@pytest.fixture(scope="module")
def mock():
    server = MockServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize("stem", sorted(SHIPPED))
def test_shipped_recipe_runs_from_the_cli(stem, mock, tmp_path):
    db = tmp_path / "studio.duckdb"
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    proc = subprocess.run([sys.executable, "-m", "services", "run", f"data/recipes/{stem}.yaml", "--backend", "custom",
                           "--base-url", mock.url, "--model", "mock-model", "--db", str(db), "--limit", "3", "--quiet"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_id = proc.stdout.split()[1]
    store = Store(db)
    try:
        p = progress(store, get_run(store, run_id))
        assert (p.done, p.failed) == (3, 0)
        columns, field = SHIPPED[stem]
        steps = {s for (s,) in store.query("SELECT DISTINCT step FROM samples WHERE run_id = ? AND step NOT LIKE '%#%'", [run_id])}
        assert steps == {*columns, "output"}
        refresh_views(store)
        values = [v for (v,) in store.query(f"SELECT {field} FROM samples_columns WHERE run_id = ?", [run_id])]
        assert len(values) == 3 and all(v is not None for v in values)
        if stem == "label_first_lines":  # the rows of the shipped CSV, with their fields in the prompt
            msgs = store.query("SELECT messages FROM samples WHERE run_id = ? AND step = 'tone#1' ORDER BY item_idx", [run_id])
            assert "Pride and Prejudice, Jane Austen, 1813" in json.loads(msgs[0][0])[-1]["content"]
            assert {r[0] for r in store.query("SELECT label FROM samples_columns WHERE run_id = ?", [run_id])} <= {
                "cheerful", "gloomy", "ironic", "neutral"}
    finally:
        store.close()
