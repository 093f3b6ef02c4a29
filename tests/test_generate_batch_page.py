"""The Generate page's batch panel against the mock batch endpoints: compare, submit, collect with
progress, a malformed output line said in words, resubmit of what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from services.core.store import Store
from tests.mock_batch import BatchMock

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "generate.py")


@pytest.fixture
def mock():
    with BatchMock() as m:
        yield m


def _samples(db: Path) -> tuple[int, int]:
    from resources import get_store

    store: Store = get_store()
    return store.query("SELECT count(*) FILTER (WHERE error IS NULL), count(DISTINCT run_id) FROM samples")[0]


def _texts(at: AppTest, kind: str) -> str:
    return " ".join(e.value for e in getattr(at, kind))


def test_send_a_run_as_a_batch_collect_it_and_resubmit_the_unread_line(app_env, mock):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    at.text_input(key="generate_batch_url_openai").set_value(mock.url).run()
    at.text_input(key="generate_batch_model_openai").set_value("gpt-4o-mini").run()
    table = at.table[-1].value
    assert table.loc["batch", "time"] == "within 24 h" and table.loc["live", "cost"].startswith("$")
    # the batch costs half the live price on the same tokens (gpt-4o-mini is in the shipped prices)
    live_low, batch_low = (float(table.loc[k, "cost"].split("–")[0].lstrip("$")) for k in ("live", "batch"))
    assert batch_low == pytest.approx(live_low / 2, rel=0.05)
    assert "50% of the standard price" in _texts(at, "caption")
    mock.malformed_line = True
    at.button(key="generate_batch_submit_new").click().run()
    assert not at.exception, at.exception
    assert "Sent batch-" in _texts(at, "success"), _texts(at, "error")
    n_lines = int(mock.batches[next(iter(mock.batches))]["request_counts"]["total"])
    assert n_lines > 1
    at.button(key="generate_batch_collect").click().run()
    assert not at.exception, at.exception
    errors = _texts(at, "error")
    assert "could not be read" in errors and "line 1" in errors and f"{n_lines - 1} imported" in errors
    assert _samples(app_env) == (n_lines - 1, 1)
    mock.malformed_line = False
    at.button(key="generate_batch_submit_run").click().run()
    assert "Sent batch-" in _texts(at, "success") and ": 1 line(s)" in _texts(at, "success")
    at.button(key="generate_batch_collect").click().run()
    assert not at.exception, at.exception
    assert "Collected batch-" in _texts(at, "success")
    assert _samples(app_env) == (n_lines, 1)
    assert len(at.dataframe) >= 1  # the batches of the run, as a table


def test_a_missing_key_is_shown_before_sending(app_env, mock, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="generate_batch_provider").set_value("anthropic").run()
    assert "$ANTHROPIC_API_KEY is not set" in _texts(at, "warning")
    at.text_input(key="generate_batch_url_anthropic").set_value(mock.url).run()
    at.button(key="generate_batch_submit_new").click().run()
    assert not at.exception, at.exception
    assert "No key for Anthropic Message Batches" in _texts(at, "error") and not mock.requests
    # with a wrong key the provider's 401 is said in words
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-wrong")
    at.button(key="generate_batch_submit_new").click().run()
    assert "Unauthorised (HTTP 401)" in _texts(at, "error") and "ak-wrong" not in _texts(at, "error")


def test_vllm_file_from_the_page_then_collect_its_output(app_env):
    import json

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="generate_batch_provider").set_value("vllm").run()
    at.text_input(key="generate_batch_model_vllm").set_value("my-model").run()
    at.button(key="generate_batch_submit_new").click().run()
    assert not at.exception, at.exception
    sent = _texts(at, "success")
    assert "vllm run-batch -i" in sent and "--model my-model" in sent
    src = next((app_env.parent / "cache" / "batches").glob("*.input.jsonl"))
    out = at.text_input(key="generate_batch_vllm_out").value
    assert out.endswith(".output.jsonl")
    Path(out).write_text("".join(json.dumps({"custom_id": json.loads(x)["custom_id"], "error": None, "response": {
        "status_code": 200, "body": {"choices": [{"message": {"content": "from vllm"}, "finish_reason": "stop"}]}}}) + "\n"
        for x in src.read_text().splitlines()))
    # a path outside the allowed folders is refused in words, and nothing is read
    at.text_input(key="generate_batch_vllm_out").set_value("/etc/passwd").run()
    at.button(key="generate_batch_collect").click().run()
    assert "outside the folders" in _texts(at, "error") and _samples(app_env)[0] == 0
    at.text_input(key="generate_batch_vllm_out").set_value(out).run()
    at.button(key="generate_batch_collect").click().run()
    assert not at.exception, at.exception
    assert "Collected batch-" in _texts(at, "success")
    assert _samples(app_env) == (len(src.read_text().splitlines()), 1)
    assert at.button(key="generate_batch_collect").disabled  # nothing open any more


def _wait(cond, timeout: float = 30.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end and not cond():
        time.sleep(0.05)
    return cond()


def _send_openai(at: AppTest, mock: BatchMock) -> str:
    at.text_input(key="generate_batch_url_openai").set_value(mock.url).run()
    at.text_input(key="generate_batch_model_openai").set_value("gpt-4o-mini").run()
    at.button(key="generate_batch_submit_new").click().run()
    assert not at.exception, at.exception
    sent = _texts(at, "success")
    assert "Sent batch-" in sent, _texts(at, "error")
    return sent.split("Sent ")[1].split(":")[0]


def test_the_poller_collects_without_a_click_and_a_reload_sees_it(app_env, mock, monkeypatch):
    from resources import get_batch_poller

    monkeypatch.setenv("STUDIO_BATCH_POLL_S", "0.2")
    mock.polls_until_done = 2
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    bid = _send_openai(at, mock)
    captions = _texts(at, "caption")
    assert "checked in the background" in captions and f"{bid}`:" in captions
    poller = get_batch_poller()
    assert _wait(lambda: (s := poller.state(bid)) is not None and s.outcome is not None)
    n_lines = int(mock.batches[next(iter(mock.batches))]["request_counts"]["total"])
    # a reload: a new session, no click; the process's poller has collected the batch
    again = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not again.exception, again.exception
    table = again.dataframe[-1].value
    row = table[table["batch"] == bid].iloc[0]
    assert row["state"] == "collected" and row["imported"] == n_lines and row["updated (UTC)"]
    assert _samples(app_env) == (n_lines, 1)
    assert again.button(key="generate_batch_collect").disabled and "Collected" not in _texts(again, "success")
    assert f"{bid}`: collected: {n_lines} imported, 0 failed, in the background at" in _texts(again, "caption")


def test_a_failing_check_is_shown_and_a_live_resume_would_not_pay_twice(app_env, mock, monkeypatch):
    from resources import get_batch_poller

    monkeypatch.setenv("STUDIO_BATCH_POLL_S", "0.2")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    bid = _send_openai(at, mock)
    mock.api_key = "sk-rotated"  # the key the studio holds is refused from now on
    poller = get_batch_poller()
    assert _wait(lambda: (s := poller.state(bid)) is not None and s.failures >= 1)
    at.run()
    warnings = _texts(at, "warning")
    assert "Unauthorised (HTTP 401)" in warnings and "$OPENAI_API_KEY" in warnings and "sk-test" not in warnings
    assert "backing off after" in _texts(at, "caption")
    assert "Check 1 failed" in " ".join(at.dataframe[-1].value["note"])
    # the run's lines are in the open batch: the live Resume refuses instead of paying twice
    at.button(key="generate_resume").click().run()
    assert not at.exception, at.exception
    assert "pay twice" in _texts(at, "error") and bid in _texts(at, "error")
    from resources import get_job_manager

    assert not get_job_manager().is_active(at.session_state["generate_run_pick"])
    # the provider takes the key again: Check status asks at once and the poller, poked, collects without waiting out its backoff
    import time

    mock.api_key = "sk-test"
    poller.state(bid).next_at = time.monotonic() + 3600  # as after many failures: the next try an hour away
    at.button(key="generate_batch_status").click().run()
    assert not at.exception and not _texts(at, "error"), _texts(at, "error")
    assert _wait(lambda: poller.state(bid).outcome is not None, timeout=20)
    assert poller.state(bid).outcome.startswith("collected:") and _samples(app_env)[0] > 0


def test_an_anthropic_batch_run_resumes_live_on_the_anthropic_preset_once_consented(app_env, mock, monkeypatch):
    from dataclasses import replace

    from services.generation.presets import PRESETS
    from tests.mock_openai import MockServer

    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-test")
    monkeypatch.setenv("STUDIO_BATCH_POLL_S", "soon")  # not a number: said, and the default used
    mock.polls_until_done = 10**6
    with MockServer(api_key="ak-test") as live_url:  # the Anthropic preset's OpenAI-compatible endpoint, taking its key
        monkeypatch.setitem(PRESETS, "anthropic", replace(PRESETS["anthropic"], base_url=live_url))
        at = AppTest.from_file(PAGE, default_timeout=60).run()
        at.selectbox(key="generate_batch_provider").set_value("anthropic").run()
        at.text_input(key="generate_batch_url_anthropic").set_value(mock.url).run()
        at.button(key="generate_batch_submit_new").click().run()
        assert "Sent batch-" in _texts(at, "success"), _texts(at, "error")
        assert "STUDIO_BATCH_POLL_S='soon' is not a number of seconds: batches are checked after 60 s" in _texts(at, "warning")
        at.button(key="generate_resume").click().run()
        assert "pay twice" in _texts(at, "error") and _samples(app_env)[0] == 0
        at.checkbox(key="generate_batch_pay_twice").check().run()
        at.button(key="generate_resume").click().run()
        assert not at.exception, at.exception
        assert not _texts(at, "error"), _texts(at, "error")
        assert _wait(lambda: _samples(app_env)[0] > 0, timeout=30), "the live resume wrote no sample"


@pytest.mark.browser
def test_browser_sends_a_batch_and_collects_it(tmp_path, mock):
    from tests.browser import browser_page, run_studio, screenshot, scroll_to, wait_for_app

    with run_studio(tmp_path / "studio.duckdb", {"OPENAI_API_KEY": "sk-test"}) as url, browser_page() as page:
        page.goto(url + "/generate")
        wait_for_app(page)
        page.get_by_text("Send as a batch", exact=False).first.click()
        for label, value in (("API URL", mock.url), ("Model", "gpt-4o-mini")):
            box = page.get_by_label(label, exact=True).last
            box.fill(value)
            box.press("Enter")
            wait_for_app(page)
        page.get_by_role("button", name="Send the full run as a batch").click()
        page.get_by_text("Sent batch-", exact=False).first.wait_for()
        wait_for_app(page)
        page.get_by_role("button", name="Collect").click()
        page.get_by_text("Collected batch-", exact=False).first.wait_for()
        wait_for_app(page)
        scroll_to(page.get_by_text("Batches of this run", exact=False).first)
        assert screenshot(page, "generate_batch", full_page=False).exists()
        assert mock.batches and page.get_by_text("collected", exact=True).count() >= 1


@pytest.mark.browser
def test_browser_shows_the_poller_and_the_collect_it_made_in_the_background(tmp_path, mock):
    from tests.browser import browser_page, run_studio, screenshot, scroll_to, wait_for_app

    mock.polls_until_done = 10**6
    env = {"OPENAI_API_KEY": "sk-test", "STUDIO_BATCH_POLL_S": "1"}
    with run_studio(tmp_path / "studio.duckdb", env) as url, browser_page() as page:
        page.goto(url + "/generate")
        wait_for_app(page)
        page.get_by_text("Send as a batch", exact=False).first.click()
        for label, value in (("API URL", mock.url), ("Model", "gpt-4o-mini")):
            box = page.get_by_label(label, exact=True).last
            box.fill(value)
            box.press("Enter")
            wait_for_app(page)
        page.get_by_role("button", name="Send the full run as a batch").click()
        page.get_by_text("Sent batch-", exact=False).first.wait_for()
        # the fragment refreshes on its own: the poller's checks show up without a click
        page.get_by_text("waiting for the provider", exact=False).first.wait_for(timeout=30_000)
        assert page.get_by_text("last checked", exact=False).count() >= 1
        scroll_to(page.get_by_text("Batches of this run", exact=False).first)
        assert screenshot(page, "generate_batch_polling", full_page=False).exists()
        mock.polls_until_done = 0  # the provider finishes: the poller collects, the page shows it unasked
        page.wait_for_function("() => [...document.querySelectorAll('[data-testid^=glide-cell]')]"
                               ".some(c => c.textContent.trim() === 'collected')", timeout=60_000)
        wait_for_app(page)
        scroll_to(page.get_by_text("Batches of this run", exact=False).first)
        assert screenshot(page, "generate_batch_polled", full_page=False).exists()
