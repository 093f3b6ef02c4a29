"""Forecasts as ranges, with time measured without the cold start; a run's own pace and ETA."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from services.generation.forecast import Forecast, Span, pace, past_speed, preview_forecast, rough_forecast
from services.generation.run_store import Price, Progress, get_run, insert_samples, progress, sample_key
from services.generation.runner import execute_run
from services.recipes.plan import make_plan
from tests.run_helpers import FakeBackend, plan_run, recipe

T0 = datetime(2025, 1, 1, 12, 0, 0)


def _write(store, run_id: str, timings: list[tuple[float, float]], pt: list[int] | None = None,
           ct: list[int] | None = None) -> None:
    """Output rows for items 0.. that ended at T0 + end_s, each with its measured latency (s)."""
    run = get_run(store, run_id)
    rows = []
    for i, (end_s, latency_s) in enumerate(timings):
        rows.append({
            "sample_key": sample_key(run_id, f"k{i}", 0, "output"), "run_id": run_id, "plan_id": run.plan_id,
            "item_idx": i, "item_key": f"k{i}", "sample_idx": 0, "step": "output", "recipe_hash": run.recipe_hash,
            "condition": {"topic": "tea"}, "demo_ids": [], "messages": "[]", "text": "x", "model": run.model,
            "params": "{}", "prompt_tokens": (pt or [100] * len(timings))[i], "completion_tokens": (ct or [10] * len(timings))[i],
            "latency_ms": latency_s * 1000, "cost_usd": 0.0, "finish_reason": "stop", "error": None, "attempts": 1,
            "created_at": T0 + timedelta(seconds=end_s),
        })
    insert_samples(store, rows)


def test_preview_time_on_the_built_in_model_leaves_out_the_cold_start_and_the_queue(store):
    # The trial's shape: three preview items sent at once to a server that decodes one at a time.
    # The first waited 20 s for the model to load; the others queued behind it, 2 s of work each.
    run_id = plan_run(store, recipe(n_items=3), concurrency=4)
    _write(store, run_id, [(20, 20), (22, 22), (24, 24)])
    f = preview_forecast(store, run_id, n_items=100, concurrency=1, price=None)
    assert f.seconds.low <= 200 <= f.seconds.high < 260  # 100 requests x 2 s; today: 100 x 22 s (the mean latency)
    assert f.seconds.low < f.seconds.high  # a range, not a point
    assert "first" in f.time_note and "left out" in f.time_note


def test_preview_time_on_a_parallel_backend_is_the_median_latency_over_the_concurrency(store):
    run_id = plan_run(store, recipe(n_items=4), concurrency=4)
    _write(store, run_id, [(5.0, 5.0), (5.1, 1.0), (5.2, 1.1), (5.3, 0.9)])  # the first paid the connection set-up
    f = preview_forecast(store, run_id, n_items=40, concurrency=4, price=None)
    assert f.requests == 40
    assert f.seconds.low <= 10 <= f.seconds.high <= 13  # 40 x 1 s / 4, not 40 x 2 s / 4
    assert f.basis == f"measured on 4 preview sample(s) of run {run_id}"


def test_preview_tokens_and_cost_are_ranges_around_the_measured_mean(store):
    run_id = plan_run(store, recipe(n_items=3), concurrency=1)
    _write(store, run_id, [(1, 1), (2, 1), (3, 1)], pt=[90, 100, 110], ct=[8, 10, 12])
    f = preview_forecast(store, run_id, n_items=1000, concurrency=1, price=Price(1.0, 2.0))
    assert f.prompt_tokens.low < 100_000 < f.prompt_tokens.high
    assert f.completion_tokens.low < 10_000 < f.completion_tokens.high <= 16 * 1000  # never above max_tokens (16)
    assert f.cost_usd.low == pytest.approx(Price(1.0, 2.0).cost(int(f.prompt_tokens.low), int(f.completion_tokens.low)))
    assert f.cost_usd.low < Price(1.0, 2.0).cost(100_000, 10_000) < f.cost_usd.high


def test_rough_forecast_counts_the_prompts_it_used_and_says_why_it_has_no_time(store):
    rec = recipe(n_items=9)
    items = make_plan(rec, limit=3).items
    f = rough_forecast(items, n_items=9, samples_per_item=1, n_steps=1, max_tokens=16, price=None, model="mock-model")
    assert "the 3 rendered prompt(s)" in f.basis
    assert f.seconds is None and "no earlier run on mock-model" in f.time_note
    assert f.completion_tokens == Span(9 * 4, 9 * 16)
    assert f.prompt_tokens.low < f.prompt_tokens.high


def test_rough_forecast_has_a_time_range_once_an_earlier_run_measured_the_model(store):
    run_id = plan_run(store, recipe(n_items=4), concurrency=1)
    _write(store, run_id, [(30, 30), (31, 1), (32, 1), (33, 1)], ct=[10, 10, 10, 10])  # 0.1 s per token once warm
    speed = past_speed(store, "custom", "mock-model", one_at_a_time=True)
    assert speed.requests == 3 and speed.per_token.low <= 0.1 <= speed.per_token.high
    assert past_speed(store, "custom", "other-model", one_at_a_time=True) is None
    items = make_plan(recipe(n_items=10), limit=3).items
    f = rough_forecast(items, 10, 1, 1, 16, None, speed=speed, parallel=1, model="mock-model")
    assert f.seconds.low <= 10 * 4 * 0.1 and f.seconds.high >= 10 * 16 * 0.1  # answers of 4..16 tokens at 0.1 s each
    assert "3 earlier request(s)" in f.time_note


def test_pace_gives_the_runs_own_rate_and_eta():
    now = T0 + timedelta(seconds=50)
    p = Progress(total=100, done=4, failed=1, prompt_tokens=0, completion_tokens=0, cost_usd=0.0, rows=5,
                 first_at=T0, last_at=now, attempt_at=T0, attempt_ended=5, attempt_first_at=T0 + timedelta(seconds=10),
                 attempt_last_at=now)
    pc = pace(p, "running", now)
    assert pc.elapsed_s == 50 and pc.per_s == pytest.approx(4 / 40)  # the first output (after the warm-up) starts the clock
    assert pc.eta_s == pytest.approx(95 / 0.1)
    done = pace(p, "finished", now, finished_at=now)
    assert done.eta_s is None and done.per_s == pytest.approx(5 / 50)  # a stopped run: its outputs over its whole time


def test_progress_knows_this_attempts_start_and_outputs(store):
    run_id = plan_run(store, recipe(n_items=4), concurrency=1)
    asyncio.run(execute_run(store, run_id, FakeBackend(delay=0.01)))
    p = progress(store, get_run(store, run_id))
    assert p.attempt_at is not None and p.attempt_ended == 4 and p.remaining == 0
    assert p.attempt_first_at <= p.attempt_last_at


def _forecast_box(f):  # no annotations: AppTest runs the body as a script
    from components.generate_view import forecast_view

    forecast_view("Forecast from the preview", f)


def test_forecast_view_shows_ranges_with_short_tokens_and_the_exact_figures_in_help():
    f = Forecast(1000, Span(1_234_567, 1_600_000), Span(40_000, 50_000), Span(0.5, 0.75), Span(540, 660), "measured", "note")
    at = AppTest.from_function(_forecast_box, args=(f,)).run()
    assert not at.exception, at.exception
    m = {x.label: x for x in at.metric}
    assert m["Tokens"].value == "1.3M–1.6M"  # fits the box; today the label was long and the value cut off
    assert "1,234,567" in m["Tokens"].help and "50,000" in m["Tokens"].help
    assert m["Cost"].value == "$0.50–$0.75" and m["Time"].value == "9.0–11.0 min"


def _live(run, p, now):
    from components.generate_view import live_view

    live_view(run, p, [], [], now)


def test_live_view_shows_elapsed_time_and_eta_while_the_run_runs(store):
    run_id = plan_run(store, recipe(n_items=3))
    run = get_run(store, run_id)
    run = type(run)(**{**run.__dict__, "status": "running", "started_at": T0})
    now = T0 + timedelta(seconds=70)
    p = Progress(total=100, done=5, failed=0, prompt_tokens=1000, completion_tokens=50, cost_usd=0.0, rows=5,
                 first_at=T0, last_at=now, attempt_at=T0, attempt_ended=5, attempt_first_at=T0 + timedelta(seconds=30),
                 attempt_last_at=now)
    at = AppTest.from_function(_live, args=(run, p, now)).run()
    assert not at.exception, at.exception
    m = {x.label: x.value for x in at.metric}
    assert m["Elapsed"] == "1 min 10 s" and m["Samples/s"] == "0.10"
    assert m["ETA"] == "15 min 50 s"  # 95 left at 4 outputs per 40 s
    assert "about 15 min 50 s left" in at.get("progress")[0].proto.text
