"""Kill a headless multi-column run with SIGKILL, then resume: no finished column is paid twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from services.core.store import Store
from services.generation.run_store import get_run, mark_interrupted, progress
from services.recipes.recipe import Recipe
from services.recipes.recipe_yaml import to_yaml
from tests.mock_openai import MockServer, prompt_id

ROOT = Path(__file__).resolve().parent.parent
N = 30
SCHEMA = {"type": "object", "properties": {"label": {"type": "string", "enum": ["easy", "hard"]}}, "required": ["label"]}


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    return subprocess.Popen([sys.executable, "-m", "services", "run", *args, "--quiet"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigkill_mid_columns_then_resume_never_repays_a_finished_column(tmp_path):
    rec = Recipe.parse({
        "name": "three-columns", "task": "You write data.", "dimensions": [{"name": "topic", "values": ["rain", "tea", "maps"]}],
        "sampling": {"strategy": "random", "n_items": N, "seed": 2}, "model": {"temperature": 0.5, "max_tokens": 16},
        "columns": [
            {"name": "question", "user_template": "Item {{ index }}: ask about {{ topic }}"},
            {"name": "difficulty", "kind": "structured", "output_schema": SCHEMA, "user_template": "Item {{ index }}: rate {{ question }}"},
            {"name": "quality", "kind": "judge", "rubric": "clear", "scale": [1, 3],
             "user_template": "Item {{ index }}: judge {{ question }} ({{ difficulty.label }})"},
        ],
    })
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(to_yaml(rec))
    db = tmp_path / "studio.duckdb"
    server = MockServer(latency=0.05).start()
    try:
        proc = _cli(str(recipe_file), "--backend", "custom", "--base-url", server.url, "--model", "mock-model", "--db", str(db),
                    "--concurrency", "4")
        first = proc.stdout.readline()
        assert first.startswith("run "), first + proc.stdout.read()
        run_id = first.split()[1]
        deadline = time.monotonic() + 120
        while server.state.completions_ok < 40 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        proc.kill()  # SIGKILL: no cleanup at all
        proc.wait()
        while server.state.in_flight:
            time.sleep(0.01)
        ok_at_kill = server.state.completions_ok

        store = Store(db)
        assert mark_interrupted(store) == [run_id]
        persisted = store.query("SELECT step, messages FROM samples WHERE run_id = ? AND error IS NULL AND step <> 'output'", [run_id])
        steps = {s for s, _ in persisted}
        assert 0 < len(persisted) < 3 * N and len(steps) >= 2  # killed with some columns of some items done
        persisted_prompts = {prompt_id(json.loads(m)[-1]["content"]) for _, m in persisted}
        store.close()

        proc = _cli("--resume", run_id, "--db", str(db))
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output
    finally:
        server.stop()

    store = Store(db)
    p = progress(store, get_run(store, run_id))
    assert get_run(store, run_id).status == "finished" and p.done == N and p.failed == 0
    assert store.query("SELECT step, count(*) FROM samples WHERE run_id = ? GROUP BY ALL ORDER BY 1", [run_id]) == [
        ("difficulty", N), ("output", N), ("quality", N), ("question", N)]
    assert all(server.state.attempts[pid] == 1 for pid in persisted_prompts)  # a written column is never asked again
    # the only repeats are answers that arrived but were not yet written when the process died
    assert server.state.completions_ok == 3 * N + (ok_at_kill - len(persisted))
    store.close()
