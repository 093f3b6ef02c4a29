"""AppTests for the Builder's value labels and its starter gallery."""

from __future__ import annotations

import pytest

from services.demo.recipe_files import demo_recipe_files, load_demo_recipe
from tests.test_builder_page import dim_uid, key, open_demo, run_page

LONG = "positive: warm, generous and specific about what worked"


def test_a_labelled_value_shows_its_label_and_renders_its_text(db_path):
    at = run_page()
    uid = dim_uid(at, "sentiment")
    at.text_area(key=f"builder_dim_{uid}_values").set_value(f"pos :: {LONG}\nnegative").run()
    assert not at.exception and not at.error
    df = at.dataframe[0].value
    assert set(df["sentiment"]) == {"pos", "negative"}  # the plan table shows the label
    pos = df[df["sentiment"] == "pos"]
    assert all(m.startswith(f"Write a {LONG} review") for m in pos["user message"])  # the prompt has the text
    # Random sampling: the items-per-value counts are by label.
    at.radio(key="builder_strategy").set_value("random").run()
    counts = [t.value for t in at.text if t.value.startswith("sentiment (")]
    assert counts and "pos " in counts[0] and LONG not in counts[0]


def test_split_name_description_values_into_labels(db_path):
    at = run_page()
    uid = dim_uid(at, "genre")
    box = f"builder_dim_{uid}_values"
    at.text_area(key=box).set_value("comedy: jokes and timing\nhorror: dread\ndrama").run()
    next(b for b in at.button if b.label.startswith("Short labels")).click().run()
    assert not at.exception
    assert key(at, box) == "comedy :: comedy: jokes and timing\nhorror :: horror: dread\ndrama"
    assert set(at.dataframe[0].value["genre"]) <= {"comedy", "horror", "drama"}


def test_gallery_offers_an_empty_recipe_and_every_starter(db_path):
    at = run_page()
    assert any("shipped starters" in i.value for i in at.info)  # the example says how to pick deliberately
    lines = [t.value for t in at.text]
    for stem in demo_recipe_files():
        recipe = load_demo_recipe(stem)
        assert any(line.startswith(f"{recipe.name} — ") and len(line) > len(recipe.name) + 10 for line in lines), stem
    at.button(key="builder_pin_start_passage_qa").click().run()
    assert not at.exception
    assert key(at, "builder_name") == "passage-question-answer"
    assert not at.info  # no longer the example
    at.button(key="builder_pin_start_empty").click().run()
    assert key(at, "builder_name") == "untitled" and key(at, "builder_dims") == []
    assert "editing: new recipe" in at.expander[0].label


@pytest.mark.browser
def test_browser_gallery_opens_a_starter(page):
    """The starter gallery in the real studio: every starter listed, one opened."""
    from playwright.sync_api import expect

    from tests.browser import screenshot, wait_for_app

    page.goto(page.url.rstrip("/") + "/prompt_builder")
    wait_for_app(page)
    page.get_by_text("Open a recipe").click()
    page.get_by_text("preference-pairs — ").wait_for()
    wait_for_app(page)  # the buttons and the tabs below paint after the gallery's text
    path = screenshot(page, "prompt_builder_gallery", full_page=False)
    assert path.stat().st_size > 20_000
    page.get_by_role("button", name="Open", exact=True).nth(list(demo_recipe_files()).index("passage_qa")).click()
    # While the rerun replaces the form, the old one is still on the page: one form, then its value.
    wait_for_app(page)
    name = page.get_by_role("textbox", name="Recipe name")
    expect(name).to_have_count(1, timeout=30_000)
    expect(name).to_have_value("passage-question-answer", timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_splitting_a_parents_values_keeps_its_dependents_lists(db_path):
    at = open_demo(run_page(), "restaurant_reviews")
    parent, child = dim_uid(at, "label"), dim_uid(at, "subtopic")
    lists = {v: key(at, f"builder_dim_{child}_for_{v}") for v in ("positive", "negative")}
    # The parent's values become "Name: description" lines; the child's lists follow their texts.
    at.session_state[f"builder_dim_{parent}_values"] = "positive: glowing and warm\nnegative: harsh and specific"
    for v, text in (("positive", "positive: glowing and warm"), ("negative", "negative: harsh and specific")):
        at.session_state[f"builder_dim_{child}_for_{text}"] = lists[v]
    at.run()
    next(b for b in at.button if b.label.startswith("Short labels")).click().run()
    assert not at.exception and not at.error
    assert key(at, f"builder_dim_{child}_for_positive") == lists["positive"]
    assert set(at.dataframe[0].value["label"]) <= {"positive", "negative"}
    df = at.dataframe[0].value
    for label, msg in zip(df["label"], df["user message"], strict=True):  # the prompt gets the whole text
        assert msg.startswith(f"Write a {label}: {'glowing and warm' if label == 'positive' else 'harsh and specific'} review")
