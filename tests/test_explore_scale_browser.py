"""A 100,000-point map in headless Chromium: change the colour, lasso a region, get ids back.

The map is built once, in the fixture, with the hash embedder and a PCA layout standing in for
UMAP (UMAP on 100,000 points costs minutes on 2 cores; what is tested here is the renderer and
the selection, and the studio reads the layout and clusters from the DuckDB cache as it would
a UMAP map's).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

N = 100_000


@pytest.fixture(scope="module")
def big_map(tmp_path_factory):
    import services.explore.projection as projection
    from services.core.store import Store
    from services.explore.embedders import HashEmbedder
    from services.explore.map_jobs import MapRequest, build_map
    from tests.explore_data import insert_big_run

    db = tmp_path_factory.mktemp("scale") / "studio.duckdb"
    store = Store(db)
    insert_big_run(store, "big", N)
    umap_layout = projection.umap_layout
    projection.umap_layout = lambda v, p: projection.pca_layout(v) * 3  # cached as the run's "UMAP" layout
    try:
        data = build_map(store, HashEmbedder(), MapRequest(run_ids=("big",)))
    finally:
        projection.umap_layout = umap_layout
        store.close()
    return db, data


# Plotly's own pixel -> data conversion for the plot area, so the test knows what the lasso covers.
TO_DATA = """([px, py]) => {
  const gd = document.querySelector('.js-plotly-plot');
  const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return [xa.p2d(px - box.x), ya.p2d(py - box.y)];
}"""


@pytest.mark.browser
def test_browser_100k_map_colour_change_and_lasso_selection(big_map):
    from services.explore.map_view import rows_in_region
    from tests.browser import browser_page, run_studio, screenshot, scroll_to, wait_for_app

    db, data = big_map
    with run_studio(db, extra_env={"STUDIO_EMBEDDER": "fake"}) as url, browser_page() as pg:
        pg.goto(url + "/explore")
        legend_has = "(p) => [...document.querySelectorAll('.js-plotly-plot .legendtext')].some(e => e.textContent.startsWith(p))"
        pg.wait_for_function(legend_has, arg="noise (", timeout=240_000)
        assert pg.get_by_text("100,000 texts · UMAP").count() == 1
        wait_for_app(pg, timeout=120_000)
        assert "Hovers name the point's group only" in pg.inner_text("body")
        # the figure carries no texts: customdata row numbers, x and y only
        assert pg.evaluate("() => document.querySelector('.js-plotly-plot').data.every(t => !t.text)")
        # every point is drawn once plotly has laid out all traces (a large figure arrives in pieces)
        drawn = "() => document.querySelector('.js-plotly-plot')._fullData.reduce((n, t) => n + t._length, 0)"
        pg.wait_for_function(f"({drawn})() >= {N}", timeout=60_000)
        assert pg.evaluate(drawn) == N

        # colour by topic
        pg.get_by_role("combobox", name="Colour by").click()
        pg.get_by_role("option", name="topic", exact=True).click()
        pg.wait_for_function(legend_has, arg="pizza pasta (20000)", timeout=60_000)
        wait_for_app(pg, timeout=120_000)

        # lasso a triangle in the plot area (the chart's drag mode is lasso)
        box = pg.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
        cx, cy, r = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, min(box["width"], box["height"]) * 0.3
        corners = [(cx - r, cy - r), (cx + r, cy - r * 0.2), (cx - r * 0.3, cy + r)]
        pg.mouse.move(*corners[0])
        pg.mouse.down()
        path = []
        for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
            for t in np.linspace(0, 1, 12)[1:]:
                p = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
                pg.mouse.move(*p)
                path.append(pg.evaluate(TO_DATA, list(p)))
        pg.mouse.up()
        pg.wait_for_selector("text=/Selected: [0-9,]+ text/", timeout=120_000)
        wait_for_app(pg, timeout=120_000)
        assert screenshot(pg, "explore_100k_lasso").exists()
        scroll_to(pg.locator("text=/Selected: [0-9,]+ text/"))
        assert screenshot(pg, "explore_100k_selection").exists()

        body = pg.inner_text("body")
        selected = int(re.search(r"Selected: ([0-9,]+) text", body).group(1).replace(",", ""))
        lasso = {"lasso": [{"x": [p[0] for p in path], "y": [p[1] for p in path]}]}
        expected = rows_in_region(data.layout, lasso)
        assert len(expected) > 1000
        assert abs(selected - len(expected)) <= 0.02 * len(expected)  # the same region, up to the lasso's edge
        # the selection came back to Python as ids: the first ones are written out
        ids = pg.locator('[data-testid="stCode"]').first.inner_text()
        shown = [s.strip() for s in ids.split(",")]
        assert len(shown) == 20 and all(s.startswith("big-") for s in shown)
        inside = set(data.items.frame["id"].iloc[expected].tolist())
        assert sum(s in inside for s in shown) >= 18
