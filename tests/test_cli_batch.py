"""`python -m services batch submit|status|collect|resubmit` against the mock batch endpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli.main import main
from services.core.store import Store
from tests.mock_batch import BatchMock

ROOT = Path(__file__).resolve().parent.parent
NEWS = ROOT / "data" / "recipes" / "news_attrprompt.yaml"


@pytest.fixture
def mock(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-test")
    with BatchMock() as m:
        yield m


def _counts(db: Path) -> tuple[int, int, str]:
    store = Store(db)
    try:
        ok, bad = store.query("SELECT count(*) FILTER (WHERE error IS NULL), count(*) FILTER (WHERE error IS NOT NULL) FROM samples")[0]
        return ok, bad, store.query("SELECT run_id FROM runs")[0][0]
    finally:
        store.close()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_submit_status_collect_resubmit(tmp_path, mock, capsys, provider):
    db = str(tmp_path / "b.duckdb")
    mock.fail_first = 1
    assert main(["batch", "submit", str(NEWS), "--provider", provider, "--model", "gpt-4o-mini", "--base-url", mock.url,
                 "--limit", "4", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "sent batch-" in out and "4 line(s)" in out
    run_id = _counts(Path(db))[2]
    assert main(["batch", "status", "--run", run_id, "--db", db]) == 0
    assert "completed" in capsys.readouterr().out or provider == "anthropic"
    assert main(["batch", "collect", "--run", run_id, "--db", db, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "3 imported, 1 failed" in out and f"run {run_id} interrupted: 3 of 4 generated, 1 failed" in out
    assert _counts(Path(db))[:2] == (3, 1)
    # the second collect adds nothing
    assert main(["batch", "collect", "--run", run_id, "--db", db, "--quiet"]) == 0
    assert _counts(Path(db))[:2] == (3, 1)
    assert main(["batch", "resubmit", "--run", run_id, "--db", db]) == 0
    assert "1 failed line(s) will be sent again" in capsys.readouterr().out
    assert main(["batch", "collect", "--run", run_id, "--db", db, "--quiet"]) == 0
    assert f"run {run_id} finished: 4 of 4 generated" in capsys.readouterr().out
    assert _counts(Path(db))[:2] == (4, 0)


def test_wrong_key_is_one_line_on_stderr(tmp_path, mock, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-nope")
    db = str(tmp_path / "b.duckdb")
    assert main(["batch", "submit", str(NEWS), "--provider", "openai", "--base-url", mock.url, "--limit", "2", "--db", db]) == 1
    err = capsys.readouterr().err
    assert "Unauthorised (HTTP 401)" in err and "$OPENAI_API_KEY" in err and "sk-nope" not in err and "Traceback" not in err


def test_vllm_file_then_collect_with_output(tmp_path, capsys):
    db = str(tmp_path / "b.duckdb")
    assert main(["batch", "submit", str(NEWS), "--provider", "vllm", "--model", "my-model", "--limit", "2", "--db", db,
                 "--folder", str(tmp_path / "files")]) == 0
    out = capsys.readouterr().out
    assert "vllm run-batch -i" in out and "--model my-model" in out
    src = next((tmp_path / "files").glob("*.input.jsonl"))
    lines = [json.loads(x) for x in src.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["body"]["model"] == "my-model"
    written = tmp_path / "elsewhere.jsonl"
    written.write_text("\n".join(json.dumps({"id": "x", "custom_id": ln["custom_id"], "error": None, "response": {
        "status_code": 200, "body": {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}], "usage": {}}}})
        for ln in lines) + "\n")
    run_id = _counts(Path(db))[2]
    assert main(["batch", "collect", "--run", run_id, "--output", str(written), "--db", db, "--quiet"]) == 0
    assert _counts(Path(db))[:2] == (2, 0)


def test_collect_wait_polls_until_the_batch_is_done(tmp_path, mock, capsys):
    db = str(tmp_path / "b.duckdb")
    mock.polls_until_done = 3
    assert main(["batch", "submit", str(NEWS), "--provider", "openai", "--base-url", mock.url, "--limit", "2", "--db", db]) == 0
    run_id = _counts(Path(db))[2]
    assert main(["batch", "collect", "--run", run_id, "--db", db, "--quiet"]) == 1
    assert "Collect again later" in capsys.readouterr().err
    assert main(["batch", "collect", "--run", run_id, "--db", db, "--quiet", "--wait", "--every", "0.05"]) == 0
    assert _counts(Path(db))[:2] == (2, 0)
