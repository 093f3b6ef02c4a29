"""Prices and the budget cap: the shipped price table, user edits winning, and a budget refused
where it could not be kept (the command line's side is in test_cli_budget.py)."""

from __future__ import annotations

import re

import pytest
import yaml

from services.core.store import Store
from services.generation.run_setup import FREE_NOTE, PriceNeeded, check_budget
from services.generation.run_store import PRICES_FILE, Price, get_price, list_prices, set_price, set_prices, shipped_prices
from tests.run_helpers import plan_run, recipe


def test_price_file_is_dated_sourced_and_covers_the_common_models():
    body = yaml.safe_load(PRICES_FILE.read_text(encoding="utf-8"))
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", body["as_of"])
    assert "openai.com" in body["source"]
    table = shipped_prices()
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3-mini", "o4-mini"):
        p = table.prices[model]
        assert 0 < p.input_per_mtok < p.output_per_mtok < 100, model
    assert table.prices["gpt-4o-mini"] == Price(0.15, 0.60)


def test_a_fresh_store_prices_the_shipped_models_and_a_users_edit_wins(tmp_path):
    path = tmp_path / "studio.duckdb"
    store = Store(path)
    assert get_price(store, "gpt-4o-mini") == Price(0.15, 0.60)
    assert "gpt-4.1-nano" in {m for m, _, _ in list_prices(store)}  # the editor shows them, as rows of the table
    set_price(store, "gpt-4o-mini", Price(9.0, 9.0))
    store.close()
    store = Store(path)  # a restart copies shipped rows again, but only for models the table lacks
    try:
        assert get_price(store, "gpt-4o-mini") == Price(9.0, 9.0)
        assert get_price(store, "gpt-4o") == Price(2.50, 10.00)
        set_prices(store, {"mine": Price(1, 2)})  # the editor's save replaces the table ...
        assert get_price(store, "gpt-4o") is None  # ... and a deleted row stays deleted in this process
    finally:
        store.close()


def test_a_budget_on_a_model_without_a_price_is_refused_before_anything_is_written(store):
    with pytest.raises(PriceNeeded) as err:
        plan_run(store, recipe(n_items=3), budget_usd=1.0)  # model "mock-model": no price
    msg = str(err.value)
    assert "mock-model" in msg and "price table" in msg and "--price-in" in msg and "Nothing was sent" in msg
    assert store.scalar("SELECT count(*) FROM runs") == 0 and store.scalar("SELECT count(*) FROM plans") == 0
    assert plan_run(store, recipe(n_items=3))  # without a budget it may run (cost unknown)
    set_price(store, "mock-model", Price(0, 0))  # a self-hosted model priced at 0 may carry a budget
    assert plan_run(store, recipe(n_items=3), budget_usd=1.0)


def test_the_built_in_model_is_free_so_its_budget_is_fine_and_said_to_be_unreachable(store):
    assert check_budget(store, "local", "SmolLM2-135M-Instruct", 0.5) == FREE_NOTE
    assert "cannot be exceeded" in FREE_NOTE
    assert check_budget(store, "local", "SmolLM2-135M-Instruct", None) is None


def test_a_missing_price_file_ships_no_prices_instead_of_breaking_runs(tmp_path):
    table = shipped_prices(tmp_path / "absent.yaml")
    assert table.prices == {} and "could not be read" in table.source
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: {gpt-4o: {input: cheap}}", encoding="utf-8")
    assert shipped_prices(broken).prices == {}
