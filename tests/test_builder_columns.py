"""AppTest of the Prompt Builder's columns: edit without YAML, the column graph, "Test one row"."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.mock_openai import MockServer

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "prompt_builder.py")


def _open(stem: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="builder_pick_demo").select(stem).run()
    next(b for b in at.button if b.label == "Open demo").click().run()
    assert not at.exception, at.exception
    return at


def _names(at: AppTest) -> list[str]:
    return [at.session_state[f"builder_col_{u}_name"] for u in at.session_state["builder_cols"]]


@pytest.fixture
def mock():
    server = MockServer().start()
    yield server
    server.stop()


def test_columns_are_edited_reordered_and_checked_without_yaml(db_path):
    at = _open("preference_pairs")
    assert _names(at) == ["instruction", "answers", "preference"] and not at.error
    assert len(at.get("graphviz_chart")) == 1  # the column graph is drawn
    dot = at.get("graphviz_chart")[0].proto.spec
    assert '"col:answers" -> "col:preference"' in dot and '"dim:topic" -> "col:instruction"' in dot
    # add a judge: its default prompt reads `output`, which this recipe does not have: named before sending
    at.selectbox(key="builder_pin_new_col_kind").select("judge").run()
    next(b for b in at.button if b.label == "Add column").click().run()
    assert _names(at)[-1] == "judge_1"
    errors = " ".join(e.value for e in at.error)
    assert "column 'judge_1', field rubric" in errors and "refers to 'output'" in errors
    uid = at.session_state["builder_cols"][-1]
    at.text_input(key=f"builder_col_{uid}_rubric").set_value("Is the better answer correct?").run()
    at.text_area(key=f"builder_col_{uid}_user").set_value("Judge: {{ preference.chosen }}").run()
    assert not at.error, [e.value for e in at.error]
    # move it above the pairwise judge it reads: the order is checked
    at.button(key=f"builder_col_{uid}_up").click().run()
    assert _names(at) == ["instruction", "answers", "judge_1", "preference"]
    assert any("refers to 'preference', which comes after it" in e.value for e in at.error)
    at.button(key=f"builder_col_{uid}_down").click().run()
    assert not at.error
    # a schema that does not parse, on a structured column
    at.selectbox(key=f"builder_col_{uid}_kind").select("structured").run()
    at.text_area(key=f"builder_col_{uid}_schema").set_value('{"type": "object", ').run()
    assert any("column 'judge_1', field output_schema" in e.value and "not valid JSON" in e.value for e in at.error)


def test_test_one_row_shows_each_column_prompt_and_answer(app_env, mock):
    at = _open("instruction_response_judge")
    # after saving, the header names the saved version, not what was opened
    next(b for b in at.button if "Save as a new version" in b.label).click().run()
    assert any("editing: saved version instruction-response-judge v1" in e.label for e in at.expander), [e.label for e in at.expander]
    at.selectbox(key="builder_pin_test_backend").select("custom").run()
    at.text_input(key="builder_pin_test_url_custom").set_value(mock.url).run()
    at.text_input(key="builder_pin_test_model_custom").set_value("mock-model").run()
    at.button(key="builder_pin_test_go").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    heads = [e.label for e in at.expander]
    assert [h for h in heads if h.split(" ")[0] in ("instruction", "response", "quality")] == [
        "instruction (text)", "response (text)", "quality (judge)"]
    texts = " ".join(t.value for t in at.text)
    assert "[user] Write one easy request about coding" in texts and "→ Sample for: " in texts
    assert mock.state.completions_ok == 3  # one item, three columns


def test_an_empty_task_is_named_before_it_sends_an_empty_system_message(db_path):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    next(b for b in at.button if b.label == "New empty recipe").click().run()
    assert any("task specification is empty" in w.value for w in at.warning)
    at.text_area(key="builder_task").set_value("You write reviews.").run()
    assert not any("task specification is empty" in w.value for w in at.warning)


def test_parent_value_files_group_values_by_parent():
    from services.recipes.value_import import parse_parent_values

    groups, bad = parse_parent_values("sub.csv", b"parent,value\npositive,great food\npositive,kind staff\nnegative,cold soup\nlonely\n")
    assert {k: [v.text for v in vs] for k, vs in groups.items()} == {"positive": ["great food", "kind staff"], "negative": ["cold soup"]}
    assert bad == ["line 5: expected two cells, parent,value; got ['lonely']"]


def test_random_sampling_shows_the_items_each_value_got(db_path):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.radio(key="builder_strategy").set_value("random").run()
    at.number_input(key="builder_n_items").set_value(40).run()
    assert not at.exception, at.exception
    exp = next(e for e in at.expander if e.label == "Items per value (random sampling)")
    lines = [t.value for t in exp.text]
    assert [line.split(" (")[0] for line in lines] == ["sentiment", "genre"] and all("(40 items)" in line for line in lines)
    counts = [int(part.rsplit(" ", 1)[1]) for part in lines[0].split(": ", 1)[1].split(" · ")]
    assert sum(counts) == 40 and "positive" in lines[0] and "negative" in lines[0]  # the whole plan, per value


@pytest.mark.browser
def test_browser_columns_tab_and_graph(page):
    """Open a column recipe in the real studio: the Columns tab and the drawn column graph."""
    from tests.browser import screenshot, scroll_to, wait_for_app

    page.goto(page.url.rstrip("/") + "/prompt_builder")
    wait_for_app(page)
    page.get_by_text("Open a recipe").click()
    page.get_by_role("combobox", name="Demo recipe").click()
    page.keyboard.type("preference_pairs")  # the list is long and virtualised: filter it as a user would
    page.get_by_role("option", name="preference_pairs", exact=True).click()
    page.get_by_role("button", name="Open demo").click()
    wait_for_app(page)
    page.get_by_role("tab", name="5 · Columns").click()
    wait_for_app(page)
    page.get_by_role("textbox", name="Rubric").first.wait_for()
    assert screenshot(page, "builder_columns_tab", full_page=False).stat().st_size > 20_000
    graph = page.locator('[data-testid="stGraphVizChart"] svg').first
    graph.wait_for()
    scroll_to(graph)
    drawn = graph.text_content()
    assert "preference" in drawn and "candidates ×2" in drawn
    assert screenshot(page, "builder_column_graph", full_page=False).stat().st_size > 20_000
    assert page.locator('[data-testid="stException"]').count() == 0


def test_the_generate_page_runs_an_annotation_recipe_over_its_shipped_rows(app_env, mock):
    import time

    gen = str(Path(__file__).resolve().parent.parent / "app_pages" / "generate.py")
    at = AppTest.from_file(gen, default_timeout=60).run()
    at.selectbox(key="generate_recipe").set_value("demo: label_first_lines").run()
    assert not at.exception, at.exception
    assert any("16 rows of dataset 'first-lines'" in c.value and "tone → label" in c.value for c in at.caption)
    at.selectbox(key="generate_backend").set_value("custom").run()
    at.text_input(key="generate_base_url_custom").set_value(mock.url).run()
    at.text_input(key="generate_model_custom").set_value("mock-model").run()
    at.number_input(key="generate_n_preview").set_value(2).run()
    at.button(key="generate_preview").click().run()
    for _ in range(100):
        if {m.label: m.value for m in at.metric}.get("Generated") == "2":
            break
        time.sleep(0.2)
        at.run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["Generated"] == "2"
    assert mock.state.completions_ok == 2 * 3  # three votes per row
