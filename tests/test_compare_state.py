"""What a user set on Compare Filters stays set: a loaded version saves back to itself, and the
page's settings survive a visit to another page."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from resources import get_store
from services.core.store import Store
from services.curation.pipeline import Pipeline
from services.curation.pipeline_store import save_pipeline
from tests.explore_data import insert_run
from tests.test_compare_page import app, fake_embedder, seed  # noqa: F401 - the fixture, by name

APP = str(Path(__file__).resolve().parent.parent / "app.py")

# Every step carries parameters the editor has no widget for, set away from their defaults, and
# two values outside the sliders' usual ranges (a version saved from a YAML file may have them).
HIDDEN = {"name": "hidden", "steps": [
    {"kind": "regex", "pattern": "tin roof", "mode": "exclude", "ignore_case": False},
    {"kind": "keywords", "keywords": ["Lantern"], "mode": "exclude", "whole_word": False, "ignore_case": False},
    {"kind": "refusal", "extra_patterns": ["cannot write"]},
    {"kind": "minhash", "threshold": 0.2, "shingle_size": 4, "shingle_unit": "characters", "num_perm": 64},
    {"kind": "adherence", "length_dimension": "length", "tolerance": 3.0, "keyword_dimension": "mood", "keyword_require": "any", "bare_unit": "sentences"},
]}


@pytest.mark.usefixtures("fake_embedder")
def test_a_loaded_version_saves_back_to_the_same_hash(db_path):
    seed(db_path)
    store = Store(db_path)
    version = save_pipeline(store, Pipeline.parse(HIDDEN))
    store.close()
    at = app(db_path).run()
    at.selectbox(key="compare_filters_p0_load").set_value(version.pipeline_hash).run()
    assert at.text_input(key="compare_filters_p0_name").value == "hidden"
    assert at.selectbox(key="compare_filters_p0_adherence_bare_unit").value == "sentences"
    at.radio(key="compare_filters_out_pipeline").set_value("hidden").run()
    at.button(key="compare_filters_save").click().run()
    assert not at.exception, at.exception
    assert any(f"Saved {version.label}" in s.value for s in at.success), [s.value for s in at.success]
    assert get_store().query("SELECT pipeline_hash FROM filter_pipelines") == [(version.pipeline_hash,)]


def _values(at: AppTest) -> dict:
    return {
        "run": at.selectbox(key="compare_filters_run").value,
        "n": at.number_input(key="compare_filters_n").value,
        "name": at.text_input(key="compare_filters_p0_name").value,
        "steps": at.multiselect(key="compare_filters_p1_steps").value,
        "tolerance": at.slider(key="compare_filters_p1_adherence_tolerance").value,
        "bare": at.selectbox(key="compare_filters_p1_adherence_bare_unit").value,
        "jaccard": at.slider(key="compare_filters_p2_minhash_threshold").value,
        "kept": [m.value for m in at.metric if m.label == "Kept"],
    }


@pytest.mark.usefixtures("fake_embedder")
def test_settings_survive_a_visit_to_another_page(db_path):
    seed(db_path)
    store = Store(db_path)
    insert_run(store, "run-b", [(f"Story {i} of a quiet harbour at dawn, told slowly.", {"mood": "calm", "length": "12"}) for i in range(8)],
               name="second run")
    store.close()
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/compare_filters.py").run()
    at.selectbox(key="compare_filters_run").set_value("run-b").run()
    at.number_input(key="compare_filters_n").set_value(3).run()
    at.text_input(key="compare_filters_p0_name").set_value("Mine").run()
    at.multiselect(key="compare_filters_p1_steps").set_value(["refusal", "adherence"]).run()
    at.slider(key="compare_filters_p1_adherence_tolerance").set_value(1.2).run()
    at.selectbox(key="compare_filters_p1_adherence_bare_unit").set_value("characters").run()
    at.slider(key="compare_filters_p2_minhash_threshold").set_value(0.9).run()
    assert not at.exception, at.exception
    before = _values(at)
    assert before["run"] == "run-b" and before["n"] == 3 and before["kept"][1] == "0"  # 12 characters asked, none that short

    at.switch_page("app_pages/sql.py").run()
    assert not at.exception
    assert "compare_filters_p0_name" not in at.session_state  # Streamlit forgot the widgets of the page left
    at.switch_page("app_pages/compare_filters.py").run()
    assert not at.exception, at.exception
    assert _values(at) == before
