"""The budget cap from the command line, against the mock server: the README's example stops at its
cap, a budget on an unpriced model is refused before anything is sent, --price-in/--price-out price
the run's model. Imports only what the command line has always had, so it tests behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli.main import main
from services.core.store import Store
from services.generation.run_store import Price, get_price
from services.generation.runner import worst_case_cost
from tests.mock_openai import MockServer

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
NEWS = ROOT / "data" / "recipes" / "news_attrprompt.yaml"


@pytest.fixture
def mock():
    server = MockServer().start()
    yield server
    server.stop()


def _cli(tmp_path: Path, url: str, *extra: str) -> list[str]:
    return ["run", str(NEWS), "--backend", "openai", "--base-url", url, "--db", str(tmp_path / "cli.duckdb"), "--quiet", *extra]


def _worst_case(tmp_path: Path) -> float:
    """The largest worst-case cost the runner could have reserved for one of the run's requests."""
    store = Store(tmp_path / "cli.duckdb")
    try:
        rows = store.query("SELECT messages, params, model FROM samples WHERE error IS NULL")
        price = get_price(store, rows[0][2])
    finally:
        store.close()
    return max(worst_case_cost(price, json.loads(m), int(json.loads(p).get("max_tokens") or 256)) for m, p, _ in rows)


def _spent(tmp_path: Path) -> tuple[str, str, int, float, float]:
    store = Store(tmp_path / "cli.duckdb")
    try:
        status, error = store.query("SELECT status, error FROM runs")[0]
        n, spent, one = store.query("SELECT count(*), sum(cost_usd), max(cost_usd) FROM samples WHERE error IS NULL")[0]
        return status, error, n, spent, one
    finally:
        store.close()


def test_readme_budget_example_stops_at_its_cap(tmp_path, mock, monkeypatch, capsys):
    example = "python -m services run data/recipes/news_attrprompt.yaml --backend openai --model gpt-4o-mini --budget 0.50"
    assert example in README.read_text(encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    cap = 0.001  # the example's cap, shrunk to a few dozen of the mock's requests at gpt-4o-mini's price
    rc = main(_cli(tmp_path, mock.url, "--model", "gpt-4o-mini", "--budget", str(cap), "--concurrency", "1"))
    out = capsys.readouterr().out
    status, error, n, spent, one = _spent(tmp_path)
    assert rc == 1 and status == "cancelled" and "budget cap" in error and "budget cap" in out
    worst = _worst_case(tmp_path)
    assert one > 0 and cap - worst < spent <= cap  # never past the cap; stopped when one more request might be
    assert mock.state.requests == n < 200  # the plan has hundreds of items: it stopped early


def test_with_concurrency_requests_in_flight_never_take_the_run_past_its_cap(tmp_path, mock, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    cap = 0.001
    assert main(_cli(tmp_path, mock.url, "--model", "gpt-4o-mini", "--budget", str(cap))) == 1  # default concurrency 4
    status, error, n, spent, one = _spent(tmp_path)
    assert status == "cancelled" and "budget cap" in error
    assert cap - _worst_case(tmp_path) < spent <= cap  # in-flight requests are reserved at their worst case
    assert mock.state.requests == n


def test_cli_refuses_a_budget_on_an_unpriced_model_before_sending(tmp_path, mock, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    rc = main(_cli(tmp_path, mock.url, "--model", "mock-model", "--budget", "0.5"))
    err = capsys.readouterr().err
    assert rc == 2 and "--price-in" in err and "--price-out" in err and "mock-model" in err
    assert mock.state.requests == 0
    store = Store(tmp_path / "cli.duckdb")
    assert store.scalar("SELECT count(*) FROM runs") == 0
    store.close()
    assert main(_cli(tmp_path, mock.url, "--model", "mock-model", "--budget", "0.5", "--price-in", "1")) == 2
    assert "give both" in capsys.readouterr().err


def test_cli_price_flags_price_the_runs_model_and_the_cap_fires(tmp_path, mock, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    rc = main(_cli(tmp_path, mock.url, "--model", "mock-model", "--price-in", "100", "--price-out", "200",
                   "--budget", "0.5", "--concurrency", "1"))
    assert rc == 1 and "price of mock-model: $100 in, $200 out" in capsys.readouterr().out
    status, error, n, spent, one = _spent(tmp_path)
    assert status == "cancelled" and "budget cap" in error and 0.5 - _worst_case(tmp_path) < spent <= 0.5 and 0 < n < 200
    store = Store(tmp_path / "cli.duckdb")
    assert get_price(store, "mock-model") == Price(100, 200)  # kept in the table for later runs
    store.close()
