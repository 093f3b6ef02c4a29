"""AppTest for the Evaluate page (fake embedder, UMAP stubbed with PCA), and a browser test that
opens it on the two shipped demo runs and saves the README's screenshot."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import services.explore.projection as projection
from services.core.store import Store
from tests.explore_data import insert_dataset, insert_run

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "evaluate.py")
WORDS = {"positive": "great lovely delicious friendly wonderful", "negative": "awful cold rude slow dirty"}


def seed(db_path: Path) -> None:
    store = Store(db_path)
    a = [(f"{WORDS[lab]} meal number {i} {'pasta' if i % 2 else 'sushi'}", {"label": lab, "cuisine": "Italian" if i % 2 else "Thai"})
         for i, lab in enumerate(["positive", "negative"] * 20)]
    b = [(f"a {lab} review {i % 3}", {"label": lab}) for i, lab in enumerate(["positive", "negative"] * 10)]
    insert_run(store, "run-a", a, name="attributed")
    insert_run(store, "run-b", b, name="plain")
    insert_run(store, "run-c", [(f"text {i}", {"tone": "x"}) for i in range(8)], name="no label")
    insert_dataset(store, "real", [(f"{WORDS[lab]} {i}", {"label": lab}) for i, lab in enumerate(["positive", "negative"] * 6)])
    insert_dataset(store, "unlabelled", [("just a text", {"topic": "food"}), ("another text", {"topic": "food"})])
    store.close()


@pytest.fixture
def app_env(db_path, monkeypatch):
    from resources import get_embedder, get_map_jobs, get_store

    monkeypatch.setenv("STUDIO_EMBEDDER", "fake")
    monkeypatch.setattr(projection, "umap_layout", lambda v, p: projection.pca_layout(v) * 3)
    for f in (get_store, get_map_jobs, get_embedder):
        f.clear()
    yield db_path
    get_store().close()
    for f in (get_store, get_map_jobs, get_embedder):
        f.clear()


def run_until_report(at: AppTest, tries: int = 60) -> AppTest:
    at.run()
    for _ in range(tries):
        assert not at.exception, at.exception
        if any(s.value == "Export" for s in at.subheader):
            return at
        time.sleep(0.5)
        at.run()
    raise AssertionError("the report never appeared")


def subheaders(at: AppTest) -> list[str]:
    return [s.value for s in at.subheader]


def captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def test_empty_database_says_what_to_do(app_env):
    Store(app_env).close()
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception
    assert "Nothing to evaluate yet" in at.info[0].value


def test_report_of_two_runs_every_section(app_env):
    seed(app_env)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["evaluate_runs"] = ["run-a", "run-b"]
    at.session_state["evaluate_reference"] = "real"
    run_until_report(at)
    assert {"Diversity", "Coverage", "Cost", "Faithfulness by an embedding classifier", "Faithfulness by an LLM judge",
            "Prompt echo", "Label noise: review queue", "Train on synthetic, test on real",
            "Judge calibration against human review"} <= set(subheaders(at))
    assert at.selectbox(key="evaluate_label").value == "label"
    frames = {tuple(df.value.columns): df.value for df in at.dataframe}
    faith = next(v for k, v in frames.items() if "accuracy" in k and "chance" in k)
    assert set(faith["dimension"]) == {"label", "cuisine"}
    # the words give the label away in the attributed run: the probe must find it
    assert faith.loc[(faith["set"] == "attributed") & (faith["dimension"] == "label"), "accuracy"].iloc[0] > 0.9
    assert "No score from local/" in captions(at)   # the judge costs nothing until asked
    assert any("judge calls" in i.value for i in at.info)
    # a widget change redraws from the stored report
    at.radio(key="evaluate_tstr_metric").set_value("accuracy").run()
    assert not at.exception
    at.radio(key="evaluate_map_colour").set_value("label").run()
    assert not at.exception


def test_bad_input_says_what_is_missing_and_the_rest_renders(app_env):
    seed(app_env)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["evaluate_runs"] = ["run-b", "run-c"]
    at.session_state["evaluate_reference"] = "unlabelled"
    run_until_report(at)
    text = captions(at)
    assert "no label column 'label'" in text          # the reference has no label column
    assert "Diversity" in subheaders(at) and not at.exception
    at.selectbox(key="evaluate_label").set_value("").run()
    assert "No label dimension chosen" in captions(at)


def test_one_run_asks_for_a_second(app_env):
    seed(app_env)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["evaluate_runs"] = ["run-a"]
    at.run()
    assert "Choose two or more runs" in at.info[0].value


@pytest.mark.browser
def test_browser_report_on_the_demo_runs(tmp_path):
    from services.demo.loader import load_demo
    from tests.browser import README_SCREENSHOTS, browser_page, run_studio, screenshot, wait_for_app

    db = tmp_path / "studio.duckdb"
    store = Store(db)
    load_demo(store)
    store.close()
    with run_studio(db) as url, browser_page(height=2600) as pg:
        pg.goto(url + "/evaluate")
        wait_for_app(pg, timeout=120_000)
        # real embeddings (cached in the demo) and real UMAP in the studio process: wait for the report
        pg.wait_for_selector("text=Train on synthetic, test on real", timeout=300_000)
        wait_for_app(pg, timeout=300_000)
        pg.wait_for_timeout(1500)
        path = screenshot(pg, "evaluate", directory=README_SCREENSHOTS)
        assert path.exists()
        body = pg.inner_text("body")
        # tables are drawn on a canvas: the section titles and captions are the page's text
        for title in ("Diversity", "Coverage", "Cost", "Faithfulness by an embedding classifier", "Faithfulness by an LLM judge",
                      "Train on synthetic, test on real", "Export"):
            assert title in body, title
        assert "judge calls" in body and "Traceback" not in body


def test_a_failing_judge_backend_is_a_sentence_and_the_report_stays(app_env, monkeypatch):
    from tests.browser import free_port

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    seed(app_env)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["evaluate_runs"] = ["run-a", "run-b"]
    run_until_report(at)
    at.selectbox(key="evaluate_judge_preset").set_value("custom").run()
    at.text_input(key="evaluate_judge_model").set_value("judge-model").run()
    at.text_input(key="evaluate_judge_url").set_value(f"http://127.0.0.1:{free_port()}/v1").run()   # nothing listens there
    at.number_input(key="evaluate_judge_n").set_value(2).run()
    assert any("6 judge calls" in i.value for i in at.info)   # 2 samples x 1 dimension (run b) + 2 x 2 (run a)
    at.button(key="evaluate_judge_go").click().run()
    assert not at.exception, at.exception
    assert any("failed" in w.value for w in at.warning), [w.value for w in at.warning]
    assert "No score from custom/judge-model" in captions(at)
    assert "Train on synthetic, test on real" in subheaders(at)
