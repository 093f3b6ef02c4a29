"""Transient faults are retried under one budget, and every attempt is counted on the sample."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.generation.backends import BackendConfig, OpenAIBackend
from services.generation.retry import RetryPolicy
from services.generation.run_store import get_run
from services.generation.runner import execute_run
from tests.mock_openai import MockServer, prompt_id
from tests.run_helpers import grid_recipe, plan_run


@pytest.fixture
def mock():
    server = MockServer(latency=0.0).start()
    yield server
    server.stop()


def _backend(url: str, *, max_retries: int = 2, stream: bool = False) -> OpenAIBackend:
    backend = OpenAIBackend(BackendConfig("custom", url, "mock-model", "sk-test", timeout_s=5, max_retries=max_retries, stream=stream))
    backend.retry = RetryPolicy(max_retries, initial_backoff_s=0.01)  # the same budget, shorter waits for the test
    return backend


def _run(store, run_id, backend):
    async def go():
        try:
            return await execute_run(store, run_id, backend)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def _rows(store, run_id) -> dict[str, tuple]:
    """mode -> (text, error, attempts) of each output sample."""
    rows = store.query("SELECT messages, text, error, attempts FROM samples WHERE run_id = ? AND step = 'output'", [run_id])
    return {json.loads(m)[-1]["content"].split(" ", 2)[2]: (t, e, a) for m, t, e, a in rows}


def test_truncated_body_dropped_connection_and_5xx_are_retried_and_every_attempt_counted(store, mock):
    modes = ["ok", "[[malformed:once]]", "[[malformed:2]]", "[[malformed]]", "[[drop:once]]", "[[drop]]",
             "[[503:once]]", "[[500]]", "[[429:once]]"]
    run_id = plan_run(store, grid_recipe(modes), base_url=mock.url, concurrency=4, max_retries=2)
    out = _run(store, run_id, _backend(mock.url, max_retries=2))
    assert out.status == "finished"
    rows = _rows(store, run_id)
    assert len(rows) == len(modes)
    ok = {"ok": 1, "[[malformed:once]]": 2, "[[malformed:2]]": 3, "[[drop:once]]": 2, "[[503:once]]": 2, "[[429:once]]": 2}
    for mode, attempts in ok.items():
        text, error, counted = rows[mode]
        assert error is None and text.startswith("Sample for:"), (mode, error)
        assert counted == attempts, mode
    for mode in ("[[malformed]]", "[[drop]]", "[[500]]"):  # the budget is 1 + max_retries, then the sample fails
        assert rows[mode][1] is not None and rows[mode][2] == 3, mode
    assert "Malformed" in rows["[[malformed]]"][1]
    # the attempts column is what the server saw: one retry layer, none hidden in the client
    for i, mode in enumerate(modes):
        assert mock.state.attempts[prompt_id(f"Item {i} {mode}")] == rows[mode][2], mode
    assert out.generated == len(ok) and out.failed == 3


def test_streams_that_end_early_are_retried(store, mock):
    modes = ["ok", "[[streamcut:once]]", "[[streamend:once]]", "[[streamcut]]"]
    run_id = plan_run(store, grid_recipe(modes), base_url=mock.url, concurrency=4, max_retries=1)
    out = _run(store, run_id, _backend(mock.url, max_retries=1, stream=True))
    rows = _rows(store, run_id)
    assert rows["ok"][1:] == (None, 1)
    for mode in ("[[streamcut:once]]", "[[streamend:once]]"):
        text, error, attempts = rows[mode]
        assert error is None and attempts == 2 and text.startswith("Sample for:"), (mode, error)
    assert "ended early" in rows["[[streamcut]]"][1] and rows["[[streamcut]]"][2] == 2
    assert (out.generated, out.failed) == (3, 1)


def test_no_retries_means_one_attempt(store, mock):
    run_id = plan_run(store, grid_recipe(["[[malformed:once]]", "[[drop:once]]"]), base_url=mock.url, max_retries=0)
    out = _run(store, run_id, _backend(mock.url, max_retries=0))
    assert out.failed == 2 and mock.state.requests == 2
    assert {r[2] for r in _rows(store, run_id).values()} == {1}


def test_quota_errors_still_stop_the_run_at_once(store, mock):
    run_id = plan_run(store, grid_recipe(["ok", "[[quota]]", "later"]), base_url=mock.url, concurrency=1, max_retries=5)
    out = _run(store, run_id, _backend(mock.url, max_retries=5))
    assert out.status == "failed" and "quota" in out.message.lower()
    assert mock.state.attempts[prompt_id("Item 1 [[quota]]")] == 1  # never retried, however large the budget
    assert mock.state.requests == 2 and "insufficient_quota" in get_run(store, run_id).error


def test_the_backend_alone_retries_with_the_same_budget(mock):
    # complete() (the judge's and proposals' path) runs the same policy as the runner
    async def go():
        backend = _backend(mock.url, max_retries=1)
        try:
            ok = await backend.complete([{"role": "user", "content": "a [[malformed:once]]"}], {})
            with pytest.raises(json.JSONDecodeError):
                await backend.complete([{"role": "user", "content": "b [[malformed:2]]"}], {})
            return ok
        finally:
            await backend.aclose()

    assert asyncio.run(go()).text.startswith("Sample for:")
    assert mock.state.attempts[prompt_id("a [[malformed:once]]")] == 2
    assert mock.state.attempts[prompt_id("b [[malformed:2]]")] == 2
