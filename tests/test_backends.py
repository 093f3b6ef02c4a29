"""Backends: presets, keys kept out of storage, and the connection test in plain words."""

from __future__ import annotations

import socket

import pytest

from services.generation.backends import BackendConfig, check_connection, describe_error, request_params
from services.generation.local_server import LocalModelServer, find_gguf, thread_count
from services.generation.presets import LOCAL, PRESETS, key_from
from tests.mock_openai import MockServer
from tests.run_helpers import plan_run, recipe


def test_presets_cover_the_backends():
    assert {LOCAL, "openai", "vllm", "ollama", "llamacpp", "custom"} <= set(PRESETS)
    assert PRESETS["openai"].needs_key and PRESETS["openai"].key_env == "OPENAI_API_KEY"


def test_key_comes_from_secrets_then_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert key_from(PRESETS["openai"]) == "sk-env"
    assert key_from(PRESETS["openai"], {"OPENAI_API_KEY": "sk-secret"}) == "sk-secret"
    assert key_from(PRESETS[LOCAL]) is None


def test_key_never_in_repr_public_or_database(store):
    cfg = BackendConfig("openai", "https://api.example/v1", "m", "sk-very-secret")
    assert "sk-very-secret" not in repr(cfg) and "sk-very-secret" not in str(cfg.public())
    run_id = plan_run(store, recipe(n_items=2))
    dump = str(store.query("SELECT * FROM runs WHERE run_id = ?", [run_id]))
    assert "sk-test" not in dump and "mock-model" in dump


def test_request_params_never_ask_for_n():
    assert request_params(0.7, 0.9, 64, None) == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 64}
    assert request_params(0.7, 0.9, 64, 5)["seed"] == 5


def test_connection_lists_models():
    with MockServer() as url:
        res = check_connection(BackendConfig("custom", url, "mock-model"))
    assert res.ok and res.models == ["mock-model"] and "1 model" in res.message


def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = check_connection(BackendConfig("custom", f"http://127.0.0.1:{port}/v1", "m"))
    assert not res.ok and "refused" in res.message.lower()


def test_connection_unauthorised():
    with MockServer(api_key="sk-right") as url:
        res = check_connection(BackendConfig("custom", url, "m", "sk-wrong"))
        good = check_connection(BackendConfig("custom", url, "m", "sk-right"))
    assert not res.ok and "unauthorised" in res.message.lower() and good.ok


def test_connection_wrong_path():
    with MockServer() as url:
        res = check_connection(BackendConfig("custom", url.removesuffix("/v1"), "m"))
    assert not res.ok and "wrong path" in res.message


def test_connection_timeout():
    with socket.socket() as s:  # accepts connections, never answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        res = check_connection(BackendConfig("custom", f"http://127.0.0.1:{s.getsockname()[1]}/v1", "m", timeout_s=0.5))
    assert not res.ok and "timed out" in res.message.lower()


def test_describe_error_falls_back_to_the_type():
    assert describe_error(RuntimeError("boom")) == "RuntimeError: boom"


def test_local_server_command_uses_cores_minus_one_and_finds_the_gguf():
    gguf = find_gguf()
    assert gguf.suffix == ".gguf" and gguf.exists()
    server = LocalModelServer()
    cmd = server.command(gguf, 12345)
    n = str(thread_count())
    assert cmd[cmd.index("--n_threads") + 1] == n and cmd[cmd.index("--n_threads_batch") + 1] == n
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and int(cmd[cmd.index("--n_ctx") + 1]) >= 2048
    assert server.status == "not started" and server.base_url is None  # lazy: nothing started yet


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_a_config(preset):
    p = PRESETS[preset]
    assert BackendConfig(p.name, p.base_url, p.model).public()["preset"] == preset
