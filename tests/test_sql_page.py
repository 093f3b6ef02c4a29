"""The SQL page: AppTest (run, refuse, chart, save, import) and a browser test with a screenshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from services.core.store import Store

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "app_pages" / "sql.py")


@pytest.fixture(autouse=True)
def _fresh_resources():
    # st.cache_resource outlives an AppTest: without this, get_store() keeps an earlier test's file.
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _seed(db_path: Path) -> None:
    store = Store(db_path)
    with store.write() as cur:
        cur.execute("INSERT INTO recipe_versions (recipe_hash, name, version, body) VALUES ('h1', 'recipes', 1, '{}')")
        cur.execute("INSERT INTO runs (run_id, plan_id, recipe_hash, name, backend, model, params)"
                    " VALUES ('run-a', 'p1', 'h1', 'first run', 'local', 'smollm2', '{}')")
        cur.execute(
            """INSERT INTO samples (sample_key, run_id, plan_id, item_idx, item_key, recipe_hash, condition, demo_ids,
                   messages, text, model, params, prompt_tokens, completion_tokens, cost_usd)
               SELECT 'k' || i, 'run-a', 'p1', i, 'ik' || i, 'h1',
                      MAP {'cuisine': ['thai', 'french', 'mexican'][i % 3 + 1], 'tone': ['warm', 'dry'][i % 2 + 1]},
                      [], '[]', repeat('word ', 3 + i % 7), 'smollm2', '{}', 10, 20 + i, 0.001
               FROM range(60) t(i)"""
        )
    store.close()


def _page_store() -> Store:
    # The page's own connection: a second Store on the same file in one process would share it.
    from resources import get_store

    return get_store()


def _app() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60)


def test_page_runs_a_query_and_charts_it(db_path: Path) -> None:
    _seed(db_path)
    at = _app().run()
    assert not at.exception
    at.text_area(key="sql_editor").set_value(
        "SELECT cuisine, count(*) AS n FROM samples_wide GROUP BY cuisine ORDER BY cuisine").run()
    at.button(key="sql_run").click().run()
    assert not at.exception
    assert not at.error
    frames = [df.value for df in at.dataframe]
    assert any(list(f.columns) == ["cuisine", "n"] and f["n"].tolist() == [20, 20, 20] for f in frames)
    assert any("3 row(s)" in c.value for c in at.caption)
    at.selectbox(key="sql_chart_kind").set_value("bar").run()
    assert not at.exception
    assert at.get("plotly_chart")


def test_page_refuses_a_write_and_shows_duckdb_syntax_errors(db_path: Path) -> None:
    _seed(db_path)
    at = _app().run()
    at.text_area(key="sql_editor").set_value("DROP TABLE samples").run()
    at.button(key="sql_run").click().run()
    assert "Refused" in at.error[0].value
    at.text_area(key="sql_editor").set_value("SELEC * FROM samples").run()
    at.button(key="sql_run").click().run()
    assert "DuckDB error" in at.error[0].value
    assert any("syntax error" in c.value and "LINE 1" in c.value for c in at.code)
    assert _page_store().scalar("SELECT count(*) FROM samples") == 60


def test_page_row_cap_says_rows_were_cut(db_path: Path) -> None:
    _seed(db_path)
    at = _app().run()
    at.number_input(key="sql_max_rows").set_value(5).run()
    at.text_area(key="sql_editor").set_value("SELECT * FROM range(100)").run()
    at.button(key="sql_run").click().run()
    assert any("Rows were cut" in w.value for w in at.warning)


def test_page_example_and_saved_queries(db_path: Path) -> None:
    _seed(db_path)
    at = _app().run()
    at.selectbox(key="sql_example").set_value(0).run()
    at.button(key="sql_use_example").click().run()
    assert "condition" in at.text_area(key="sql_editor").value
    at.button(key="sql_run").click().run()
    assert not at.error
    at.text_input(key="sql_save_name").set_value("per value")
    at.button(key="FormSubmitter:sql_save_form-Save query").click().run()
    assert any("Saved" in s.value for s in at.success), [e.value for e in at.error]
    at = _app().run()
    assert at.selectbox(key="sql_saved_pick").options == ["per value"]


def test_page_imports_a_local_jsonl_file(db_path: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_IMPORT_DIRS", str(tmp_path))
    _seed(db_path)
    src = tmp_path / "reviews.jsonl"
    src.write_text("\n".join(json.dumps({"text": f"review {i}", "stars": str(i % 5)}) for i in range(30)) + "\n{oops\n")
    at = _app().run()
    at.radio(key="sql_import_source").set_value("Folder or file on this machine").run()
    at.text_input(key="sql_import_path").set_value(str(src)).run()
    assert not at.exception
    at.multiselect(key="sql_import_attrs").set_value(["stars"]).run()
    at.button(key="sql_import_go").click().run()
    assert not at.exception
    assert any("Imported 30 rows" in w.value and "1 row(s) failed" in w.value for w in at.warning)
    assert _page_store().scalar("SELECT count(*) FROM dataset_rows") == 30
    # the page refreshed the views itself: the new attribute is a column of dataset_rows_wide
    assert "stars" in _page_store().query_df("SELECT * FROM dataset_rows_wide LIMIT 0").columns


def test_page_refuses_server_paths_outside_the_import_folders(db_path: Path, tmp_path: Path, monkeypatch) -> None:
    allowed = tmp_path / "imports"
    allowed.mkdir()
    monkeypatch.setenv("STUDIO_IMPORT_DIRS", str(allowed))
    outside = tmp_path / "secret.csv"
    outside.write_text("text\nroot:x:0:0\n")
    (allowed / "link.csv").symlink_to(outside)  # a link out of the folder counts as outside
    _seed(db_path)
    at = _app().run()
    at.radio(key="sql_import_source").set_value("Folder or file on this machine").run()
    assert any(str(allowed) in c.value and "STUDIO_IMPORT_DIRS" in c.value for c in at.caption)
    for path in ("/etc/passwd", str(outside), str(allowed / "link.csv"), str(allowed / ".." / "secret.csv")):
        at.text_input(key="sql_import_path").set_value(path).run()
        assert not at.exception
        assert any("outside the folders the studio imports from" in e.value for e in at.error), path
        assert not at.dataframe or all("root:x" not in str(d.value) for d in at.dataframe), path
        assert not [b for b in at.button if b.key == "sql_import_go"]
    assert _page_store().scalar("SELECT count(*) FROM datasets") == 0


def test_page_deletes_a_saved_query_after_asking(db_path: Path) -> None:
    from services.sql.saved_query_store import list_saved, save_query

    _seed(db_path)
    store = Store(db_path)
    save_query(store, "keep me", "SELECT 1")
    save_query(store, "old one", "SELECT 2")
    store.close()
    at = _app().run()
    at.selectbox(key="sql_saved_pick").set_value("old one").run()
    at.button(key="sql_saved_delete").click().run()
    assert any("Delete the saved query “old one”?" in w.value for w in at.warning)
    at.button(key="sql_saved_delete_no").click().run()  # cancel: nothing happens, the button is back
    assert not at.warning and at.button(key="sql_saved_delete")
    assert list_saved(_page_store())["name"].tolist() == ["keep me", "old one"]
    at.button(key="sql_saved_delete").click().run()
    at.button(key="sql_saved_delete_yes").click().run()
    assert not at.exception, at.exception
    assert list_saved(_page_store())["name"].tolist() == ["keep me"]
    assert any("Deleted the saved query “old one”" in s.value for s in at.success)
    assert at.selectbox(key="sql_saved_pick").options == ["keep me"]
    assert at.selectbox(key="sql_saved_pick").value is None


def test_page_deletes_an_imported_dataset_after_asking(db_path: Path, tmp_path: Path) -> None:
    from services.data.importer import import_dataset

    _seed(db_path)
    src = tmp_path / "langs.jsonl"
    src.write_text('{"text": "a", "lang": "en"}\n{"text": "b", "lang": "fr"}\n')
    store = Store(db_path)
    dataset_id = import_dataset(store, src, text_column="text", attribute_columns=["lang"], name="langs").dataset_id
    store.close()
    at = _app().run()
    at.selectbox(key="sql_dataset_pick").set_value(dataset_id).run()
    at.button(key="sql_dataset_delete").click().run()
    assert any("Delete “langs” and its 2 rows?" in w.value for w in at.warning)
    assert _page_store().scalar("SELECT count(*) FROM dataset_rows") == 2  # asking deletes nothing
    at.button(key="sql_dataset_delete_yes").click().run()
    assert not at.exception, at.exception
    assert any("Deleted the dataset" in s.value for s in at.success)
    page_store = _page_store()
    assert page_store.scalar("SELECT count(*) FROM datasets") == 0
    assert page_store.scalar("SELECT count(*) FROM dataset_rows") == 0
    assert "lang" not in page_store.query_df("SELECT * FROM dataset_rows_wide LIMIT 0").columns
    assert not [s for s in at.selectbox if s.key == "sql_dataset_pick"]


@pytest.mark.browser
def test_browser_runs_a_query_and_charts_it(tmp_path: Path) -> None:
    from tests.browser import browser_page, run_studio, screenshot, wait_for_app

    db = tmp_path / "studio.duckdb"
    _seed(db)
    with run_studio(db) as url, browser_page() as pg:
        pg.goto(url + "/sql")
        wait_for_app(pg)
        editor = pg.locator("textarea[aria-label='Query']")
        editor.fill("SELECT cuisine, count(*) AS samples, avg(completion_tokens) AS avg_tokens\n"
                    "FROM samples_wide GROUP BY cuisine ORDER BY cuisine")
        editor.press("Control+Enter")
        pg.get_by_role("button", name="Run", exact=True).click()
        wait_for_app(pg)
        pg.get_by_text("3 row(s) in").wait_for()
        chart = pg.locator(".js-plotly-plot").first
        chart.wait_for()
        chart.scroll_into_view_if_needed()
        pg.wait_for_timeout(800)
        # The main area scrolls inside its own container: shoot the viewport around the chart.
        path = screenshot(pg, "sql_query_chart", full_page=False)
        assert path.exists()
        assert pg.get_by_text("Rows were cut").count() == 0
