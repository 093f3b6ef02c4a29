"""The embedding backend against the mock OpenAI server: batched, concurrent, retried, cached, resumable."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from services.explore.embedding_api import EMBEDDING_PRESETS, ApiEmbedder, EmbeddingBackendError, forecast
from services.explore.embedding_store import cached_count, embed_texts
from services.generation.retry import RetryPolicy
from tests.mock_openai import MockServer

FAST = RetryPolicy(max_retries=2, initial_backoff_s=0.01, max_backoff_s=0.02)


def stats(url: str) -> dict:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/_stats") as r:
        return json.loads(r.read())


@pytest.fixture
def mock():
    server = MockServer(latency=0.02, retry_after=0.01)
    with server as url:
        yield server, url


def test_vectors_come_back_in_order_batched_and_concurrent(store, mock) -> None:
    server, url = mock
    emb = ApiEmbedder(url, "mock-embed", batch_size=3, concurrency=4, retry=FAST)
    texts = [f"text number {i}" for i in range(20)] + ["text number 0"]
    vecs = embed_texts(store, emb, texts)
    assert vecs.shape == (21, 8)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0)
    assert np.allclose(vecs[0], vecs[20])
    assert not np.allclose(vecs[0], vecs[1])
    st = stats(url)
    assert st["embedding_requests"] == 7  # 20 distinct texts in requests of 3
    assert st["max_in_flight"] > 1
    assert all(n == 1 for n in st["embedded"].values()) and len(st["embedded"]) == 20
    assert emb.tokens_used == sum(len(t.split()) for t in texts[:20])
    # cached by (model, text hash): the second time sends nothing
    again = embed_texts(store, ApiEmbedder(url, "mock-embed", retry=FAST), list(reversed(texts)))
    assert np.allclose(again, vecs[::-1])
    assert stats(url)["embedding_requests"] == 7


def test_transient_failures_are_retried_within_the_budget(store, mock) -> None:
    _, url = mock
    emb = ApiEmbedder(url, "mock-embed", batch_size=1, concurrency=2, retry=FAST)
    texts = ["plain", "[[429:once]] limited", "[[500:2]] flaky", "[[malformed:once]] cut short"]
    vecs = embed_texts(store, emb, texts)
    assert vecs.shape == (4, 8)
    assert emb.requests_sent == 4 + 1 + 2 + 1


def test_lasting_failure_names_the_endpoint_and_keeps_written_vectors(store, mock) -> None:
    _, url = mock
    emb = ApiEmbedder(url, "mock-embed", batch_size=2, concurrency=1, retry=FAST)
    emb.write_batch = 2
    texts = ["a one", "b two", "c three", "[[500]] d four"]
    with pytest.raises(EmbeddingBackendError, match=r"HTTP 500.*3 attempts") as info:
        embed_texts(store, emb, texts)
    assert "127.0.0.1" in str(info.value) and info.value.title
    assert cached_count(store, emb.name, texts) == 2  # the first write batch landed
    with pytest.raises(EmbeddingBackendError, match="quota"):
        embed_texts(store, ApiEmbedder(url, "mock-embed", retry=FAST), ["[[quota]] x"])


def test_a_restart_after_a_crash_sends_only_the_missing_texts(store, mock) -> None:
    _, url = mock
    texts = [f"row {i}" for i in range(40)]
    crashing = ApiEmbedder(url, "mock-embed", batch_size=5, concurrency=2, retry=FAST)
    crashing.write_batch = 10
    real_encode = crashing.encode
    calls = []

    def crash_on_third(batch):
        calls.append(len(batch))
        if len(calls) == 3:
            raise KeyboardInterrupt("process killed")
        return real_encode(batch)

    crashing.encode = crash_on_third
    with pytest.raises(KeyboardInterrupt):
        embed_texts(store, crashing, texts)
    assert cached_count(store, "api:mock-embed", texts) == 20
    before = stats(url)["embedded"]
    resumed = ApiEmbedder(url, "mock-embed", batch_size=5, concurrency=2, retry=FAST)
    vecs = embed_texts(store, resumed, texts)
    after = stats(url)["embedded"]
    assert vecs.shape == (40, 8)
    assert sorted(t for t in after if after[t] > before.get(t, 0)) == sorted(texts[20:])
    assert all(n == 1 for n in after.values())


def test_forecast_and_presets() -> None:
    f = forecast(["abcd" * 10, "xy"], 0.02, batch_size=1)
    assert (f.texts, f.est_tokens, f.requests) == (2, 11, 2)
    assert f.cost_usd == pytest.approx(11 * 0.02 / 1e6)
    assert forecast(["a"], None, 64).cost_usd is None
    assert {"openai", "vllm", "tei", "infinity", "ollama"} <= set(EMBEDDING_PRESETS)


def test_key_comes_from_the_environment_and_is_never_shown(monkeypatch, store) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EmbeddingBackendError, match="OPENAI_API_KEY"):
        ApiEmbedder.from_preset("openai")
    server = MockServer(api_key="sk-secret-123")
    with server as url:
        monkeypatch.setenv("VLLM_API_KEY", "sk-secret-123")
        emb = ApiEmbedder.from_preset("vllm", base_url=url, model="mock-embed", retry=FAST)
        assert "sk-secret" not in repr(emb) and "sk-secret" not in emb.name
        assert embed_texts(store, emb, ["hello"]).shape == (1, 8)
        monkeypatch.setenv("VLLM_API_KEY", "wrong")
        with pytest.raises(EmbeddingBackendError, match="401") as info:
            embed_texts(store, ApiEmbedder.from_preset("vllm", base_url=url, model="mock-embed", retry=FAST), ["other"])
        assert "wrong" not in str(info.value)
    assert "sk-secret" not in str(store.query("SELECT * FROM embeddings"))


def test_the_embedder_choice_as_one_string(store, mock) -> None:
    from services.explore.embedders import make_embedder

    _, url = mock
    emb = make_embedder(f"api:custom:mock-embed@{url}")
    assert isinstance(emb, ApiEmbedder) and emb.name == "api:mock-embed" and emb.base_url == url
    assert embed_texts(store, emb, ["one", "two"]).shape == (2, 8)
    assert make_embedder("api:ollama:").model == "nomic-embed-text"
    with pytest.raises(EmbeddingBackendError, match="Unknown embedding backend 'nope'"):
        make_embedder("api:nope:x")
    with pytest.raises(EmbeddingBackendError, match="Name the embedding model"):
        make_embedder("api:vllm:")
