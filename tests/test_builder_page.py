"""AppTest for the Prompt Builder, and a browser test against the real studio."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "prompt_builder.py")


def run_page(timeout: float = 60) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=timeout)
    at.run()
    assert not at.exception, at.exception
    return at


def key(at: AppTest, k: str):
    return at.session_state[k]


def dim_uid(at: AppTest, name: str) -> str:
    for uid in at.session_state["builder_dims"]:
        if at.session_state[f"builder_dim_{uid}_name"] == name:
            return uid
    raise KeyError(name)


def open_demo(at: AppTest, stem: str) -> AppTest:
    at.selectbox(key="builder_pick_demo").select(stem).run()
    next(b for b in at.button if b.label == "Open demo").click().run()
    assert not at.exception, at.exception
    return at


def new_empty(at: AppTest) -> AppTest:
    next(b for b in at.button if b.label == "New empty recipe").click().run()
    return at


def test_default_page_renders_a_plan(db_path):
    at = run_page()
    assert at.title[0].value == "Prompt Builder"
    assert not at.error and not at.warning
    assert {m.label: m.value for m in at.metric}["Cells in the grid"] == "6"
    assert len(at.dataframe[0].value) == 5


def test_unprovided_template_variables_are_listed(db_path):
    at = new_empty(run_page())
    at.text_area(key="builder_user").set_value("Write a {{ sentiment }} review of a {{ genre }} movie.").run()
    assert any("sentiment" in w.value and "genre" in w.value for w in at.warning)
    assert any("'sentiment' is undefined" in e.value for e in at.error)


def test_open_demo_preview_and_save_version(db_path):
    at = open_demo(run_page(), "restaurant_reviews")
    assert key(at, "builder_name") == "restaurant-reviews"
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Items in the plan"] == "200"
    df = at.dataframe[0].value
    assert len(df) == 5 and {"label", "subtopic", "cuisine", "user message"} <= set(df.columns)
    next(b for b in at.button if "Save as a new version" in b.label).click().run()
    assert not at.exception
    assert any("saved as" in s.value for s in at.success)


def test_bad_inputs_show_messages_next_to_widgets_and_keep_the_form(db_path):
    at = open_demo(run_page(), "restaurant_reviews")
    uid = dim_uid(at, "cuisine")
    at.text_area(key=f"builder_dim_{uid}_values").set_value("Thai\nthai\nItalian | -1\nMexican | lots").run()
    errors = " ".join(e.value for e in at.error)
    assert "duplicate value 'thai'" in errors
    assert "must be a positive number" in errors and "'lots' is not a number" in errors
    assert "fix them to see the plan" in errors
    # The rest of the form is untouched.
    assert key(at, "builder_name") == "restaurant-reviews"
    at.text_area(key=f"builder_dim_{uid}_values").set_value("Thai\nItalian").run()
    at.text_area(key="builder_user").set_value("Hello {{ label }\n").run()
    assert any("user template, line 1" in e.value for e in at.error)
    at.text_area(key="builder_user").set_value("{{ ''.__class__.__mro__ }}").run()
    assert any("sandbox" in e.value for e in at.error)


def test_add_rename_reorder_delete_dimensions(db_path):
    at = new_empty(run_page())
    at.text_area(key="builder_user").set_value("Write a {{ sentiment }} review of a {{ genre }} movie.").run()
    at.button(key="builder_add").click().run()
    at.button(key="builder_add").click().run()
    first, second = at.session_state["builder_dims"]
    at.text_input(key=f"builder_dim_{first}_name").set_value("sentiment").run()
    at.text_area(key=f"builder_dim_{first}_values").set_value("positive\nnegative").run()
    at.text_input(key=f"builder_dim_{second}_name").set_value("genre").run()
    at.text_area(key=f"builder_dim_{second}_values").set_value("comedy\nhorror\ndrama").run()
    assert not at.error
    assert {m.label: m.value for m in at.metric}["Cells in the grid"] == "6"
    at.button(key=f"builder_dim_{second}_up").click().run()
    assert at.session_state["builder_dims"] == [second, first]
    at.button(key=f"builder_dim_{first}_del").click().run()
    assert at.session_state["builder_dims"] == [second]
    assert any("sentiment" in w.value for w in at.warning)  # the template still uses it


def test_enormous_grid_is_reported_not_built(db_path):
    at = new_empty(run_page())
    for _ in range(5):
        at.button(key="builder_add").click().run()
    uids = at.session_state["builder_dims"]
    big = "\n".join(f"v{i}" for i in range(100))
    for n, uid in enumerate(uids):
        at.text_input(key=f"builder_dim_{uid}_name").set_value(["sentiment", "genre", "c", "d", "e"][n]).run()
        at.text_area(key=f"builder_dim_{uid}_values").set_value(big).run()
    assert {m.label: m.value for m in at.metric}["Cells in the grid"] == "10,000,000,000"
    assert any("too many to materialise" in w.value for w in at.warning)
    at.radio(key="builder_strategy").set_value("random").run()
    assert not at.exception and len(at.dataframe[0].value) == 5


@pytest.mark.browser
def test_browser_build_and_preview(page):
    """Build a small recipe from an empty one in the real studio, preview it, then open a demo."""
    from tests.browser import screenshot, scroll_to, wait_for_app

    page.goto(page.url.rstrip("/") + "/prompt_builder")
    wait_for_app(page)
    page.get_by_text("Open a recipe").click()
    page.get_by_role("button", name="New empty recipe").click()
    wait_for_app(page)
    user = page.get_by_role("textbox", name="User message template (Jinja2)")
    user.fill("Write a {{ mood }} haiku about {{ season }}.")
    user.press("Control+Enter")
    wait_for_app(page)
    page.get_by_role("tab", name="2 · Dimensions").click()
    for _ in range(2):
        page.get_by_role("button", name="Add dimension").click()
        wait_for_app(page)
    names = page.get_by_role("textbox", name="Name", exact=True)
    values = page.get_by_role("textbox", name=re.compile(r"^Values: one per line"))
    for i, (name, vals) in enumerate((("mood", "calm\njoyful"), ("season", "winter\nspring\nautumn"))):
        names.nth(i).fill(name)
        names.nth(i).press("Enter")
        wait_for_app(page)
        values.nth(i).fill(vals)
        values.nth(i).press("Control+Enter")
        wait_for_app(page)
    scroll_to(page.get_by_text("Cells in the grid").first)
    # The first item in full, shown as a code block below the preview grid.
    page.locator("code", has_text="Write a calm haiku about winter.").first.wait_for()
    assert page.get_by_text("6", exact=True).first.is_visible()  # 2 x 3 cells
    path = screenshot(page, "prompt_builder_built", full_page=False)
    assert path.stat().st_size > 20_000
    assert page.locator('[data-testid="stException"]').count() == 0
