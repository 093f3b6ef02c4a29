"""The whole loop as a new user walks it, in the real studio and headless Chromium.

Open the studio, load the demo, open a recipe and preview it, generate five samples with the
built-in model, open the map, compare two filter pipelines, run an SQL query and export the
curated set. Each step saves a screenshot under tests/screenshots/ (the README shows them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser import README_SCREENSHOTS, browser_page, run_studio, screenshot, scroll_to, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.real_model]


def shot(pg, name: str) -> None:
    pg.mouse.move(5, 5)  # no tooltip over the page
    pg.wait_for_timeout(600)
    path = screenshot(pg, name, full_page=False, directory=README_SCREENSHOTS)
    assert path.stat().st_size > 20_000, f"{name} looks empty"
    assert pg.locator('[data-testid="stException"]').count() == 0, f"an exception is shown on {name}"


def go(pg, url: str) -> None:
    pg.goto(url)
    wait_for_app(pg, timeout=120_000)


def test_new_user_walks_the_whole_loop(tmp_path):
    # With the start-up warm-up on, as `make run` has it: it loads the real embedder and compiles UMAP.
    with run_studio(tmp_path / "studio.duckdb", extra_env={"STUDIO_WARMUP": "1"}) as url, \
            browser_page(width=1440, height=1100) as pg:
        try:
            walk(pg, url)
        except Exception:
            screenshot(pg, "full_loop_failure", full_page=False)  # tests/artifacts: what the user saw
            raise


def walk(pg, url: str) -> None:
    # 1. Home: load the demo (twice: the second load adds nothing).
    go(pg, url)
    pg.get_by_role("button", name="Load the demo").click()
    pg.get_by_text("Loaded 2 runs", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(pg)
    pg.get_by_role("button", name="Load the demo").click()
    pg.get_by_text("already loaded", exact=False).first.wait_for(timeout=60_000)
    assert pg.get_by_text("800", exact=True).count() == 0  # samples were not doubled
    shot(pg, "home")

    # 2. Prompt Builder: open the AttrPrompt-style demo recipe, preview it.
    go(pg, url + "/prompt_builder")
    pg.get_by_text("Open a recipe").click()
    pg.get_by_role("combobox", name="Demo recipe").click()
    pg.keyboard.type("restaurant_reviews")  # the list is long and virtualised: filter it as a user would
    pg.get_by_role("option", name="restaurant_reviews", exact=True).click()
    pg.get_by_role("button", name="Open demo").click()
    wait_for_app(pg)
    pg.get_by_text("rendered exactly as they would be sent", exact=False).first.wait_for()
    scroll_to(pg.get_by_text("Plan", exact=True).first)
    shot(pg, "prompt_builder")

    # 3. Generate five samples with the built-in model.
    go(pg, url + "/generate")
    pg.get_by_text("demos and smoke tests", exact=False).first.wait_for()
    for label, value in (("Max tokens", "24"), ("Preview items", "5")):
        box = pg.get_by_label(label)
        box.fill(value)
        box.press("Enter")
        wait_for_app(pg)
    pg.get_by_role("button", name="Generate preview").click()
    pg.get_by_text("finished: 5 of 5 samples", exact=False).first.wait_for(timeout=240_000)
    pg.wait_for_timeout(2500)  # the live fragment sees the end and reruns the whole page once
    wait_for_app(pg)
    scroll_to(pg.get_by_text("Newest samples", exact=False).first)
    shot(pg, "generate")

    # 4. Explore: the map of the two demo runs, clustered (embeddings ship with the demo).
    go(pg, url + "/explore")
    pg.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .legendtext')].some(e => /^0 \\(/.test(e.textContent))",
        timeout=300_000,
    )
    wait_for_app(pg)
    pg.wait_for_timeout(1000)
    shot(pg, "explore")

    # 5. Compare two filter pipelines on a demo run.
    go(pg, url + "/compare_filters")
    pg.get_by_role("combobox", name="Run").click()
    pg.get_by_role("option", name="AttrPrompt-style", exact=False).click()
    wait_for_app(pg, timeout=120_000)
    pg.get_by_text("Kept share", exact=True).first.wait_for(timeout=120_000)
    pg.locator('[data-testid="stDataFrame"] canvas').first.wait_for()
    pg.wait_for_timeout(1000)
    shot(pg, "compare_filters")

    # 6. Export the curated set (JSONL) and check what came down.
    pg.get_by_role("tab", name="Save, apply, export").click()
    with pg.expect_download(timeout=60_000) as dl:
        pg.get_by_role("button", name="JSONL").click()
    lines = [json.loads(ln) for ln in Path(dl.value.path()).read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert lines and {"text", "condition", "model", "recipe_hash"} <= set(lines[0])

    # 7. SQL: an example query, run.
    go(pg, url + "/sql")
    pg.get_by_role("combobox", name="Example queries").click()
    pg.get_by_role("option").first.click()
    wait_for_app(pg)
    pg.get_by_role("button", name="Use this example").click()
    wait_for_app(pg)
    pg.get_by_role("button", name="Run", exact=True).click()
    pg.get_by_text("rows", exact=False).first.wait_for()
    wait_for_app(pg)
    scroll_to(pg.get_by_role("button", name="Run", exact=True))
    shot(pg, "sql")
