"""The grow section of the Generate page in a real browser: a loop grown against the mock server
beforehand, opened in the studio; writes tests/screenshots/generate_grow.png."""

from __future__ import annotations

import pytest

from services.core.store import Store
from services.evaluation.grow_loop import GrowSpec, run_grow
from services.generation.runner import RunSettings
from tests.mock_openai import MockServer
from tests.test_grow_loop import base_run, cfg_for, executor, skewed

pytestmark = pytest.mark.browser


def test_browser_shows_the_loop_converging(tmp_path):
    from tests.browser import browser_page, run_studio, screenshot, wait_for_app

    db = tmp_path / "studio.duckdb"
    store = Store(db)
    rec = skewed()
    with MockServer() as url:
        cfg = cfg_for(url)
        start = base_run(store, rec, cfg)
        spec = GrowSpec(rounds=3, batch=6, dimensions=("label", "cuisine"), base_runs=(start,), tolerance=0.05)
        out = run_grow(store, rec, spec, cfg, RunSettings(timeout_s=10, max_retries=0), executor(store, cfg))
    store.close()
    assert out.status == "finished"
    with run_studio(db, extra_env={"STUDIO_EMBEDDER": "fake"}) as studio, browser_page(width=1400, height=1100) as pg:
        pg.goto(studio + "/generate")
        wait_for_app(pg, timeout=120_000)
        heading = pg.get_by_text("Grow toward a target", exact=True).first
        heading.wait_for(timeout=60_000)
        pg.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        heading.scroll_into_view_if_needed()
        pg.wait_for_timeout(800)
        screenshot(pg, "generate_grow_form", full_page=False)
        pg.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
        pg.mouse.wheel(0, 300)
        pg.wait_for_timeout(800)
        path = screenshot(pg, "generate_grow", full_page=False)
        assert path.exists()
        pg.get_by_text("Samples per cell after each round", exact=False).first.scroll_into_view_if_needed()
        pg.wait_for_timeout(500)
        screenshot(pg, "generate_grow_cells", full_page=False)
        assert pg.get_by_text("Distance to the target, round by round", exact=False).count() >= 1
        assert pg.locator('[data-testid="stException"]').count() == 0
        # the loop's runs (its start and its three rounds) open as Explore's selection
        pg.get_by_role("button", name="Open the loop's runs in Explore").click()
        pg.locator("h1", has_text="Explore").wait_for(timeout=60_000)
        wait_for_app(pg, timeout=120_000)
        chips = pg.locator('[data-testid="stMultiSelect"]').first.inner_text()
        assert all(f"grow-test grow {k}/3" in chips for k in (1, 2, 3)) and "grow-test ·" in chips, chips
