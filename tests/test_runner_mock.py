"""The runner against a real OpenAI-compatible mock server on loopback."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

from services.generation.backends import BackendConfig, OpenAIBackend
from services.generation.run_store import get_run, progress, run_samples
from services.generation.runner import execute_run
from tests.mock_openai import MockServer, prompt_id
from tests.run_helpers import grid_recipe, plan_run, recipe


@pytest.fixture
def mock():
    server = MockServer(latency=0.0).start()
    yield server
    server.stop()


def _backend(url: str, timeout_s: float = 5.0, max_retries: int = 2) -> OpenAIBackend:
    return OpenAIBackend(BackendConfig("custom", url, "mock-model", "sk-test", timeout_s=timeout_s, max_retries=max_retries))


async def _run(store, run_id, backend):
    try:
        return await execute_run(store, run_id, backend)
    finally:
        await backend.aclose()


def test_every_failure_mode_ends_generated_or_failed_with_its_error(store, mock):
    modes = ["ok", "[[500]]", "[[503:once]]", "[[429:once]]", "[[malformed]]", "[[drop:once]]", "[[drop]]", "[[timeout]]"]
    run_id = plan_run(store, grid_recipe(modes), base_url=mock.url, concurrency=8, timeout_s=0.5, max_retries=1)
    out = asyncio.run(_run(store, run_id, _backend(mock.url, timeout_s=0.5, max_retries=1)))
    assert out.status == "finished"
    rows = {json.loads(r[1])[-1]["content"].split(" ", 2)[2]: r for r in
            store.query("SELECT text, messages, error, prompt_tokens, completion_tokens FROM samples WHERE run_id = ?", [run_id])}
    assert len(rows) == len(modes)
    for ok in ("ok", "[[503:once]]", "[[429:once]]", "[[drop:once]]"):
        assert rows[ok][2] is None and rows[ok][0].startswith("Sample for:"), ok
        assert rows[ok][3] > 0 and rows[ok][4] == 5  # usage recorded per sample
    assert "HTTP 500" in rows["[[500]]"][2]
    assert "Malformed" in rows["[[malformed]]"][2] or "JSON" in rows["[[malformed]]"][2]
    assert "connect" in rows["[[drop]]"][2].lower()
    assert "Timed out" in rows["[[timeout]]"][2]
    # one retry layer: the client's (max_retries=1 -> at most 2 attempts), none on top
    for i, mode in enumerate(modes):
        assert mock.state.attempts[prompt_id(f"Item {i} {mode}")] <= 2
    assert mock.state.attempts[prompt_id("Item 1 [[500]]")] == 2


def test_quota_error_stops_the_run_without_retrying(store, mock):
    mock.state.quota_after = 3
    run_id = plan_run(store, recipe(n_items=20), base_url=mock.url, concurrency=1)
    out = asyncio.run(_run(store, run_id, _backend(mock.url)))
    assert out.status == "failed" and "quota" in out.message.lower()
    run = get_run(store, run_id)
    assert run.status == "failed" and "insufficient_quota" in run.error
    assert mock.state.requests == 4  # the 4th answered 429 insufficient_quota and was not retried
    p = progress(store, run)
    assert p.done == 3 and p.failed == 0  # the stopped item is missing (resumable), not failed


def test_concurrency_limit_is_respected(store, mock):
    mock.state.latency = 0.03
    run_id = plan_run(store, recipe(n_items=40), base_url=mock.url, concurrency=5)
    out = asyncio.run(_run(store, run_id, _backend(mock.url)))
    assert out.generated == 40
    assert mock.state.max_in_flight == 5


def test_rpm_limit_is_respected(store, mock):
    run_id = plan_run(store, recipe(n_items=12), base_url=mock.url, concurrency=8, rpm=4, window_s=1.0)
    out = asyncio.run(_run(store, run_id, _backend(mock.url)))
    assert out.generated == 12
    arrivals = sorted(mock.state.arrivals)
    # No window (shortened to 1 s for the test) ever holds more than 4 requests. Arrivals are read
    # at the server, a request's way there varying by tens of milliseconds on a busy machine: a
    # quarter of a second of slack.
    for i, t in enumerate(arrivals):
        assert sum(1 for a in arrivals[i:] if a < t + 0.75) <= 4


def test_tpm_limit_is_respected(store, mock):
    # each request is estimated at len(prompt)/4 + max_tokens (16): about 30 tokens; 70 per window fits 2
    run_id = plan_run(store, recipe(n_items=8), base_url=mock.url, concurrency=8, tpm=70, window_s=0.5)
    asyncio.run(_run(store, run_id, _backend(mock.url)))
    arrivals = sorted(mock.state.arrivals)
    assert len(arrivals) == 8
    for i, t in enumerate(arrivals):
        assert sum(1 for a in arrivals[i:] if a < t + 0.45) <= 2


def test_streaming_and_models_endpoints_are_real_openai_protocol(mock):
    from openai import OpenAI

    client = OpenAI(base_url=mock.url, api_key="x", max_retries=0)
    chunks = list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == "Sample for: hi" and chunks[-1].usage.completion_tokens == 5
    assert [m.id for m in client.models.list()] == ["mock-model"]
    with urllib.request.urlopen(mock.url.removesuffix("/v1") + "/_stats") as r:
        assert json.loads(r.read())["requests"] == 1


def test_run_samples_keep_messages_and_params(store, mock):
    run_id = plan_run(store, recipe(n_items=2, seed=3), base_url=mock.url)
    asyncio.run(_run(store, run_id, _backend(mock.url)))
    rows = run_samples(store, run_id)
    assert len(rows) == 2 and all("(seed 3)" in r["text"] for r in rows)
