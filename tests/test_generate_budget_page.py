"""The Generate page's prices, budget refusal and forecast notes (AppTest against the mock backend)."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from tests.mock_openai import MockServer
from tests.test_generate_page import PAGE


@pytest.fixture
def mock():
    server = MockServer().start()
    yield server
    server.stop()


def _custom(at: AppTest, url: str, model: str) -> AppTest:
    at.selectbox(key="generate_backend").set_value("custom").run()
    at.text_input(key="generate_base_url_custom").set_value(url).run()
    return at.text_input(key="generate_model_custom").set_value(model).run()


def test_a_budget_on_an_unpriced_model_is_refused_on_the_page_before_anything_is_sent(app_env, mock):
    from resources import get_store

    at = _custom(AppTest.from_file(PAGE, default_timeout=60).run(), mock.url, "unpriced-model")
    at.number_input(key="generate_budget").set_value(1.0).run()
    assert any("has no price" in c.value for c in at.caption)  # said before the click, next to the budget
    at.button(key="generate_preview").click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "unpriced-model" in errors and "price table above" in errors and "Nothing was sent" in errors
    assert mock.state.requests == 0 and get_store().scalar("SELECT count(*) FROM runs") == 0


def test_price_table_shows_the_shipped_date_and_source_and_the_shipped_rows(app_env):
    from services.generation.run_store import shipped_prices

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    shipped = shipped_prices()
    assert any(shipped.as_of in e.label for e in at.expander if e.label.startswith("Price table"))
    assert any(shipped.as_of in c.value and "openai.com" in c.value for c in at.caption)
    prices = next(d.value for d in at.dataframe if "input_per_mtok" in d.value.columns)
    row = prices[prices["model"] == "gpt-4o-mini"].iloc[0]
    assert (row["input_per_mtok"], row["output_per_mtok"]) == (0.15, 0.60)


def test_the_rough_forecast_counts_the_prompts_it_shows_and_says_why_it_has_no_time(app_env):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    note = next(md.value for md in at.markdown if md.value.startswith("**Rough forecast**"))
    used = int(re.search(r"the (\d+) rendered prompt", note).group(1))
    shown = next(e.label for e in at.expander if e.label.startswith("Rendered prompts"))
    assert f"first {used} item(s)" in shown
    metrics = {m.label: m for m in at.metric}
    assert metrics["Time"].value == "—"
    assert any("No time before a preview" in c.value for c in at.caption)


def test_a_budget_on_the_built_in_model_is_said_to_be_unreachable(app_env):
    from services.generation.run_setup import FREE_NOTE

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.number_input(key="generate_budget").set_value(0.5).run()
    assert any(c.value == FREE_NOTE for c in at.caption)
