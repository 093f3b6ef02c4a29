"""The embedding cache (with a deterministic fake) and the real embedders."""

from __future__ import annotations

import numpy as np
import pytest

from services.explore.embedders import HashEmbedder, SentenceTransformerEmbedder, default_model_path, normalise
from services.explore.embedding_store import cached_count, embed_texts
from services.explore.items import load_dataset, load_runs, usable
from tests.explore_data import insert_dataset, insert_run


def test_second_request_embeds_nothing(store):
    emb = HashEmbedder()
    texts = ["a red apple", "a green pear", "a red apple", "blue sky"]
    seen = []
    first = embed_texts(store, emb, texts, progress=lambda d, t: seen.append((d, t)), batch_size=2)
    assert first.shape == (4, 64)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)
    assert np.allclose(first[0], first[2])
    assert sum(emb.calls) == 3  # the repeated text once
    assert seen[-1] == (4, 4)
    emb.calls.clear()
    again = embed_texts(store, emb, list(reversed(texts)))
    assert emb.calls == []
    assert np.allclose(again, first[::-1])
    # a new text alongside cached ones: only the new one is embedded
    embed_texts(store, emb, ["blue sky", "new words"])
    assert emb.calls == [1]
    assert cached_count(store, emb.name, texts + ["new words"]) == 4
    # another model name is another cache
    other = HashEmbedder(dim=32)
    embed_texts(store, other, texts[:1])
    assert other.calls == [1]
    assert embed_texts(store, emb, []).shape == (0, 0)


class _DiesAfter(HashEmbedder):
    """A fake embedder whose process "crashes" on its n-th encode call."""

    def __init__(self, calls_before_crash: int) -> None:
        super().__init__()
        self.left = calls_before_crash

    def encode(self, texts):
        if self.left == 0:
            raise KeyboardInterrupt("killed")
        self.left -= 1
        return super().encode(texts)


def test_an_interrupted_embedding_keeps_every_written_batch_and_resumes(store):
    texts = [f"text {i} about {i % 7}" for i in range(25)] + ["text 0 about 0"]  # one repeat
    with pytest.raises(KeyboardInterrupt):
        embed_texts(store, _DiesAfter(2), texts, batch_size=10)
    assert cached_count(store, "fake-hash-64", texts) == 20  # two batches written before the crash
    emb = HashEmbedder()
    vecs = embed_texts(store, emb, texts, batch_size=10)
    assert emb.calls == [5]  # only what was missing
    assert np.allclose(vecs, normalise(HashEmbedder().encode(texts)), atol=1e-6)


def test_hashes_given_by_the_caller_and_keys_written_twice(store):
    from services.core.hashing import text_hash
    from services.explore.embedding_store import _write

    texts = ["alpha beta", "gamma", "alpha beta", "delta"]
    emb = HashEmbedder()
    given = embed_texts(store, emb, texts, hashes=[text_hash(t) for t in texts])
    assert emb.calls == [3] and np.allclose(given, embed_texts(store, HashEmbedder(), texts))
    with pytest.raises(ValueError, match="3 hashes for 4 texts"):
        embed_texts(store, emb, texts, hashes=[text_hash(t) for t in texts[:3]])
    # a key already cached is skipped, not duplicated and not an error; the first vector stays
    before = store.query_arrow("SELECT vector FROM embeddings WHERE text_hash = ?", [text_hash("gamma")])
    _write(store, emb.name, [text_hash("gamma"), text_hash("new")], np.ones((2, 64), dtype=np.float32))
    assert store.scalar("SELECT count(*) FROM embeddings WHERE model = ?", [emb.name]) == 4
    assert store.query_arrow("SELECT vector FROM embeddings WHERE text_hash = ?", [text_hash("gamma")]).equals(before)


def test_a_map_shows_a_preview_while_it_embeds(store):
    from services.explore.map_jobs import MapJob, MapRequest, build_map

    insert_dataset(store, "big", [(f"row {i} word{i % 13}", {"k": str(i % 3)}) for i in range(1500)], purpose="audit")
    job, sizes = MapJob(key="t"), []
    report = job.report

    def spy(stage, *a, **kw):
        if stage == "embedding" and job.preview is not None:
            sizes.append(len(job.preview.items))
        report(stage, *a, **kw)

    job.report = spy
    data = build_map(store, HashEmbedder(), MapRequest(dataset_id="big", min_cluster_size=20), job)
    assert sizes and sizes[0] == 512 and max(sizes) < 1500  # the first chunk was shown while the rest embedded
    assert data.pca.shape == (1500, 2) and job.preview is data
    assert np.allclose(data.vectors, normalise(HashEmbedder().encode(data.items.texts)), atol=1e-6)


def test_normalise_keeps_zero_rows():
    out = normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_items_from_runs_and_datasets(store):
    insert_run(store, "r1", [("hello", {"tone": "warm", "text": "clash"}), ("", {"tone": "cold", "text": "x"})], errors=2)
    insert_dataset(store, "d1", [("real text", {"label": "pos"}), ("", {"label": "neg"})])
    runs = load_runs(store, ["r1"])
    assert len(runs) == 2  # failed samples are not items
    # a dimension named like a base column gets its own column, but keeps its name for display
    assert "attr_text" in runs.dimensions and "tone" in runs.dimensions
    assert runs.name("attr_text") == "text" and runs.column("text") == "attr_text" and runs.column("tone") == "tone"
    checked = usable(runs)
    assert len(checked.items) == 1 and checked.items.selected == 2
    assert any("2 failed" in n for n in checked.notes) and any("1 empty" in n for n in checked.notes)
    ds = load_dataset(store, "d1")
    assert ds.ids == ["d1:0", "d1:1"] and ds.dimensions == ["label"]
    assert ds.frame["source"].iloc[0] == "dataset:d1"


@pytest.mark.real_embedder
def test_real_embedder_offline():
    assert (default_model_path() / "modules.json").exists()
    emb = SentenceTransformerEmbedder()
    v = normalise(emb.encode(["a happy customer review", "a glowing positive review", "the stock market fell sharply", ""]))
    assert v.shape == (4, 384)
    assert v[0] @ v[1] > v[0] @ v[2]
