"""Adaptive concurrency (AIMD): 429s and rate-limit headers lower it, successes raise it back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from services.generation.backends import BackendConfig, OpenAIBackend
from services.generation.pacing import AdaptiveConcurrency, LiveState
from services.generation.rate_signals import NO_SIGNAL, RateSignal, read_headers
from services.generation.retry import RetryPolicy
from services.generation.run_store import events
from services.generation.runner import JobManager, execute_run
from tests.mock_openai import MockServer
from tests.run_helpers import plan_run, recipe


@contextlib.contextmanager
def serving(**state) -> Iterator[MockServer]:
    server = MockServer(**state).start()
    try:
        yield server
    finally:
        server.stop()


def _backend(url: str, max_retries: int) -> OpenAIBackend:
    backend = OpenAIBackend(BackendConfig("custom", url, "mock-model", "sk-test", timeout_s=5, max_retries=max_retries))
    backend.retry = RetryPolicy(max_retries, initial_backoff_s=0.01)
    return backend


def _run(store, run_id, backend, live):
    async def go():
        try:
            return await execute_run(store, run_id, backend, live=live)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def _outputs(store, run_id) -> list[tuple[int, int]]:
    return store.query("SELECT item_idx, attempts FROM samples WHERE run_id = ? AND step = 'output' AND error IS NULL ORDER BY item_idx", [run_id])


def test_429s_with_retry_after_lower_concurrency_which_recovers_and_every_sample_is_made_once(store):
    # The first 12 requests answer 429 with Retry-After 0.2 s, then everything succeeds.
    with serving(latency=0.02, rate_limit_first=12, retry_after=0.2) as server:
        url, server_state = server.url, server.state
        run_id = plan_run(store, recipe(n_items=60), base_url=url, concurrency=8, max_retries=5)
        live = LiveState()
        out = _run(store, run_id, _backend(url, 5), live)
    assert (out.status, out.generated, out.failed) == ("finished", 60, 0)
    rows = _outputs(store, run_id)
    assert [i for i, _ in rows] == list(range(60))  # each sample exactly once...
    assert sorted(server_state.completed.values()) == [1] * 60  # ...and paid for once
    assert sum(a for _, a in rows) == server_state.requests == 72  # every attempt counted, 429s included
    assert live.rate_limited == 12
    assert live.lowest < 8 and live.concurrency == 8  # dropped, then climbed back to the ceiling
    # the server saw the drop: the first successes came in at most `lowest` at a time
    first_ok = server_state.in_flight_at_arrival[12:12 + live.lowest]
    assert max(first_ok) <= live.lowest
    assert max(server_state.in_flight_at_arrival[40:]) > live.lowest  # and the climb
    # Retry-After was waited for: nothing was sent within 0.2 s of the first 429
    assert server_state.arrivals[8] >= server_state.rejections[0] + 0.18
    kinds = [(k, m) for _, k, m in events(store, run_id, limit=50)]
    assert ("paced", "concurrency 8 → 4 (HTTP 429)") in kinds and ("paced", "concurrency back to 8") in kinds
    assert any(k == "finished" and "12 rate-limit" in m for k, m in kinds)


def test_remaining_requests_header_lowers_concurrency_without_any_429(store):
    with serving(latency=0.01, remaining_requests=1) as server:
        url, server_state = server.url, server.state
        run_id = plan_run(store, recipe(n_items=16), base_url=url, concurrency=4)
        live = LiveState()
        out = _run(store, run_id, _backend(url, 2), live)
    assert out.generated == 16 and live.rate_limited == 0
    assert live.lowest == 1  # one request left in the window: one at a time
    assert server_state.requests == 16 and max(server_state.in_flight_at_arrival[8:]) <= 2


def test_an_exhausted_window_pauses_until_its_reset(store):
    with serving(latency=0.01, remaining_requests=0, reset_requests="250ms") as server:
        url, server_state = server.url, server.state
        run_id = plan_run(store, recipe(n_items=3), base_url=url, concurrency=1)
        out = _run(store, run_id, _backend(url, 2), LiveState())
    assert out.generated == 3
    gaps = [b - a for a, b in zip(server_state.arrivals, server_state.arrivals[1:], strict=False)]
    assert min(gaps) >= 0.22


def test_job_manager_exposes_the_live_pacing(store):
    with serving(latency=0.02, rate_limit_first=4, retry_after=0.05) as server:
        url = server.url
        run_id = plan_run(store, recipe(n_items=10), base_url=url, concurrency=4, max_retries=5)
        jobs = JobManager(store)
        jobs.start(run_id, lambda: _backend(url, 5))
        outcome = jobs.wait(run_id, timeout=30)
    assert outcome.status == "finished" and outcome.generated == 10
    live = jobs.live(run_id)
    assert live.limit == 4 and live.rate_limited == 4 and live.lowest < 4
    assert jobs.live("no-such-run") is None


# -- the parts, without a server ------------------------------------------------------------------


def test_rate_headers_are_read():
    sig = read_headers({"retry-after": "2", "x-ratelimit-remaining-requests": "7", "x-ratelimit-remaining-tokens": "900",
                        "x-ratelimit-reset-requests": "6m0s", "x-ratelimit-reset-tokens": "20ms"})
    assert sig == RateSignal(2.0, 7, 900, 360.0, 0.02)
    assert read_headers({"retry-after-ms": "150", "retry-after": "9"}).retry_after_s == 0.15
    assert read_headers({"retry-after": "soon"}) == NO_SIGNAL and read_headers(None) == NO_SIGNAL
    assert sig.pressed(8, 10) and not sig.pressed(4, 10) and sig.pressed(4, 300)  # 900 tokens < 4 x 300
    assert RateSignal(remaining_requests=0, reset_requests_s=1.5).reset_s() == 1.5


def test_aimd_halves_once_per_round_and_adds_back_one_per_round():
    async def go():
        t = [0.0]
        p = AdaptiveConcurrency(8, clock=lambda: t[0])
        tickets = [await p.enter() for _ in range(8)]
        for tk in tickets:  # a whole round of 429s answers one load: one halving, not eight
            p.leave(tk, ok=False, rate_limited=True, signal=RateSignal(retry_after_s=3.0))
        assert (p.allowed, p.live.rate_limited, p.live.paused_until) == (4, 8, 3.0)
        t[0] = 3.0
        tk = await p.enter()
        p.leave(tk, ok=False, rate_limited=True, signal=NO_SIGNAL)  # admitted after the halving: counts
        assert p.allowed == 2
        for _ in range(3):
            p.leave(await p.enter(), ok=True, rate_limited=False, signal=NO_SIGNAL)
        assert p.allowed == 3  # 2 + 1/2 + 1/2.5 + 1/2.9 > 3
        for _ in range(200):
            p.leave(await p.enter(), ok=True, rate_limited=False, signal=NO_SIGNAL)
        assert p.allowed == 8 and p.live.concurrency == 8 and p.live.lowest == 2  # never above the ceiling
        for _ in range(5):
            p.leave(await p.enter(), ok=False, rate_limited=True, signal=NO_SIGNAL)
        assert p.allowed == 1  # floor 1

    asyncio.run(go())


def test_waiters_are_admitted_when_a_slot_frees():
    async def go():
        p = AdaptiveConcurrency(1)
        first = await p.enter()
        waiting = asyncio.ensure_future(p.enter())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        p.leave(first, ok=True, rate_limited=False, signal=NO_SIGNAL)
        await asyncio.wait_for(waiting, 1)
        assert p.in_flight == 1

    asyncio.run(go())
