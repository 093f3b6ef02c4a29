"""The headless embed and map commands: same services as the Explore page, local and remote embedders."""

from __future__ import annotations

from services.cli.main import main
from services.core.store import Store
from services.explore.embedding_store import cached_count, missing_texts
from tests.explore_data import insert_dataset, insert_run
from tests.mock_openai import MockServer

TEXTS = [(f"sentence {i} about {topic}", {"topic": topic}) for i in range(30) for topic in ("food", "travel")][:40]


def _db(tmp_path):
    path = tmp_path / "cli.duckdb"
    store = Store(path)
    insert_dataset(store, "ds1", TEXTS, purpose="audit")
    insert_run(store, "r1", TEXTS[:6])
    store.close()
    return path


def test_embed_a_dataset_with_a_local_embedder_then_nothing_twice(tmp_path, capsys):
    db = _db(tmp_path)
    assert main(["embed", "--dataset", "ds1", "--embedder", "fake", "--db", str(db)]) == 0
    out = capsys.readouterr()
    assert "embedded: 40 texts with fake-hash-64" in out.out and "0 already cached" in out.err
    assert main(["embed", "--run", "r1", "--embedder", "fake", "--db", str(db)]) == 0
    assert "6 already cached" in capsys.readouterr().err
    store = Store(db)
    assert cached_count(store, "fake-hash-64", [t for t, _ in TEXTS]) == 40
    store.close()


def test_embed_through_a_remote_backend_with_forecast(tmp_path, capsys, monkeypatch):
    db = _db(tmp_path)
    monkeypatch.setenv("VLLM_API_KEY", "k-123")
    with MockServer(api_key="k-123") as url:
        code = main(["embed", "--dataset", "ds1", "--backend", "vllm", "--base-url", url, "--model", "mock-embed",
                     "--batch-size", "8", "--db", str(db)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "forecast for the 40 texts to send: ~" in out.err and "5 requests" in out.err
    assert "server-reported tokens: 160 in 5 requests" in out.err
    assert "k-123" not in out.out + out.err
    store = Store(db)
    assert missing_texts(store, "api:mock-embed", [t for t, _ in TEXTS] + ["new one"]) == ["new one"]
    store.close()


def test_embed_reports_a_failing_endpoint_clearly(tmp_path, capsys, monkeypatch):
    db = _db(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["embed", "--dataset", "ds1", "--backend", "openai", "--db", str(db)]) == 1
    assert "needs a key: set OPENAI_API_KEY" in capsys.readouterr().err


def test_map_builds_the_pages_map(tmp_path, capsys):
    db = _db(tmp_path)
    assert main(["map", "--dataset", "ds1", "--embedder", "fake", "--db", str(db)]) == 0
    out = capsys.readouterr()
    assert "map: 40 points" in out.out and "umap" in out.err
    store = Store(db)
    assert store.scalar("SELECT count(*) FROM projection_points") == 40
    store.close()


def test_embed_killed_mid_run_resends_at_most_one_write_batch(tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    path = tmp_path / "kill.duckdb"
    store = Store(path)
    texts = [f"line {i} of the corpus" for i in range(600)]
    insert_dataset(store, "big", [(t, {}) for t in texts], purpose="audit")
    store.close()
    root = Path(__file__).resolve().parent.parent
    with MockServer(latency=0.1) as url:
        def embedded() -> dict:
            with urllib.request.urlopen(url.removesuffix("/v1") + "/_stats") as r:
                return json.loads(r.read())["embedded"]

        cmd = [sys.executable, "-m", "services", "embed", "--dataset", "big", "--backend", "custom", "--base-url", url,
               "--model", "mock-embed", "--batch-size", "10", "--concurrency", "2", "--db", str(path), "--quiet"]
        proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "OPENAI_API_KEY": ""})
        deadline = time.monotonic() + 120
        while len(embedded()) < 150 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        first = embedded()
        assert 150 <= len(first) < 600
        assert subprocess.run(cmd, cwd=root, capture_output=True, env={**os.environ, "OPENAI_API_KEY": ""}).returncode == 0
        final = embedded()
    store = Store(path)
    assert cached_count(store, "api:mock-embed", texts) == 600
    store.close()
    sent_twice = [t for t, n in final.items() if n > 1]
    write_batch = 10 * 2 * 2
    assert len(sent_twice) <= write_batch  # only what was in flight when killed
    assert set(sent_twice) <= set(first)
    assert len(final) == 600
