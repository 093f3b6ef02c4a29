"""The real studio in Chromium: lasso points on the Explore map, tag them from the actions panel,
and save a screenshot of the selection with its actions (tests/screenshots/explore_selection.png)."""

from __future__ import annotations

import re

import pytest

from tests.test_explore_page import seed


@pytest.mark.browser
def test_browser_lasso_then_tag_the_selection(tmp_path):
    from tests.browser import browser_page, run_studio, screenshot, scroll_to, wait_for_app

    db = tmp_path / "studio.duckdb"
    seed(db)
    with run_studio(db, extra_env={"STUDIO_EMBEDDER": "fake"}) as url, browser_page() as pg:
        pg.goto(url + "/explore")
        wait_for_app(pg, timeout=120_000)
        pg.wait_for_function(  # real UMAP in the studio process: wait for the clustered legend
            "() => [...document.querySelectorAll('.js-plotly-plot .legendtext')].some(e => /^0 \\(/.test(e.textContent))",
            timeout=240_000,
        )
        wait_for_app(pg, timeout=120_000)
        pg.wait_for_timeout(1500)  # the figure's last redraw, so the lasso lands on the chart that stays
        # a lasso over most of the plot area (the chart's drag mode is lasso)
        box = pg.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
        x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
        corners = [(x0 + 0.02 * w, y0 + 0.02 * h), (x0 + 0.98 * w, y0 + 0.02 * h), (x0 + 0.98 * w, y0 + 0.98 * h),
                   (x0 + 0.02 * w, y0 + 0.98 * h)]
        pg.mouse.move(*corners[0])
        pg.mouse.down()
        for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
            for t in (0.25, 0.5, 0.75, 1.0):
                pg.mouse.move(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
        pg.mouse.up()
        pg.wait_for_selector("text=/Act on the selection/", timeout=120_000)
        wait_for_app(pg, timeout=120_000)
        n = int(re.search(r"Selected: ([0-9,]+) text", pg.inner_text("body")).group(1).replace(",", ""))
        assert n > 10
        pg.get_by_label("Tag", exact=True).fill("off-topic")
        pg.get_by_label("Tag", exact=True).press("Enter")
        wait_for_app(pg, timeout=60_000)
        pg.get_by_role("button", name=re.compile(r"^Tag [0-9,]+ sample")).click()
        pg.wait_for_selector("text=/Tagged [0-9]+ sample/", timeout=60_000)
        wait_for_app(pg, timeout=60_000)
        body = pg.inner_text("body")
        assert f"Tagged {n} sample(s) 'off-topic'." in body, body[:2000]
        scroll_to(pg.locator("text=/Act on the selection/"))
        assert screenshot(pg, "explore_selection").exists()
