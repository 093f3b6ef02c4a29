"""Grow toward a target end to end: real runs on a real DuckDB file against the mock OpenAI server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.core.hashing import text_hash
from services.core.store import Store
from services.curation.judge_step import rubric_hash
from services.evaluation.grow import GrowError, make_target
from services.evaluation.grow_loop import (
    GrowSpec,
    grow_report,
    list_loops,
    loop_rounds,
    loop_samples,
    measure,
    run_grow,
)
from services.evaluation.judging import faithfulness_rubric
from services.explore.embedders import HashEmbedder
from services.generation.backends import BackendConfig
from services.generation.run_setup import PriceNeeded, prepare_run, run_backend
from services.generation.run_store import Price, get_run, progress, set_price
from services.generation.runner import RunSettings, run_blocking
from services.recipes.recipe import Recipe
from services.recipes.recipe_yaml import to_yaml
from tests.mock_openai import MockServer

ROOT = Path(__file__).resolve().parent.parent


def skewed(n_items: int = 24, index: bool = True) -> Recipe:
    """Mostly positive when sampled at random: a start far from uniform over label x cuisine."""
    return Recipe.parse({
        "name": "grow-test", "task": "t",
        "user_template": ("Item {{ index }}: " if index else "") + "a {{ label }} review of {{ cuisine }} food by {{ persona }}",
        "dimensions": [{"name": "label", "values": [{"text": "positive", "weight": 6}, "negative"]},
                       {"name": "cuisine", "values": ["Thai", "Italian", "Mexican"]},
                       {"name": "persona", "values": ["a student", "a critic"]}],
        "sampling": {"strategy": "random", "n_items": n_items, "seed": 1},
        "model": {"temperature": 0.5, "max_tokens": 16},
    })


def cfg_for(url: str) -> BackendConfig:
    return BackendConfig("custom", url, "mock-model", "sk-test", timeout_s=10, max_retries=0)


def executor(store: Store, cfg: BackendConfig):
    return lambda run_id: run_blocking(store, run_id, run_backend(store, run_id, cfg, None, 4))


def base_run(store: Store, rec: Recipe, cfg: BackendConfig) -> str:
    run_id = prepare_run(store, rec, cfg, RunSettings(concurrency=4, timeout_s=10, max_retries=0))
    assert run_blocking(store, run_id, run_backend(store, run_id, cfg, None, 4)).status == "finished"
    return run_id


def test_rounds_converge_on_the_target_with_every_sample_paid_once(store):
    rec = skewed()
    server = MockServer()
    with server as url:
        cfg = cfg_for(url)
        start = base_run(store, rec, cfg)
        spec = GrowSpec(rounds=3, batch=6, dimensions=("label", "cuisine"), base_runs=(start,), tolerance=0.01)
        settings = RunSettings(concurrency=4, timeout_s=10, max_retries=0)
        said: list[str] = []
        out = run_grow(store, rec, spec, cfg, settings, executor(store, cfg), embedder=HashEmbedder(), say=said.append)
        rounds = loop_rounds(store, out.loop_id)
        assert out.status == "finished" and len(rounds) == 3 == len(out.rounds_run)
        report = grow_report(store, out.loop_id)
        d = report.distances["distance"].tolist()
        assert report.distances["round"].tolist() == [0, 1, 2, 3]
        assert all(b < a for a, b in zip(d, d[1:], strict=False)), d  # closer after every round
        assert report.distances["samples"].tolist() == [24, 30, 36, 42]
        # the start had no negative Italian or Mexican review: the first round plans them first
        first = report.planned.set_index("cell")["round 1"]
        assert first.get("label=negative, cuisine=Mexican", 0) >= 1 and first.get("label=positive, cuisine=Mexican", 0) == 0
        # each round is a run of its own plan, with the loop on it, and no sample twice
        for r in rounds:
            run = get_run(store, r.run_id)
            assert run.plan_id.endswith(f"{out.loop_id}-r{r.round}") and run.status == "finished"
            assert run.settings["grow"]["loop"] == out.loop_id and run.settings["concurrency"] == 4
        ids = [start, *out.rounds_run]
        n = store.scalar("SELECT count(*) FROM samples WHERE list_contains(?, run_id)", [ids])
        assert n == store.scalar("SELECT count(DISTINCT sample_key) FROM samples WHERE list_contains(?, run_id)", [ids]) == 42
        requests = server.state.completions_ok
        assert requests == 42  # one request per sample, the start's included
        # the same loop again: found by its id, nothing planned, nothing sent
        again = run_grow(store, rec, spec, cfg, settings, executor(store, cfg), embedder=HashEmbedder())
        assert again.loop_id == out.loop_id and again.rounds_run == out.rounds_run
        assert server.state.completions_ok == requests
        # more rounds continue the same loop
        more = run_grow(store, rec, GrowSpec(**{**spec.__dict__, "rounds": 4}), cfg, settings, executor(store, cfg))
        assert more.loop_id == out.loop_id and len(more.rounds_run) == 4 and server.state.completions_ok == requests + 6
    assert [lp["loop"] for lp in list_loops(store)] == [out.loop_id]
    assert any("Round 1 of 3" in s for s in said)


def test_the_loop_stops_early_once_the_target_is_within_tolerance(store):
    rec = skewed()
    with MockServer() as url:
        cfg = cfg_for(url)
        spec = GrowSpec(rounds=5, batch=6, dimensions=("label", "cuisine"), tolerance=0.05)
        out = run_grow(store, rec, spec, cfg, RunSettings(timeout_s=10, max_retries=0), executor(store, cfg))
    # from nothing, six samples over six equal cells land exactly on the target
    assert out.status == "reached" and len(out.rounds_run) == 1
    assert "before round 2" in out.message


def test_a_cancel_between_rounds_keeps_the_finished_rounds_and_says_how_to_resume(store):
    import threading

    rec = skewed()
    cancel = threading.Event()
    with MockServer() as url:
        cfg = cfg_for(url)
        start = base_run(store, rec, cfg)  # skewed: three rounds do not reach the target
        spec = GrowSpec(rounds=3, batch=6, dimensions=("label", "cuisine"), base_runs=(start,), tolerance=0.0)
        out = run_grow(store, rec, spec, cfg, RunSettings(timeout_s=10, max_retries=0), executor(store, cfg),
                       cancel=cancel, on_round=lambda k, _run: cancel.set() if k == 1 else None)
        assert out.status == "cancelled" and len(out.rounds_run) == 1
        assert out.message.startswith("Cancelled before round 2 of 3") and "run the same loop again" in out.message
        again = run_grow(store, rec, spec, cfg, RunSettings(timeout_s=10, max_retries=0), executor(store, cfg))
    assert again.loop_id == out.loop_id and again.rounds_run[0] == out.rounds_run[0] and len(again.rounds_run) == 3


def test_collapsed_and_unfaithful_cells_are_seen(store):
    rec = skewed(n_items=40, index=False)  # no index in the prompt: one cell, one text (the mock echoes the prompt)
    with MockServer() as url:
        cfg = cfg_for(url)
        start = base_run(store, rec, cfg)
    target = make_target(rec, ["label", "persona"])
    frame = loop_samples(store, [start])
    state = measure(store, target, frame, HashEmbedder())
    big = {c for c, n in state.counts.items() if n >= 5}
    assert big and big <= state.collapsed  # identical texts in every cell with five or more
    assert state.unfaithful == {}
    # a judge found the student's negative reviews not negative: that cell is unfaithful
    cell = ("negative", "a student")
    texts = frame.loc[[target.cell_of(c) == cell for c in frame["condition"]], "text"].unique().tolist()
    with store.write() as cur:
        for t in texts:
            cur.execute("INSERT INTO judge_scores (rubric_hash, judge_model, text_hash, score) VALUES (?, 'mock-judge', ?, 1)",
                        [rubric_hash(faithfulness_rubric("label", "negative")), text_hash(t)])
    assert measure(store, target, frame, None).unfaithful == {cell: 1.0}
    # the loop measures the same before it plans, and records it on the round's run
    with MockServer() as url:
        cfg = cfg_for(url)
        spec = GrowSpec(rounds=1, batch=4, dimensions=("label", "persona"), base_runs=(start,), tolerance=0.0)
        out = run_grow(store, rec, spec, cfg, RunSettings(timeout_s=10, max_retries=0), executor(store, cfg), embedder=HashEmbedder())
    grow = get_run(store, out.rounds_run[0]).settings["grow"]
    assert grow["collapsed"] == sorted(target.label(c) for c in state.collapsed)
    assert grow["unfaithful"] == {"label=negative, persona=a student": 1.0}


def test_a_failing_backend_mid_round_stops_the_loop_and_a_rerun_resumes_without_repaying(store):
    rec = skewed()
    server = MockServer(quota_after=9)
    with server as url:  # the 10th request answers 429 insufficient_quota
        cfg = cfg_for(url)
        # six samples cannot land on 3:1 over six cells, so round 1 never reaches it
        spec = GrowSpec(rounds=2, batch=6, dimensions=("label", "cuisine"), tolerance=0.0,
                        shares={"label": {"positive": 0.75, "negative": 0.25}})
        settings = RunSettings(concurrency=1, timeout_s=10, max_retries=0)
        out = run_grow(store, rec, spec, cfg, settings, executor(store, cfg))
        assert out.status == "failed" and "Round 2 of 2" in out.message and "quota" in out.message
        assert "3 generated sample(s) are kept" in out.message and "run the same loop again" in out.message
        second = out.rounds_run[1]
        assert progress(store, get_run(store, second)).done == 3
        server.state.quota_after = None
        before = server.state.completions_ok
        again = run_grow(store, rec, spec, cfg, settings, executor(store, cfg))
        assert again.status in ("finished", "reached") and again.rounds_run == out.rounds_run
        assert server.state.completions_ok - before == 3  # only the three missing samples
    assert store.scalar("SELECT count(*) FROM samples WHERE run_id = ? AND error IS NULL", [second]) == 6


@pytest.mark.parametrize(("spec", "words"), [
    (GrowSpec(rounds=2, batch=4, shares={"label": {"positive": 0.5, "neutral": 0.5}}), "'neutral', which 'label' does not have"),
    (GrowSpec(rounds=2, batch=4, shares={"label": {"positive": 0.5, "negative": 0.2}}), "sum to 0.7, not 1"),
    (GrowSpec(rounds=2, batch=4, dimensions=("colour",)), "'colour', which is not one of its dimensions"),
    (GrowSpec(rounds=0, batch=4), "at least 1 round"),
    (GrowSpec(rounds=2, batch=4, base_runs=("run-nope",)), "run-nope, which are not in"),
])
def test_bad_input_is_a_sentence_and_writes_nothing(store, spec, words):
    cfg = cfg_for("http://127.0.0.1:9/v1")
    with pytest.raises(GrowError) as exc:
        run_grow(store, skewed(), spec, cfg, RunSettings(), executor(store, cfg))
    assert words in str(exc.value)
    assert store.scalar("SELECT count(*) FROM runs") == 0 and store.scalar("SELECT count(*) FROM plans") == 0


def test_no_categorical_dimension_and_an_unpriced_budget_are_refused(store):
    plain = Recipe.parse({"name": "plain", "task": "t", "user_template": "{{ w }}",
                          "dimensions": [{"name": "w", "kind": "random_words", "words": ["x", "y"], "k": 1}]})
    cfg = cfg_for("http://127.0.0.1:9/v1")
    with pytest.raises(GrowError, match="no categorical dimension"):
        run_grow(store, plain, GrowSpec(rounds=1, batch=2), cfg, RunSettings(), executor(store, cfg))
    with pytest.raises(PriceNeeded):
        run_grow(store, skewed(), GrowSpec(rounds=1, batch=2, budget_usd=0.1), cfg, RunSettings(), executor(store, cfg))
    assert store.scalar("SELECT count(*) FROM runs") == 0


def test_the_budget_is_a_cap_over_all_rounds(store):
    set_price(store, "mock-model", Price(1000.0, 1000.0))  # about $0.02 a request
    rec = skewed()
    with MockServer() as url:
        cfg = cfg_for(url)
        spec = GrowSpec(rounds=4, batch=5, dimensions=("label", "cuisine"), tolerance=0.0, budget_usd=0.25,
                        shares={"label": {"positive": 0.75, "negative": 0.25}})
        settings = RunSettings(concurrency=1, timeout_s=10, max_retries=0)
        out = run_grow(store, rec, spec, cfg, settings, executor(store, cfg))
        spent = store.scalar("SELECT sum(cost_usd) FROM samples WHERE list_contains(?, run_id)", [out.rounds_run])
        assert out.status == "budget" and 0 < spent <= 0.25
        assert len(out.rounds_run) >= 2  # the cap spans rounds: round 1 alone does not reach it
        again = run_grow(store, rec, spec, cfg, settings, executor(store, cfg))
        assert again.status == "budget"
        assert store.scalar("SELECT sum(cost_usd) FROM samples WHERE list_contains(?, run_id)", [again.rounds_run]) == spent
        # a larger budget continues the same loop, still under its cap over all rounds
        raised = run_grow(store, rec, GrowSpec(**{**spec.__dict__, "budget_usd": 0.5}), cfg, settings, executor(store, cfg))
        total = store.scalar("SELECT sum(cost_usd) FROM samples WHERE list_contains(?, run_id)", [raised.rounds_run])
        assert raised.loop_id == out.loop_id and spent < total <= 0.5
        assert raised.rounds_run[: len(out.rounds_run)] == out.rounds_run


def _grow_cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    return subprocess.Popen([sys.executable, "-m", "services", "grow", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_killing_the_command_mid_round_and_rerunning_resumes_without_repaying(tmp_path):
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(to_yaml(skewed()))
    db = tmp_path / "studio.duckdb"
    server = MockServer(latency=0.05).start()
    args = [str(recipe_file), "--cells", "label,cuisine", "--rounds", "3", "--batch", "10", "--tolerance", "0",
            "--share", "label=positive:0.75,negative:0.25",
            "--backend", "custom", "--base-url", server.url, "--model", "mock-model", "--db", str(db),
            "--embedder", "none", "--concurrency", "2"]
    try:
        proc = _grow_cli(*args)
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("round run") and len([s for s in seen if s.startswith("round run")]) == 2:
                break
        assert len([s for s in seen if s.startswith("round run")]) == 2, "".join(seen) + proc.stdout.read()
        while server.state.completions_ok < 10 + 4 and proc.poll() is None:
            time.sleep(0.01)
        proc.kill()  # SIGKILL in round 2
        proc.wait()
        while server.state.in_flight:
            time.sleep(0.01)
        ok_at_kill = server.state.completions_ok
        store = Store(db)
        written = store.scalar("SELECT count(*) FROM samples WHERE error IS NULL")
        assert 10 < written < 20
        store.close()
        proc = _grow_cli(*args)
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output
        assert "finished: All 3 round(s) ran" in output
    finally:
        server.stop()
    store = Store(db)
    assert store.scalar("SELECT count(*) FROM runs") == 3
    assert store.scalar("SELECT count(*) FROM samples WHERE error IS NULL") == 30
    assert store.scalar("SELECT count(DISTINCT sample_key) FROM samples") == store.scalar("SELECT count(*) FROM samples")
    # only answers that arrived but were not yet written when the process died were paid twice
    assert server.state.completions_ok == 30 + (ok_at_kill - written)
    loop = loop_rounds(store, get_run(store, store.scalar("SELECT run_id FROM runs LIMIT 1")).settings["grow"]["loop"])
    assert [r.status for r in loop] == ["finished"] * 3
    store.close()


@pytest.mark.real_model
def test_the_demo_grows_two_rounds_on_the_built_in_model(tmp_path):
    """The shipped restaurant recipe, two rounds of two short samples on the built-in model."""
    db = tmp_path / "studio.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "services", "grow", str(ROOT / "data" / "recipes" / "restaurant_reviews.yaml"),
         "--cells", "label", "--share", "label=positive:0.75,negative:0.25", "--rounds", "2", "--batch", "2",
         "--tolerance", "0", "--max-tokens", "24", "--embedder", "fake", "--db", str(db)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reached: All 2 round(s) ran" in proc.stdout
    store = Store(db)
    loop = list_loops(store)[0]["loop"]
    report = grow_report(store, loop)
    assert report.distances["distance"].tolist() == [0.25, 0.0]  # 2 positive, then 3 positive and 1 negative
    texts = store.query("SELECT text FROM samples WHERE error IS NULL AND step = 'output'")
    assert len(texts) == 4 and all(t.strip() for (t,) in texts)
    assert {r.status for r in loop_rounds(store, loop)} == {"finished"}
    store.close()
