"""Kill the headless worker with SIGKILL mid-run, then resume: nothing lost, duplicated or paid twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from services.core.store import Store
from services.generation.run_store import get_run, mark_interrupted, progress
from services.recipes.recipe_yaml import to_yaml
from tests.mock_openai import MockServer, prompt_id
from tests.run_helpers import recipe

ROOT = Path(__file__).resolve().parent.parent
N = 60


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    return subprocess.Popen([sys.executable, "-m", "services", "run", *args, "--quiet"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigkill_then_resume_generates_only_what_is_missing(tmp_path):
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(to_yaml(recipe(n_items=N)))
    db = tmp_path / "studio.duckdb"
    server = MockServer(latency=0.05).start()
    url = server.url
    try:
        proc = _cli(str(recipe_file), "--backend", "custom", "--base-url", url, "--model", "mock-model", "--db", str(db), "--concurrency", "4")
        first = proc.stdout.readline()
        assert first.startswith("run "), first + proc.stdout.read()
        run_id = first.split()[1]
        deadline = time.monotonic() + 120
        while server.state.completions_ok < 20 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        proc.kill()  # SIGKILL: no cleanup at all
        proc.wait()
        while server.state.in_flight:  # requests the dead process left behind still finish on the server
            time.sleep(0.01)
        ok_at_kill = server.state.completions_ok

        store = Store(db)
        assert get_run(store, run_id).status == "running"  # as the dead process left it
        assert mark_interrupted(store) == [run_id]
        run = get_run(store, run_id)
        assert run.status == "interrupted"
        persisted = store.query("SELECT messages FROM samples WHERE run_id = ? AND error IS NULL", [run_id])
        persisted_prompts = {prompt_id(json.loads(m)[-1]["content"]) for (m,) in persisted}
        assert 0 < len(persisted) < N
        store.close()

        proc = _cli("--resume", run_id, "--db", str(db))
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output
    finally:
        server.stop()
    mock_state = server.state

    store = Store(db)
    run = get_run(store, run_id)
    p = progress(store, run)
    assert run.status == "finished" and p.done == N and p.failed == 0
    assert store.scalar("SELECT count(DISTINCT item_idx) FROM samples WHERE run_id = ?", [run_id]) == N
    assert store.scalar("SELECT count(*) FROM samples WHERE run_id = ?", [run_id]) == N
    # a sample written before the kill is never requested again
    assert all(mock_state.attempts[pid] == 1 for pid in persisted_prompts)
    # the only repeats are answers that arrived but were not yet written when the process died
    assert mock_state.completions_ok == N + (ok_at_kill - len(persisted))
    store.close()

