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
