"""The runner with a fake backend: provenance, budget, cancel, steps, resume; the throttle."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.generation.run_store import (
    Price,
    get_run,
    mark_interrupted,
    progress,
    run_samples,
    sample_key,
    set_prices,
    set_status,
)
from services.generation.runner import JobManager, RunSettings, Throttle, execute_run
from tests.run_helpers import FakeBackend, plan_run, recipe


def test_sample_key_is_deterministic():
    assert sample_key("r", "k", 0, "output") == sample_key("r", "k", 0, "output")
    assert len({sample_key("r", "k", i, s) for i in range(2) for s in ("output", "topic")}) == 4


def test_throttle_rpm_and_tpm_with_a_fake_clock():
    t = [0.0]
    th = Throttle(rpm=2, tpm=None, window_s=60, clock=lambda: t[0])
    assert th.try_acquire(1) == 0 and th.try_acquire(1) == 0
    assert th.try_acquire(1) == pytest.approx(60)
    t[0] = 60.0
    assert th.try_acquire(1) == 0
    tt = Throttle(rpm=None, tpm=100, window_s=60, clock=lambda: t[0])
    assert tt.try_acquire(80) == 0
    assert tt.try_acquire(30) > 0  # 110 > 100
    assert tt.try_acquire(20) == 0
    big = Throttle(rpm=None, tpm=10, window_s=60, clock=lambda: t[0])
    assert big.try_acquire(500) == 0  # one oversized request still goes when the window is empty


def test_run_writes_every_sample_with_provenance(store):
    set_prices(store, {"mock-model": Price(1.0, 2.0)})
    run_id = plan_run(store, recipe(n_items=5, samples_per_item=2, seed=7), concurrency=3)
    fake = FakeBackend(delay=0.01)
    out = asyncio.run(execute_run(store, run_id, fake))
    assert out.status == "finished" and out.generated == 10 and out.failed == 0
    rows = run_samples(store, run_id)
    assert len(rows) == 10 and all(r["error"] is None for r in rows)
    assert all(r["prompt_tokens"] == 10 and r["completion_tokens"] == 4 for r in rows)
    assert rows[0]["cost_usd"] == pytest.approx((10 * 1 + 4 * 2) / 1e6)
    # several samples per item are several requests, each with its own seed
    assert {r["text"].rsplit("seed=", 1)[1] for r in rows} == {"7]", "8]"}
    run = get_run(store, run_id)
    assert run.status == "finished" and run.finished_at is not None
    full = store.query("SELECT condition['topic'], demo_ids, messages, model, params FROM samples WHERE run_id = ? LIMIT 1", [run_id])[0]
    assert full[0] in ("rain", "cats", "tea") and full[3] == "mock-model" and '"temperature": 0.5' in full[4]
    assert fake.max_in_flight <= 3


def test_errors_are_recorded_per_item(store):
    run_id = plan_run(store, recipe(n_items=6, modes=["ok", "BAD"]))
    out = asyncio.run(execute_run(store, run_id, FakeBackend(fail="BAD")))
    rows = run_samples(store, run_id)
    assert out.status == "finished" and len(rows) == 6
    bad = [r for r in rows if r["error"]]
    assert bad and all("fake failure" in r["error"] for r in bad) and out.failed == len(bad)


def test_budget_cap_stops_the_run_before_a_request_that_could_pass_it(store):
    set_prices(store, {"mock-model": Price(0.0, 1_000_000.0)})  # $4 per sample (4 completion tokens), $16 at max_tokens
    run_id = plan_run(store, recipe(n_items=20), concurrency=1, budget_usd=40.0)
    out = asyncio.run(execute_run(store, run_id, FakeBackend()))
    assert out.status == "cancelled" and "budget" in out.message
    assert progress(store, get_run(store, run_id)).done == 7  # starts while spent + $16 <= $40: 0, 4, …, 24
    assert out.cost_usd == 28.0


def test_budget_cap_holds_with_requests_in_flight(store):
    set_prices(store, {"mock-model": Price(0.0, 1_000_000.0)})
    run_id = plan_run(store, recipe(n_items=40), concurrency=4, budget_usd=40.0)
    fake = FakeBackend(delay=0.02)
    out = asyncio.run(execute_run(store, run_id, fake))
    spent = store.scalar("SELECT sum(cost_usd) FROM samples WHERE run_id = ?", [run_id])
    assert out.status == "cancelled" and fake.max_in_flight > 1
    # In flight counted at its worst case: a request waits for room, and the run stops only when even
    # an idle run could not afford one more ($16), so it ends between $24 and $40.
    assert 40.0 - 16 < spent <= 40.0 and spent == out.cost_usd


def test_cancel_stops_in_flight_work_and_resume_fills_the_rest(store):
    run_id = plan_run(store, recipe(n_items=30), concurrency=2)
    fake = FakeBackend(delay=0.05)
    cancel = threading.Event()

    async def go():
        task = asyncio.ensure_future(execute_run(store, run_id, fake, cancel))
        while len(fake.calls) < 6:
            await asyncio.sleep(0.01)
        cancel.set()
        return await task

    out = asyncio.run(go())
    assert out.status == "cancelled"
    done_before = progress(store, get_run(store, run_id)).done
    assert 0 < done_before < 30
    fake2 = FakeBackend()
    out2 = asyncio.run(execute_run(store, run_id, fake2))
    assert out2.status == "finished" and len(fake2.calls) == 30 - done_before
    rows = run_samples(store, run_id)
    assert len(rows) == 30 and len({r["item_idx"] for r in rows}) == 30


def test_multi_step_recipe_stores_each_step(store):
    steps = [{"name": "topic", "user_template": "Item {{ index }}: name a topic about {{ topic }}"},
             {"name": "question", "user_template": "Ask a question on {{ steps.topic }}"}]
    rec = recipe(n_items=3, steps=steps).model_copy(update={"user_template": "Answer: {{ steps.question }}"})
    from services.recipes.recipe import Recipe

    rec = Recipe.parse(rec.model_dump(mode="json"))
    run_id = plan_run(store, rec)
    fake = FakeBackend()
    out = asyncio.run(execute_run(store, run_id, fake))
    assert out.status == "finished" and len(fake.calls) == 9
    rows = run_samples(store, run_id, step=None)
    assert sorted({r["step"] for r in rows}) == ["output", "question", "topic"]
    outputs = [r for r in rows if r["step"] == "output"]
    assert len(outputs) == 3 and all("Answer: out[Ask a question on out[Item" in r["text"] for r in outputs)
    # the plan shows placeholders for the outputs of earlier steps
    plan_msgs = store.scalar("SELECT messages FROM plan_items LIMIT 1")
    assert "<output of step question>" in plan_msgs


def test_resume_reuses_finished_steps(store):
    steps = [{"name": "topic", "user_template": "Item {{ index }} topic for {{ topic }}"}]
    from services.recipes.recipe import Recipe

    rec = Recipe.parse({**recipe(n_items=2, steps=steps).model_dump(mode="json"), "user_template": "Write on {{ steps.topic }} FAILME"})
    run_id = plan_run(store, rec)
    first = FakeBackend(fail="FAILME")
    asyncio.run(execute_run(store, run_id, first))
    assert progress(store, get_run(store, run_id)).failed == 2
    second = FakeBackend()
    asyncio.run(execute_run(store, run_id, second))
    # only the failed final steps are requested again; the topics are reused, not paid twice
    assert len(second.calls) == 2 and all("Write on" in c[-1]["content"] for c in second.calls)
    assert progress(store, get_run(store, run_id)).done == 2


def test_job_manager_runs_in_background_and_cancels(store):
    run_id = plan_run(store, recipe(n_items=40), concurrency=1)
    jm = JobManager(store)
    jm.start(run_id, lambda: FakeBackend(delay=0.05))
    assert jm.is_active(run_id)
    while progress(store, get_run(store, run_id)).done < 2:
        threading.Event().wait(0.02)
    assert jm.cancel(run_id)
    outcome = jm.wait(run_id, timeout=10)
    assert outcome is not None and outcome.status == "cancelled" and not jm.is_active(run_id)
    assert get_run(store, run_id).status == "cancelled"


def test_runs_left_running_are_interrupted_at_startup(store):
    run_id = plan_run(store, recipe(n_items=2))
    set_status(store, run_id, "running", started=True)
    assert mark_interrupted(store, active={run_id}) == []
    jm = JobManager(store)
    assert jm.interrupted_at_start == [run_id]
    assert get_run(store, run_id).status == "interrupted"


def test_settings_round_trip():
    s = RunSettings(concurrency=7, rpm=10)
    assert RunSettings.from_json({**s.to_json(), "unknown": 1}) == s


def test_runs_get_unique_names_and_can_be_renamed(store):
    from services.generation.run_store import create_run, get_run, rename_run, unique_run_name

    def new(name: str) -> str:
        return create_run(store, plan_id="p", recipe_hash="h", backend="local", base_url=None, model="m", params={},
                          settings={}, samples_per_item=1, name=name)

    assert unique_run_name(store, "reviews preview") == "reviews preview"
    first = new(unique_run_name(store, "reviews preview"))
    second = new(unique_run_name(store, "reviews preview"))
    third = new(unique_run_name(store, "reviews preview"))
    assert [get_run(store, r).name for r in (first, second, third)] == ["reviews preview", "reviews preview 2", "reviews preview 3"]
    rename_run(store, second, "  baseline  ")
    assert get_run(store, second).name == "baseline"
    assert unique_run_name(store, "reviews preview") == "reviews preview 2"  # the freed name is reused
    with pytest.raises(ValueError):
        rename_run(store, first, " ")
    with pytest.raises(KeyError):
        rename_run(store, "nope", "x")
