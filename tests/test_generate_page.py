"""The Generate page: AppTest against the mock backend, and a browser run with the built-in model."""

from __future__ import annotations

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


def test_page_defaults_to_the_local_model_with_a_plain_warning(app_env):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="generate_backend").value == "local"
    assert any("demos and smoke tests" in w.value for w in at.warning)
    assert "not started" in " ".join(c.value for c in at.caption)  # lazy: no server at page load
    labels = [b.label for b in at.button]
    assert {"Test connection", "Generate preview", "Start full run"} <= set(labels)
    assert any(m.label == "Requests" for m in at.metric)  # rough forecast shown before anything is sent


def test_preview_run_on_a_mock_backend_then_forecast_and_live_view(app_env, mock):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="generate_recipe").set_value("demo: instruction_response").run()  # one call per item
    at.selectbox(key="generate_backend").set_value("custom").run()
    at.text_input(key="generate_base_url_custom").set_value(mock.url).run()
    at.text_input(key="generate_model_custom").set_value("mock-model").run()
    at.button(key="generate_test").click().run()
    assert not at.exception, at.exception
    assert any("Connected" in s.value for s in at.success)
    at.number_input(key="generate_n_preview").set_value(4).run()
    at.button(key="generate_preview").click().run()
    assert not at.exception, at.exception
    for _ in range(100):
        if any("Forecast from the preview" in md.value for md in at.markdown):
            break
        time.sleep(0.2)
        at.run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Generated"] == "4" and metrics["Errors"] == "0"
    assert any("Forecast from the preview" in md.value for md in at.markdown)
    assert mock.state.completions_ok == 4
    # the newest samples are plain data (a dataframe and st.text), never HTML
    assert at.dataframe and any("Sample for:" in t.value for t in at.text)


def test_connection_error_is_said_in_words(app_env):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="generate_backend").set_value("vllm").run()
    at.text_input(key="generate_base_url_vllm").set_value("http://127.0.0.1:9/v1").run()
    at.button(key="generate_test").click().run()
    assert not at.exception
    assert any("refused" in e.value.lower() for e in at.error)


@pytest.mark.parametrize("form_backend", ["custom", "ollama"])
def test_resume_uses_the_runs_own_backend_and_model_not_the_forms(app_env, mock, monkeypatch, form_backend):
    from resources import get_job_manager, get_store
    from services.generation import connect
    from services.generation.run_store import get_run
    from tests.run_helpers import plan_run, recipe

    run_id = plan_run(get_store(), recipe(n_items=3), base_url=mock.url)  # planned on custom / mock-model
    seen = []
    real = connect.OpenAIBackend

    def spy(cfg, **kwargs):
        seen.append((cfg.preset, cfg.base_url, cfg.model, cfg.api_key))
        return real(cfg, **kwargs)

    monkeypatch.setattr(connect, "OpenAIBackend", spy)
    other = MockServer().start()  # what the form points at now: it must never be asked
    try:
        at = AppTest.from_file(PAGE, default_timeout=60).run()
        at.selectbox(key="generate_backend").set_value(form_backend).run()
        at.text_input(key=f"generate_base_url_{form_backend}").set_value(other.url).run()
        at.text_input(key=f"generate_model_{form_backend}").set_value("form-model").run()
        assert at.selectbox(key="generate_run_pick").value == run_id
        at.button(key="generate_resume").click().run()
        assert not at.exception, at.exception
        get_job_manager().wait(run_id, timeout=30)
        at.run()
        assert not at.exception, at.exception
        assert get_run(get_store(), run_id).status == "finished"
        assert seen == [("custom", mock.url, "mock-model", "sk-test")]  # the key its preset names (OPENAI_API_KEY)
        assert mock.state.completions_ok == 3 and other.state.requests == 0
    finally:
        other.stop()


@pytest.mark.browser
@pytest.mark.real_model
def test_browser_generates_with_the_built_in_model(page, studio):
    from tests.browser import screenshot, wait_for_app

    page.goto(studio + "/generate")
    wait_for_app(page)
    page.get_by_text("demos and smoke tests", exact=False).first.wait_for()
    tokens = page.get_by_label("Max tokens")
    tokens.fill("24")
    tokens.press("Enter")
    wait_for_app(page)
    n = page.get_by_label("Preview items")
    n.fill("3")
    n.press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Generate preview").click()
    live = page.get_by_text("Newest samples", exact=False).first
    live.wait_for(timeout=90_000)
    live.scroll_into_view_if_needed()
    screenshot(page, "generate_running", full_page=False)
    page.get_by_text("finished: 3 of 3 samples", exact=False).first.wait_for(timeout=120_000)
    wait_for_app(page)
    page.get_by_text("Forecast from the preview", exact=False).first.wait_for(timeout=30_000)
    assert page.get_by_text("Built-in model server: ready", exact=False).count() == 1
    page.get_by_text("Newest samples", exact=False).first.scroll_into_view_if_needed()
    path = screenshot(page, "generate_live_view", full_page=False)
    assert path.exists()


def test_previews_get_distinct_names_and_a_run_can_be_renamed(app_env, mock):
    from resources import get_job_manager, get_store
    from services.generation.run_store import get_run, list_runs

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="generate_backend").set_value("custom").run()
    at.text_input(key="generate_base_url_custom").set_value(mock.url).run()
    at.text_input(key="generate_model_custom").set_value("mock-model").run()
    at.number_input(key="generate_n_preview").set_value(1).run()
    for _ in range(2):
        at.button(key="generate_preview").click().run()
        get_job_manager().wait(at.session_state["generate_run"], timeout=30)
    names = sorted(r.name for r in list_runs(get_store()))
    assert len(names) == 2 and len(set(names)) == 2 and names[0].endswith("preview"), names
    at.run()
    run_id = at.session_state["generate_run"]
    at.text_input(key=f"generate_rename_{run_id}").set_value("baseline v2").run()
    at.button(key=f"generate_rename_save_{run_id}").click().run()
    assert not at.exception, at.exception
    assert get_run(get_store(), run_id).name == "baseline v2"
    assert at.selectbox(key="generate_run_pick").format_func(run_id).startswith("baseline v2 · preview")
