"""AppTest for the Explore page (fake embedder, stubbed UMAP), and a browser test of the real map."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import services.explore.projection as projection
from services.core.store import Store
from tests.explore_data import insert_dataset, insert_run

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "explore.py")
TOPICS = {"pizza": "pizza pasta oven cheese italian", "sushi": "sushi rice fish tokyo japan", "football": "football goal match team"}


def seed(db_path: Path, *, bad: bool = False) -> None:
    store = Store(db_path)
    samples = [(f"{words} review {i}", {"topic": t, "tone": "warm" if i % 2 else "cold", "lang": "en"})
               for i, (t, words) in enumerate(list(TOPICS.items()) * 15)]
    insert_run(store, "run-a", samples, name="attrprompt")
    insert_run(store, "run-b", [(f"a plain review {i}", {"topic": "pizza", "tone": "warm", "lang": "en"}) for i in range(12)], name="plain")
    insert_dataset(store, "real", [("chess knight pawn board", {"topic": "chess"}), ("pizza pasta oven cheese italian review", {"topic": "pizza"})])
    if bad:
        insert_run(store, "one", [("Ein einziger Text auf Deutsch.", {"tone": "x"})], name="single")
        insert_run(store, "two", [("同じ文章です", {"tone": "x"}), ("同じ文章です", {"tone": "x"})], name="identical")
        insert_run(store, "odd", [("", {"tone": "x"}), ("word " * 10_000, {"tone": "x"}), ("short text", {"tone": "x"}),
                                  ("another one", {"tone": "x"})], name="odd")
    store.close()


@pytest.fixture
def app_env(db_path, monkeypatch):
    """Fake embedder; UMAP stubbed with PCA (real UMAP is tested in test_projection); fresh caches."""
    from resources import get_embedder, get_map_jobs, get_store

    monkeypatch.setenv("STUDIO_EMBEDDER", "fake")
    monkeypatch.setattr(projection, "umap_layout", lambda v, p: projection.pca_layout(v) * 3)
    for f in (get_store, get_map_jobs, get_embedder):
        f.clear()
    yield db_path
    get_store().close()
    for f in (get_store, get_map_jobs, get_embedder):
        f.clear()


def run_until_map(at: AppTest, tries: int = 30) -> AppTest:
    at.run()
    for _ in range(tries):
        assert not at.exception, at.exception
        if at.get("plotly_chart") and not at.get("progress"):
            return at
        time.sleep(0.5)
        at.run()
    raise AssertionError("the map never appeared")


def test_empty_database_says_what_to_do(app_env):
    Store(app_env).close()
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception
    assert "Nothing to map yet" in at.info[0].value


def test_map_colours_and_every_analysis(app_env):
    seed(app_env)
    at = run_until_map(AppTest.from_file(PAGE, default_timeout=60))
    assert sorted(at.multiselect(key="explore_runs").value) == ["run-a", "run-b"]
    colours = at.selectbox(key="explore_colour").options
    assert {"cluster", "topic", "tone", "run", "text length"} <= set(colours)
    for c in ("topic", "run", "length", "cluster"):
        at.selectbox(key="explore_colour").set_value(c).run()
        assert not at.exception, at.exception
    for section in ["Diversity", "Heatmap", "Probes", "Near-duplicates", "Fill the gap", "Clusters"]:
        at.segmented_control(key="explore_section").set_value(section).run()
        assert not at.exception, (section, at.exception)
    at.segmented_control(key="explore_section").set_value("Probes").run()
    probes = at.dataframe[-1].value.set_index("dimension")
    assert probes.loc["topic", "accuracy"] > 0.9
    assert "one value" in probes.loc["lang", "note"]
    at.segmented_control(key="explore_section").set_value("Diversity").run()
    at.selectbox(key="explore_div_by").set_value("run").run()
    assert len(at.dataframe[-1].value) == 2


def test_reference_coverage(app_env):
    seed(app_env)
    at = run_until_map(AppTest.from_file(PAGE, default_timeout=60))
    at.selectbox(key="explore_reference").set_value("real")
    run_until_map(at)
    assert "coverage" in at.selectbox(key="explore_colour").options
    at.selectbox(key="explore_colour").set_value("coverage").run()
    assert not at.exception
    assert any(m.label.startswith("Reference points") for m in at.metric)


@pytest.mark.parametrize("run_ids", [["one"], ["two"], ["odd"]])
def test_bad_input_shows_what_it_can(app_env, run_ids):
    seed(app_env, bad=True)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    at.multiselect(key="explore_runs").set_value(run_ids)
    run_until_map(at)
    for section in ["Diversity", "Heatmap", "Probes", "Near-duplicates", "Clusters"]:
        at.segmented_control(key="explore_section").set_value(section).run()
        assert not at.exception, (run_ids, section, at.exception)
    notes = " ".join(i.value for i in at.info)
    if run_ids == ["odd"]:
        assert "empty text" in notes
    else:
        assert "too few" in notes


def test_remote_embedder_choice_maps_through_the_server_and_names_bad_specs(app_env, monkeypatch):
    from tests.mock_openai import MockServer

    seed(app_env)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert any("api:PRESET:MODEL" in c.value for c in at.caption)
    at.text_input(key="explore_custom_model").set_value("api:openai:text-embedding-3-small")
    run_until_map(at)  # no key: the error is shown and the list's embedder maps instead
    assert any("OPENAI_API_KEY" in e.value for e in at.error)
    with MockServer() as url:
        at.text_input(key="explore_custom_model").set_value(f"api:custom:mock-embed@{url}")
        run_until_map(at)
        assert not at.error
        # every distinct text of the two runs went to the server, once
        with urllib.request.urlopen(url.removesuffix("/v1") + "/_stats") as r:
            assert len(json.loads(r.read())["embedded"]) == 57  # the two runs' distinct texts


@pytest.mark.browser
def test_browser_map_with_clusters(tmp_path):
    from tests.browser import browser_page, run_studio, screenshot, wait_for_app

    db = tmp_path / "studio.duckdb"
    seed(db)
    with run_studio(db, extra_env={"STUDIO_EMBEDDER": "fake"}) as url, browser_page() as pg:
        pg.goto(url + "/explore")
        wait_for_app(pg, timeout=120_000)
        # the map job runs real UMAP in the studio process (JIT on first use): wait for the clustered legend
        pg.wait_for_function(
            "() => [...document.querySelectorAll('.js-plotly-plot .legendtext')].some(e => /^0 \\(/.test(e.textContent))",
            timeout=240_000,
        )
        wait_for_app(pg, timeout=120_000)
        pg.wait_for_timeout(1500)
        legend = [t or "" for t in pg.locator(".js-plotly-plot .legendtext").all_text_contents()]
        path = screenshot(pg, "explore_map_clusters")
        assert path.exists()
        assert any(t.startswith("0 (") for t in legend), legend
        assert sum(t.startswith(("0 (", "1 (", "2 (")) for t in legend) == 3


def test_clicking_the_active_section_keeps_it_on_the_page(app_env):
    seed(app_env)
    at = run_until_map(AppTest.from_file(PAGE, default_timeout=60))
    at.segmented_control(key="explore_section").set_value("Diversity").run()
    shown = [df.value.shape for df in at.dataframe]
    assert shown
    at.segmented_control(key="explore_section").set_value(None).run()   # what a click on the active one sends
    assert not at.exception
    assert [df.value.shape for df in at.dataframe] == shown


def test_large_map_thins_the_drawing_and_ships_no_hover_texts(app_env, monkeypatch):
    """The 10^5-10^6 point path on a small map: the limits are lowered, the code path is the same."""
    import base64
    import json

    import numpy as np

    from services.explore import map_view

    def length(arr) -> int:  # plotly sends numpy arrays as base64 typed arrays
        return len(np.frombuffer(base64.b64decode(arr["bdata"]), dtype=arr["dtype"])) if isinstance(arr, dict) else len(arr)

    seed(app_env)
    monkeypatch.setattr(map_view, "DISPLAY_MAX", 30)
    monkeypatch.setattr(map_view, "HOVER_TEXT_MAX", 20)
    at = run_until_map(AppTest.from_file(PAGE, default_timeout=60))
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    drawn = sum(length(t["customdata"]) for t in spec["data"])
    assert all("text" not in t for t in spec["data"])  # no per-point texts at all
    captions = " ".join(c.value for c in at.caption)
    assert "Showing" in captions and "dense areas are thinned" in captions and "click or select points" in captions
    showing = next(c.value for c in at.caption if "Showing" in c.value)
    n = int(showing.split("Showing", 1)[1].split(" of ")[1].split(" points")[0].replace(",", ""))
    assert n == 45 + 12 and 0 < drawn <= 30
    legend = [t["name"] for t in spec["data"]]
    assert sum(int(name.rsplit("(", 1)[1].rstrip(")")) for name in legend) == n  # the legend counts every point


def test_cluster_names_on_the_map_and_the_clustering_said(app_env):
    seed(app_env)
    at = run_until_map(AppTest.from_file(PAGE, default_timeout=60))
    captions = " ".join(c.value for c in at.caption)
    assert "Clusters: HDBSCAN" in captions and "chosen automatically" in captions and "settings tried" in captions
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [a["text"] for a in spec["layout"].get("annotations", [])]
    assert names and all("·" in n or n.startswith("cluster ") for n in names)
    assert any(w in " ".join(names) for w in ("pizza", "sushi", "football"))  # the topics' own words
    at.toggle(key="explore_cluster_names_on").set_value(False).run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert not spec["layout"].get("annotations")
    # the user's own setting: clustered on the 2-D map, and the caption says so
    at.number_input(key="explore_mcs").set_value(5)
    at.selectbox(key="explore_sel").set_value("leaf")
    run_until_map(at)
    captions = " ".join(c.value for c in at.caption)
    assert "HDBSCAN (leaf) on the 2-D layout, min cluster size 5 (set by you)" in captions


def test_llm_cluster_names_on_request_cost_first_and_cached(app_env):
    from tests.mock_openai import MockServer

    seed(app_env)
    at = run_until_map(AppTest.from_file(PAGE, default_timeout=60))
    at.selectbox(key="explore_names_preset").set_value("openai").run()
    assert any("gpt" in c.value and "$" in c.value for c in at.caption)  # the price before anything is sent
    with MockServer() as url:
        at.selectbox(key="explore_names_preset").set_value("custom").run()
        at.text_input(key="explore_names_url_custom").set_value(url).run()
        at.text_input(key="explore_names_model_custom").set_value("mock-model").run()
        at.button(key="explore_names_go").click().run()
        assert not at.exception and not at.warning
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        names = [a["text"] for a in spec["layout"]["annotations"]]
        assert names and all(n.startswith("Sample for") for n in names)  # the mock's reply, drawn
        asked = json.loads(urllib.request.urlopen(url.removesuffix("/v1") + "/_stats").read())["requests"]
        at.run()
        assert not at.get("button") or all(b.key != "explore_names_go" for b in at.button)  # every cluster named: nothing to ask
        assert json.loads(urllib.request.urlopen(url.removesuffix("/v1") + "/_stats").read())["requests"] == asked


def test_the_settings_tried_are_listed_with_the_chosen_one(app_env):
    seed(app_env)
    at = run_until_map(AppTest.from_file(PAGE, default_timeout=60))
    tried = next(df.value for df in at.dataframe if "silhouette" in df.value.columns)
    assert tried["chosen"].sum() == 1 and len(tried) > 10
    best = tried[tried["noise"] <= 0.25]["silhouette"].max()
    assert tried.loc[tried["chosen"], "silhouette"].item() == best
