"""Grow toward a target on the Generate page: AppTest against the mock backend."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.mock_openai import MockServer

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "generate.py")


@pytest.fixture
def mock():
    server = MockServer(latency=0.01).start()
    yield server
    server.stop()


@pytest.fixture
def grow_env(app_env, monkeypatch):
    from resources import get_grow_jobs

    monkeypatch.setenv("STUDIO_EMBEDDER", "fake")
    get_grow_jobs.clear()
    yield app_env
    get_grow_jobs().shutdown()
    get_grow_jobs.clear()


def _on_mock(at: AppTest, url: str) -> AppTest:
    at.selectbox(key="generate_recipe").set_value("demo: restaurant_reviews").run()
    at.selectbox(key="generate_backend").set_value("custom").run()
    at.text_input(key="generate_base_url_custom").set_value(url).run()
    at.text_input(key="generate_model_custom").set_value("mock-model").run()
    return at


def test_a_grow_loop_runs_its_rounds_and_shows_the_convergence(grow_env, mock):
    from resources import get_grow_jobs, get_store
    from services.evaluation.grow_loop import loop_rounds

    at = _on_mock(AppTest.from_file(PAGE, default_timeout=60).run(), mock.url)
    assert at.multiselect(key="generate_grow_dims:restaurant-reviews").value == ["label", "subtopic"]
    at.multiselect(key="generate_grow_dims:restaurant-reviews").set_value(["label"]).run()
    at.text_area(key="generate_grow_shares").set_value("label=positive:0.75,negative:0.25").run()
    at.number_input(key="generate_grow_rounds").set_value(3).run()
    at.number_input(key="generate_grow_batch").set_value(3).run()
    at.number_input(key="generate_grow_tol").set_value(0.0).run()
    at.button(key="generate_grow_start").click().run()
    assert not at.exception, at.exception
    loop = at.session_state["generate_grow_loop"]
    job = get_grow_jobs().get(loop)
    job.thread.join(60)
    assert job.outcome is not None and job.outcome.status == "finished", job.outcome
    at.run()
    assert not at.exception, at.exception
    assert any("All 3 round(s) ran" in s.value for s in at.success)
    rounds = loop_rounds(get_store(), loop)
    assert [r.status for r in rounds] == ["finished"] * 3
    assert mock.state.completions_ok == 9
    # the distances table (round, samples, distance) and the per-cell counts per round
    frames = [d.value for d in at.dataframe]
    dist = next(f for f in frames if list(f.columns) == ["round", "samples", "distance"])
    assert dist["samples"].tolist() == [3, 6, 9]
    assert dist["distance"].iloc[-1] < dist["distance"].iloc[0]
    cells = next(f for f in frames if "target share" in f.columns)
    assert cells["after round 3"].sum() == 9
    assert {"label=positive", "label=negative"} == set(cells["cell"])
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)  # the convergence chart: the table's own figures
    assert spec["data"][0]["y"] == dist["distance"].tolist()
    labels = {b.label for b in at.button}
    assert {"Open the loop's runs in Explore", "Compare them on Evaluate"} <= labels
    assert any(r.run_id in " ".join(c.value for c in at.caption) for r in rounds)


def test_bad_shares_are_a_sentence_and_start_nothing(grow_env, mock):
    from resources import get_store

    at = _on_mock(AppTest.from_file(PAGE, default_timeout=60).run(), mock.url)
    at.text_area(key="generate_grow_shares").set_value("label=positive:0.6,negative:0.3").run()
    at.button(key="generate_grow_start").click().run()
    assert not at.exception, at.exception
    assert any("sum to 0.9, not 1" in e.value for e in at.error)
    at.text_area(key="generate_grow_shares").set_value("label=positive:0.5,neutral:0.5").run()
    at.button(key="generate_grow_start").click().run()
    assert any("'neutral', which 'label' does not have" in e.value for e in at.error)
    assert get_store().scalar("SELECT count(*) FROM runs") == 0 and mock.state.requests == 0


def test_the_progress_shows_the_round_while_the_loop_runs(grow_env):
    slow = MockServer(latency=0.3).start()
    try:
        at = _on_mock(AppTest.from_file(PAGE, default_timeout=60).run(), slow.url)
        at.number_input(key="generate_grow_rounds").set_value(2).run()
        at.number_input(key="generate_grow_batch").set_value(6).run()
        at.button(key="generate_grow_start").click().run()
        texts = []
        for _ in range(40):
            texts = [p.proto.text for p in at.get("progress")]
            if texts:
                break
            time.sleep(0.2)
            at.run()
        assert any(t.startswith("Round 1 of 2") for t in texts), texts
        at.button(key="generate_grow_cancel").click().run()
        from resources import get_grow_jobs

        job = get_grow_jobs().get(at.session_state["generate_grow_loop"])
        job.thread.join(30)
        assert job.outcome.status == "cancelled"
        at.run()
        assert not at.exception, at.exception
        assert any("run the same loop again" in w.value for w in at.warning)
    finally:
        slow.stop()
