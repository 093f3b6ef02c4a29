"""The Generate page's batch panel against the mock batch endpoints: compare, submit, collect with
progress, a malformed output line said in words, resubmit of what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from services.core.store import Store
from tests.mock_batch import BatchMock

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "generate.py")


@pytest.fixture
def mock():
    with BatchMock() as m:
        yield m


def _samples(db: Path) -> tuple[int, int]:
    from resources import get_store

    store: Store = get_store()
    return store.query("SELECT count(*) FILTER (WHERE error IS NULL), count(DISTINCT run_id) FROM samples")[0]


def _texts(at: AppTest, kind: str) -> str:
    return " ".join(e.value for e in getattr(at, kind))


def test_send_a_run_as_a_batch_collect_it_and_resubmit_the_unread_line(app_env, mock):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    at.text_input(key="generate_batch_url_openai").set_value(mock.url).run()
    at.text_input(key="generate_batch_model_openai").set_value("gpt-4o-mini").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Batch time"] == "≤ 24.0 h" and metrics["Live cost"] != "no price set"
    # the batch costs half the live price on the same tokens (gpt-4o-mini is in the shipped prices)
    assert metrics["Batch cost"] != metrics["Live cost"]
    assert "50% of the standard price" in _texts(at, "caption")
    mock.malformed_line = True
    at.button(key="generate_batch_submit_new").click().run()
    assert not at.exception, at.exception
    assert "Sent batch-" in _texts(at, "success"), _texts(at, "error")
    n_lines = int(mock.batches[next(iter(mock.batches))]["request_counts"]["total"])
    assert n_lines > 1
    at.button(key="generate_batch_collect").click().run()
    assert not at.exception, at.exception
    errors = _texts(at, "error")
    assert "could not be read" in errors and "line 1" in errors and f"{n_lines - 1} imported" in errors
    assert _samples(app_env) == (n_lines - 1, 1)
    mock.malformed_line = False
    at.button(key="generate_batch_submit_run").click().run()
    assert "Sent batch-" in _texts(at, "success") and ": 1 line(s)" in _texts(at, "success")
    at.button(key="generate_batch_collect").click().run()
    assert not at.exception, at.exception
    assert "Collected batch-" in _texts(at, "success")
    assert _samples(app_env) == (n_lines, 1)
    assert len(at.dataframe) >= 1  # the batches of the run, as a table


def test_a_missing_key_is_shown_before_sending(app_env, mock, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="generate_batch_provider").set_value("anthropic").run()
    assert "$ANTHROPIC_API_KEY is not set" in _texts(at, "warning")
    at.text_input(key="generate_batch_url_anthropic").set_value(mock.url).run()
    at.button(key="generate_batch_submit_new").click().run()
    assert not at.exception, at.exception
    assert "No key for Anthropic Message Batches" in _texts(at, "error") and not mock.requests
    # with a wrong key the provider's 401 is said in words
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-wrong")
    at.button(key="generate_batch_submit_new").click().run()
    assert "Unauthorised (HTTP 401)" in _texts(at, "error") and "ak-wrong" not in _texts(at, "error")
