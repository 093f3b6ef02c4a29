"""Deep links: a page's URL as the very first request of a fresh studio runs that page inside app.py
(navigation, page config and the shared sidebar), never the page script alone."""

from __future__ import annotations

import pytest

from tests.browser import browser_page, run_studio, screenshot, wait_for_app

pytestmark = pytest.mark.browser

PAGES = {"generate": "Generate", "sql": "SQL", "explore": "Explore"}


@pytest.mark.parametrize("path", sorted(PAGES))
def test_a_deep_link_as_the_first_request_gets_the_whole_studio(tmp_path, path):
    with run_studio(tmp_path / "studio.duckdb") as url, browser_page() as pg:
        pg.goto(f"{url}/{path}")  # nothing else has been requested from this server yet
        wait_for_app(pg, timeout=120_000)
        screenshot(pg, f"deep_link_{path}", full_page=False)
        assert pg.locator("h1").first.inner_text().strip() == PAGES[path]
        nav = pg.locator('[data-testid="stSidebarNav"]')
        assert nav.count() == 1, "the page ran without app.py's navigation"
        assert "Compare Filters" in nav.inner_text()
        assert "Database:" in pg.locator('[data-testid="stSidebar"]').inner_text()  # app.py's shared sidebar
        assert pg.title() == "Synthetic Data Studio" or PAGES[path] in pg.title()
        assert pg.locator('[data-testid="stException"]').count() == 0
