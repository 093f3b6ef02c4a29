"""The Compare Filters page: AppTest for its states and controls, and a browser screenshot."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from resources import get_store
from services.core.store import Store
from tests.explore_data import insert_run

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "compare_filters.py")


def seed(db_path, n: int = 30) -> None:
    store = Store(db_path)
    samples = []
    for i in range(n):
        mood = ["calm", "angry", "happy"][i % 3]
        text = f"A {mood} story number {i} about rain on a tin roof at night."
        if mood == "angry":
            text = "As an AI language model, I cannot write angry stories."
        if mood == "happy" and i > 10:
            text = "A happy story about rain on a tin roof at night."
        samples.append((text, {"mood": mood, "length": "short"}))
    insert_run(store, "run-a", samples, name="demo run")
    insert_run(store, "run-empty", [], name="failed run", errors=3)
    store.close()


def app(db_path) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    return at


def with_lenient_b(at: AppTest) -> AppTest:
    """B starts stricter (min 20 words, cosine 0.85); these short test texts need A's bounds."""
    at.run()
    assert at.number_input(key="compare_filters_p1_length_min").value == 20
    at.number_input(key="compare_filters_p1_length_min").set_value(3)
    at.slider(key="compare_filters_p1_semantic_dedup_threshold").set_value(0.92)
    return at


@pytest.fixture
def fake_embedder(db_path, monkeypatch):
    """Fake embedder, UMAP stubbed with PCA (real UMAP is tested in test_projection.py), fresh process caches."""
    import services.explore.projection as projection
    from resources import get_embedder, get_map_jobs, get_score_cache, get_store

    monkeypatch.setenv("STUDIO_EMBEDDER", "fake")
    monkeypatch.setattr(projection, "umap_layout", lambda v, p: projection.pca_layout(v) * 3)
    factories = (get_store, get_map_jobs, get_embedder, get_score_cache)
    for f in factories:
        f.clear()
    yield db_path
    get_map_jobs().shutdown()
    get_store().close()
    for f in factories:
        f.clear()


def test_no_runs_says_what_to_do(db_path, fake_embedder):
    at = app(db_path).run()
    assert not at.exception
    assert "No runs yet" in at.info[0].value and "Generate" in at.info[0].value


def test_run_without_samples_gets_a_clear_message(db_path, fake_embedder):
    seed(db_path)
    at = app(db_path).run()
    at.selectbox(key="compare_filters_run").set_value("run-empty").run()
    assert not at.exception
    assert "no successful samples" in at.warning[0].value


def test_two_pipelines_side_by_side_flags_and_threshold(db_path, fake_embedder):
    seed(db_path)
    at = with_lenient_b(app(db_path)).run()
    assert not at.exception
    assert at.selectbox(key="compare_filters_run").value == "run-a"
    kept = [m.value for m in at.metric if m.label == "Kept"]
    assert len(kept) == 2
    # Both pipelines drop the 10 refusals, wiping out mood = angry: flagged.
    assert any("removes every sample of mood = angry" in e.value for e in at.error)
    # A's exact dedup collapses the 7 repeated happy stories; B's semantic dedup (fake embedder: bags of
    # words) also merges the calm stories that differ by one number.
    assert kept == ["14", "1"]
    # Loosen B's length bound -> counts update; an impossible bound is a clear message.
    at.number_input(key="compare_filters_p1_length_min").set_value(14).run()
    assert not at.exception
    assert [m.value for m in at.metric if m.label == "Kept"][1] == "0"
    at.number_input(key="compare_filters_p1_length_max").set_value(5).run()
    assert any("minimum length (14) is above the maximum (5)" in e.value for e in at.error)
    assert not at.exception


def test_regex_error_review_save_apply(db_path, fake_embedder):
    seed(db_path)
    at = with_lenient_b(app(db_path)).run()
    at.multiselect(key="compare_filters_p0_steps").set_value(["regex", "refusal"]).run()
    at.text_input(key="compare_filters_p0_regex_pattern").set_value("(unclosed").run()
    assert any("invalid regular expression '(unclosed'" in e.value for e in at.error)
    at.text_input(key="compare_filters_p0_regex_pattern").set_value("tin roof").run()
    assert not at.exception
    # Review one by one: keep the first sample, then it shows the next one.
    at.button(key="compare_filters_keep").click().run()
    assert "Sample 2 of 30" in "".join(m.value for m in at.markdown)
    # Save and apply B.
    at.radio(key="compare_filters_out_pipeline").set_value("B").run()
    at.button(key="compare_filters_save").click().run()
    assert any("Saved B v1" in s.value for s in at.success)
    at.button(key="compare_filters_apply").click().run()
    assert any("Applied B v1" in s.value for s in at.success)
    assert not at.exception
    store = get_store()  # the page's own connection (a second one in this process is refused)
    assert store.scalar("SELECT count(*) FROM review_decisions WHERE decision = 'keep'") == 1
    assert store.scalar("SELECT n_kept FROM filter_applications") == 1


def wait_for_map(at) -> None:
    """Turn the map on and rerun until the background job has built it."""
    at.toggle(key="compare_filters_map").set_value(True).run()
    for _ in range(60):
        assert not at.exception, at.exception
        if any(r.key == "compare_filters_map_pipeline" for r in at.radio):
            break
        time.sleep(0.5)
        at.run()
    else:
        raise AssertionError("the map never appeared")


def test_map_of_kept_and_dropped_and_cluster_review(db_path, fake_embedder):
    seed(db_path)
    at = app(db_path).run()
    wait_for_map(at)
    at.radio(key="compare_filters_review_mode").set_value("A cluster at a time").run()
    assert not at.exception
    at.button(key="compare_filters_drop_cluster").click().run()
    assert not at.exception
    assert get_store().scalar("SELECT count(*) FROM review_decisions WHERE decision = 'drop'") > 0


def test_edited_texts_are_mapped_and_said_so(db_path, fake_embedder):
    from services.core.hashing import text_hash
    from services.curation.pipeline import load_batch
    from services.curation.review_store import edit_sample
    from services.explore.projection import items_hash

    seed(db_path)
    store = Store(db_path)
    edit_sample(store, "run-a-0", "An edited story: a lighthouse keeper counts gulls while the kettle sings.")
    store.close()
    at = app(db_path).run()
    assert any("1 sample(s) of this run were edited" in c.value and "edited texts" in c.value for c in at.caption)
    wait_for_map(at)
    # The map was laid out from the edited text, not the generated original.
    batch = load_batch(get_store(), "run-a")
    mapped = get_store().query("SELECT items_hash FROM projections")
    assert mapped == [(items_hash(batch.keys, [text_hash(t) for t in batch.texts]),)]


@pytest.mark.browser
def test_browser_two_pipelines_side_by_side(tmp_path):
    from tests.browser import browser_page, run_studio, screenshot, wait_for_app

    db = tmp_path / "studio.duckdb"
    seed(db)
    with run_studio(db, extra_env={"STUDIO_EMBEDDER": "fake"}) as url, browser_page(width=1500, height=1400) as pg:
        pg.goto(url + "/compare_filters")
        wait_for_app(pg)
        pg.get_by_text("removes every sample of mood = angry").first.wait_for()
        pg.get_by_text("Kept by A, dropped by B").first.wait_for()
        pg.locator('[data-testid="stDataFrame"] canvas').first.wait_for()
        pg.wait_for_timeout(1500)  # the data grids paint after their canvas appears
        path = screenshot(pg, "compare_filters_side_by_side")
    assert path.exists()


def test_saved_version_loads_into_the_editor_and_judge_scores_through_a_backend(db_path, fake_embedder):
    from tests.mock_openai import MockServer

    seed(db_path)
    at = app(db_path).run()
    at.radio(key="compare_filters_out_pipeline").set_value("B").run()
    at.button(key="compare_filters_save").click().run()
    at.run()
    hashes = [o for o in at.selectbox(key="compare_filters_p0_load").options if o != "—"]
    assert hashes == ["B v1 (" + get_store().scalar("SELECT pipeline_hash FROM filter_pipelines")[:8] + ")"]
    at.selectbox(key="compare_filters_p0_load").set_value(get_store().scalar("SELECT pipeline_hash FROM filter_pipelines")).run()
    assert at.text_input(key="compare_filters_p0_name").value == "B"
    assert at.multiselect(key="compare_filters_p0_steps").value == ["length", "refusal", "minhash", "semantic_dedup", "adherence"]

    # A judge step: unscored samples are kept until scored; scoring goes through a real OpenAI-compatible server.
    at.text_input(key="compare_filters_p0_name").set_value("J").run()
    at.multiselect(key="compare_filters_p0_steps").set_value(["judge"]).run()
    at.text_area(key="compare_filters_p0_judge_rubric").set_value("score: 2").run()
    at.text_input(key="compare_filters_p0_judge_judge_model").set_value("custom/mock-model").run()
    at.radio(key="compare_filters_p0_judge_unscored").set_value("keep").run()
    assert [m.value for m in at.metric if m.label == "Kept"][0] == "30"
    with MockServer() as url:
        at.selectbox(key="compare_filters_judge_preset").set_value("custom").run()
        at.text_input(key="compare_filters_judge_model").set_value("mock-model").run()
        at.text_input(key="compare_filters_judge_url").set_value(url).run()
        at.button(key="compare_filters_judge_go").click().run()
    assert not at.exception
    assert any("scored now" in s.value for s in at.success)
    at.run()
    assert [m.value for m in at.metric if m.label == "Kept"][0] == "0"  # every score is 2 < 3
    assert get_store().scalar("SELECT count(DISTINCT text_hash) FROM judge_scores") == get_store().scalar(
        "SELECT count(DISTINCT text) FROM samples WHERE run_id = 'run-a'")
