"""Explore's actions on a map selection, as a user runs them: the plotly selection event is sent
with each script run (as the browser sends it), then tag, drop in review and undo, export, and
"generate more like these" are clicked. Fake embedder, UMAP stubbed (tests/test_explore_page)."""

from __future__ import annotations

import json

from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from resources import get_store
from services.core.store import Store
from services.recipes.recipe import Recipe
from services.recipes.version_store import list_versions, load_version, save_version
from tests import test_explore_page
from tests.test_explore_page import PAGE, run_until_map, seed

app_env = test_explore_page.app_env  # the fixture (fake embedder, stubbed UMAP, fresh caches), by name


def run_selected(at: AppTest, rows: list[int]) -> AppTest:
    """Run the script with the map's box selection holding these rows (customdata = row number)."""
    event = {"selection": {"points": [{"customdata": r, "curve_number": 0, "point_number": r} for r in rows],
                           "point_indices": rows, "box": [{"xref": "x", "yref": "y", "x": [0, 1], "y": [0, 1]}], "lasso": []}}
    chart = at.get("plotly_chart")[0].proto.id
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=chart, string_value=json.dumps(event)))
    at._run(states)
    assert not at.exception, at.exception
    if at.get("plotly_chart")[0].proto.id != chart:  # a new figure (another colouring) is a new chart: select again
        return run_selected(at, rows)
    return at


def texts(at: AppTest, kind: str) -> str:
    return " ".join(e.value for e in getattr(at, kind))


RECIPE = {"name": "reviews", "task": "Write a review.", "user_template": "A {{ tone }} review about {{ topic }}.",
          "dimensions": [{"name": "topic", "values": ["pizza", "sushi", "football"]}, {"name": "tone", "values": ["warm", "cold"]}]}


def test_selection_actions_tag_drop_undo_export_and_more_like_these(app_env):
    seed(app_env)
    store = Store(app_env)
    parent = save_version(store, Recipe.parse(RECIPE))
    store.close()
    at = run_until_map(AppTest.from_file(PAGE, default_timeout=60))
    assert not [b for b in at.button if b.key == "explore_sel_tag_go"]  # no selection, no actions
    rows = [0, 1, 2, 3, 50]
    run_selected(at, rows)
    assert any("Act on the selection:" in m.value and "5 sample(s)" in m.value for m in at.markdown)

    # tag: a name first, then the counts; the map can then be coloured by tag
    at.button(key="explore_sel_tag_go").click()
    run_selected(at, rows)
    assert "Name the tag first" in texts(at, "error")
    at.text_input(key="explore_sel_tag").set_value("off-topic")
    at.button(key="explore_sel_tag_go").click()
    run_selected(at, rows)
    assert "Tagged 5 sample(s) 'off-topic'." in texts(at, "success")
    assert "tag" in at.selectbox(key="explore_colour").options
    at.selectbox(key="explore_colour").set_value("tag")
    run_selected(at, rows)
    legend = [t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert sorted(legend) == ["off-topic (5)", "untagged (52)"], legend
    store = get_store()  # the page's own store: it holds the file
    assert store.scalar("SELECT count(*) FROM sample_tags WHERE tag = 'off-topic'") == 5

    # drop in review, then undo
    at.button(key="explore_sel_drop").click()
    run_selected(at, rows)
    assert "Dropped 5 sample(s) in review ('dropped from map selection')." in texts(at, "success")
    assert store.scalar("SELECT count(*) FROM review_decisions WHERE decision = 'drop'") == 5
    at.button(key="explore_sel_undo_go").click()
    run_selected(at, rows)
    assert "Undone: 5 sample(s) have their earlier review decision back." in texts(at, "success")
    assert store.scalar("SELECT count(*) FROM review_decisions") == 0
    assert not [b for b in at.button if b.key == "explore_sel_undo_go"]

    # export: JSONL and CSV of the samples (no dataset rows selected, so no rows buttons)
    downloads = {d.proto.label for d in at.get("download_button")}
    assert downloads == {"JSONL (5 samples)", "CSV (5 samples)"}, downloads

    # generate more like these: Fill the gap opens with the selected texts as demonstrations
    at.button(key="explore_sel_more").click()
    run_selected(at, rows)
    assert at.segmented_control(key="explore_section").value == "Fill the gap"
    assert at.radio(key="explore_gap_how").value == "selected texts as demonstrations"
    at.button(key="explore_gap_go").click()
    run_selected(at, rows)
    assert "Saved" in texts(at, "success")
    child = next(v for v in list_versions(store) if v.parent_hash == parent.recipe_hash)
    demos = [e.text for e in load_version(store, child.recipe_hash).demos.examples]
    frame = store.query("SELECT text FROM samples WHERE sample_key IN ('run-a-0', 'run-a-1', 'run-a-2', 'run-a-3', 'run-b-5')")
    assert sorted(demos) == sorted(t for (t,) in frame)


def test_a_selection_with_reference_rows_says_what_cannot_be_tagged(app_env):
    seed(app_env)
    at = run_until_map(AppTest.from_file(PAGE, default_timeout=60))
    at.selectbox(key="explore_reference").set_value("real")
    run_until_map(at)
    frame_rows = 45 + 12  # the two runs first, then the reference's two rows
    rows = [0, frame_rows, frame_rows + 1]
    run_selected(at, rows)
    assert "Dataset rows cannot be tagged or dropped in review" in texts(at, "caption")
    at.text_input(key="explore_sel_tag").set_value("mixed")
    at.button(key="explore_sel_tag_go").click()
    run_selected(at, rows)
    done = texts(at, "success")
    assert "Tagged 1 sample(s) 'mixed'." in done and "2 selected dataset row(s) cannot be tagged" in done
    downloads = {d.proto.label for d in at.get("download_button")}
    assert downloads == {"JSONL (1 sample)", "CSV (1 sample)", "JSONL (2 dataset rows)", "CSV (2 dataset rows)"}, downloads
    assert at.button(key="explore_sel_more").label == "Fill this gap with these texts"

    # only reference rows: the sample actions are off
    run_selected(at, rows[1:])
    assert at.button(key="explore_sel_tag_go").disabled and at.button(key="explore_sel_drop").disabled
