"""The built-in model for real: llama.cpp server + SmolLM2-135M, through the runner."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.generation.backends import BackendConfig, OpenAIBackend, check_connection
from services.generation.local_server import MODEL_NAME, LocalModelServer
from services.generation.presets import LOCAL
from services.generation.run_setup import prepare_run
from services.generation.run_store import get_run, run_samples
from services.generation.runner import RunSettings, execute_run
from tests.run_helpers import recipe

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def server():
    s = LocalModelServer()
    yield s
    s.stop()


def test_generates_a_few_short_items(store, server):
    base_url = server.ensure_running()
    assert server.status == "ready" and base_url.startswith("http://127.0.0.1:")
    env = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
    assert b"OMP_WAIT_POLICY=PASSIVE" in env
    cfg = BackendConfig(LOCAL, base_url, MODEL_NAME, timeout_s=120)
    assert check_connection(cfg).ok
    run_id = prepare_run(store, recipe(n_items=3, max_tokens=12), cfg, RunSettings(concurrency=2))
    backend = OpenAIBackend(cfg)

    async def go():
        try:
            return await execute_run(store, run_id, backend)
        finally:
            await backend.aclose()

    out = asyncio.run(go())
    assert out.status == "finished", get_run(store, run_id).error
    rows = run_samples(store, run_id)
    assert len(rows) == 3 and all(r["error"] is None and r["text"].strip() for r in rows)
    assert all(0 < r["completion_tokens"] <= 12 and r["prompt_tokens"] > 0 for r in rows)


def test_restarts_when_the_server_died(server):
    server.ensure_running()
    old_pid = server.pid
    os.killpg(old_pid, signal.SIGKILL)
    server._proc.wait()
    assert not server.healthy()
    server.ensure_running()
    assert server.healthy() and server.pid != old_pid and server.restarts >= 1
    server.stop()
    assert server.status == "stopped" and not server.is_alive()


@pytest.mark.real_model
def test_server_exits_when_the_studio_is_killed(tmp_path):
    """A SIGKILLed studio must not leave the llama.cpp child behind."""

    code = ("import sys, time; sys.path.insert(0, '.')\n"
            "from services.generation.local_server import LocalModelServer\n"
            "s = LocalModelServer(); s.ensure_running(); print(s.pid, flush=True); time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the model server outlived the killed studio")
