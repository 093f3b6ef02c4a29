"""Explore as a new user meets it: what was chosen stays chosen across pages, previews are not
mapped unasked, two runs of one name are two chips, the analyses look at one run and leave the
reference out, edits are said to be used, and the only speed shown was measured here."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from services.core.store import Store
from tests import test_explore_page
from tests.explore_data import insert_dataset, insert_run
from tests.test_explore_page import PAGE, run_until_map

app_env = test_explore_page.app_env  # the fixture (fake embedder, stubbed UMAP, fresh caches), by name

APP = str(Path(__file__).resolve().parent.parent / "app.py")
WORDS = {"pizza": "pizza pasta oven cheese", "sushi": "sushi rice fish tokyo", "chess": "chess knight pawn board"}


def seed(db: Path, *, preview: bool = False, same_names: bool = False) -> None:
    """A five-dimension run and a one-dimension baseline (as Generate makes them), optionally a
    preview run, optionally both runs under one name; a reference dataset."""
    store = Store(db)
    five = [(f"{WORDS[t]} {tone} review {i}", {"topic": t, "tone": tone, "length": ["short", "long"][i % 2],
                                                  "audience": "adults", "format": "review"})
            for i, (t, tone) in enumerate([(t, tone) for t in ("pizza", "sushi") for tone in ("warm", "cold")] * 6)]
    insert_run(store, "run-five", five, name="attrprompt")
    insert_run(store, "run-base", [(f"{WORDS[t]} plain {i}", {"topic": t}) for i, t in enumerate(["pizza", "sushi", "chess"] * 4)],
               name="attrprompt" if same_names else "baseline")
    if preview:
        insert_run(store, "run-prev", [(f"{WORDS['pizza']} preview {i}", {"topic": "pizza"}) for i in range(3)], name="preview")
        with store.write() as cur:
            cur.execute("UPDATE runs SET item_limit = 3 WHERE run_id = 'run-prev'")
    insert_dataset(store, "real", [(f"{WORDS['chess']} real {i}", {"topic": "chess"}) for i in range(4)])
    store.close()


def table(at: AppTest, column: str):
    """The page's table with this column (the coverage table follows the analyses)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_the_selection_and_settings_survive_a_visit_to_another_page(app_env):
    seed(app_env)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/explore.py")
    run_until_map(at)
    at.multiselect(key="explore_runs").set_value(["run-base"])
    run_until_map(at)
    at.selectbox(key="explore_colour").set_value("topic").run()
    at.segmented_control(key="explore_section").set_value("Diversity").run()
    at.switch_page("app_pages/sql.py").run()
    assert not at.exception
    assert "explore_runs" not in at.session_state  # Streamlit forgot the widgets of the page left
    at.switch_page("app_pages/explore.py")
    run_until_map(at)
    assert at.multiselect(key="explore_runs").value == ["run-base"]
    assert at.selectbox(key="explore_colour").value == "topic"
    assert at.segmented_control(key="explore_section").value == "Diversity"


def test_previews_are_not_selected_for_the_user_and_labels_are_unique(app_env):
    seed(app_env, preview=True, same_names=True)
    at = run_until_map(AppTest.from_file(PAGE, default_timeout=60))
    picker = at.multiselect(key="explore_runs")
    assert sorted(picker.value) == ["run-base", "run-five"]
    assert len(set(picker.options)) == len(picker.options) == 3, picker.options
    assert any(o.endswith("· preview") for o in picker.options)
    # a dimension called "length" is "length" here too; the map's own length reads "text length"
    colours = at.selectbox(key="explore_colour").options
    assert "attr_length" not in colours and {"length", "text length"} <= set(colours), colours
    # colour by run: the runs' unique names, never their ids
    at.selectbox(key="explore_colour").set_value("run").run()
    spec = at.get("plotly_chart")[0].proto.spec  # the figure as JSON: its legend names the runs
    names = [t["name"] for t in json.loads(spec)["data"]]
    assert len(names) == 2 and all(n.startswith("attrprompt (") for n in names), names


def test_analyses_look_at_one_run_and_leave_the_reference_out(app_env):
    seed(app_env)
    at = run_until_map(AppTest.from_file(PAGE, default_timeout=60))
    at.selectbox(key="explore_reference").set_value("real")
    run_until_map(at)
    at.segmented_control(key="explore_section").set_value("Probes").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="explore_scope").value == "run-five"  # the run with the dimensions
    probes = table(at, "dimension").set_index("dimension")
    assert set(probes.index) == {"topic", "tone", "length", "audience", "format"}
    assert probes.loc["topic", "chance"] == 0.5  # pizza/sushi only: the baseline's chess is not pooled in
    assert any("reference dataset is left out" in c.value for c in at.caption)
    at.segmented_control(key="explore_section").set_value("Heatmap").run()
    assert not at.exception, at.exception
    assert "(none)" not in at.get("plotly_chart")[-1].proto.spec
    assert any("at least 5 samples" in c.value for c in at.caption)
    at.segmented_control(key="explore_section").set_value("Diversity").run()
    at.selectbox(key="explore_div_by").set_value("source").run()
    groups = table(at, "group")["group"].tolist()
    assert groups == ["run:attrprompt", "run:baseline"], groups


def test_edited_texts_are_said_to_be_used(app_env):
    seed(app_env)
    store = Store(app_env)
    with store.write() as cur:
        cur.execute("INSERT INTO sample_edits (sample_key, version, text) VALUES ('run-five-0', 1, 'rewritten by a reviewer')")
    store.close()
    at = run_until_map(AppTest.from_file(PAGE, default_timeout=60))
    assert any("use the edited texts" in i.value for i in at.info), [i.value for i in at.info]


def test_the_embedder_speed_shown_was_measured_here(app_env):
    seed(app_env)
    at = AppTest.from_file(PAGE, default_timeout=60)
    run_until_map(at)
    at.run()
    options = at.selectbox(key="explore_embedder").options
    assert not any("texts/s" in o or "cores" in o for o in options), options
    assert any("texts/s in its last embedding job here" in c.value for c in at.caption)
