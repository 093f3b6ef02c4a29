"""`python -m services curate` scores a pipeline's LLM-judge step through the run's backend options."""

from __future__ import annotations

import pandas as pd
import pytest

from services.cli.main import main
from services.core.store import Store
from services.curation.judge_step import cached_scores
from tests.explore_data import insert_run
from tests.mock_openai import MockServer

# The mock answers a judge with the score a [[score:N]] directive in the sample asks for.
TEXTS = [("A clear, kind review of the pasta [[score:5]]", {"label": "positive"}),
         ("Rambling words with no point at all [[score:1]]", {"label": "negative"}),
         ("A fair review of a slow evening [[score:3]]", {"label": "negative"}),
         ("A clear, kind review of the pasta [[score:5]]", {"label": "positive"})]  # the same text: scored once
RUBRIC = "Is this a useful restaurant review?"


@pytest.fixture
def mock():
    server = MockServer(api_key="sk-judge").start()
    yield server
    server.stop()


def _setup(tmp_path):
    db = tmp_path / "judge.duckdb"
    store = Store(db)
    insert_run(store, "r1", TEXTS)
    store.close()
    pipeline = tmp_path / "judged.yaml"
    pipeline.write_text(f"name: judged\nsteps:\n- kind: judge\n  rubric: {RUBRIC}\n  judge_model: custom/mock-model\n"
                        "  threshold: 3\n  unscored: drop\n")
    return db, pipeline


def test_curate_scores_unscored_samples_with_the_judge_backend(tmp_path, mock, monkeypatch, capsys):
    db, pipeline = _setup(tmp_path)
    out = tmp_path / "kept.jsonl"
    monkeypatch.setenv("JUDGE_KEY", "sk-judge")
    args = ["curate", "--run", "r1", "--pipeline", str(pipeline), "--out", str(out), "--format", "jsonl", "--db", str(db),
            "--backend", "custom", "--base-url", mock.url, "--api-key-env", "JUDGE_KEY", "--timeout", "5", "--max-retries", "1"]
    assert main(args) == 0, capsys.readouterr()
    printed = capsys.readouterr().out
    assert "3 scored now" in printed and "kept 3 of 4 samples" in printed
    assert mock.state.requests == 3  # three distinct texts, each judged once
    store = Store(db)
    scores = cached_scores(store, RUBRIC, "custom/mock-model", [t for t, _ in TEXTS])
    store.close()
    assert sorted(s for s, _ in scores.values()) == [1.0, 3.0, 5.0]
    kept = pd.read_json(out, lines=True)
    assert "Rambling" not in " ".join(kept["text"]) and len(kept) == 3
    # a second pass pays nothing: every text is scored already
    assert main(args) == 0 and mock.state.requests == 3
    assert "0 scored now, 3 already scored" in capsys.readouterr().out


def test_curate_without_the_key_leaves_samples_unscored_and_says_so(tmp_path, mock, capsys):
    db, pipeline = _setup(tmp_path)
    out = tmp_path / "kept.jsonl"
    code = main(["curate", "--run", "r1", "--pipeline", str(pipeline), "--out", str(out), "--format", "jsonl", "--db", str(db),
                 "--backend", "custom", "--base-url", mock.url, "--max-retries", "0"])
    captured = capsys.readouterr()
    assert code == 0 and "3 failed" in captured.out and "left unscored" in captured.err
    assert "kept 0 of 4 samples" in captured.out  # unscored: drop


def test_no_judge_sends_nothing(tmp_path, mock, capsys):
    db, pipeline = _setup(tmp_path)
    out = tmp_path / "kept.jsonl"
    assert main(["curate", "--run", "r1", "--pipeline", str(pipeline), "--out", str(out), "--format", "jsonl", "--db", str(db),
                 "--backend", "custom", "--base-url", mock.url, "--no-judge"]) == 0
    assert mock.state.requests == 0 and "kept 0 of 4 samples" in capsys.readouterr().out
