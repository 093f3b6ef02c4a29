"""The embedding cache: vectors in DuckDB by (embedder name, text hash).

``embed_texts(store, embedder, texts)`` is the one entry point the rest of the studio uses: it
returns one L2-normalised row per text, in order, reading cached vectors by (model, text hash)
and embedding only the texts it has not seen, in batches, writing as it goes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

from services.core.hashing import text_hash
from services.core.store import Store
from services.explore.embedders import Embedder, normalise

OnProgress = Callable[[int, int], None]

# Texts per second each embedder reached in its last job of at least RATE_MIN_TEXTS texts in this
# process (model loading included): the only speed the page may quote, since it was measured here.
RATE_MIN_TEXTS = 20
_rates: dict[str, float] = {}
_rates_lock = threading.Lock()


def last_rate(embedder_name: str) -> float | None:
    """Texts per second of this embedder's last embedding job here, or None before one ran."""
    with _rates_lock:
        return _rates.get(embedder_name)


def _record_rate(embedder_name: str, texts: int, seconds: float) -> None:
    if texts >= RATE_MIN_TEXTS and seconds > 0:
        with _rates_lock:
            _rates[embedder_name] = texts / seconds

def _read_cached(store: Store, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
    if not hashes:
        return {}
    table = store.query_arrow(
        "SELECT text_hash, vector FROM embeddings WHERE model = ? AND text_hash IN (SELECT unnest(?::VARCHAR[]))", [model, hashes]
    )
    if table.num_rows == 0:
        return {}
    vectors = table.column("vector").combine_chunks()
    dim = len(vectors[0])
    flat = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)
    return dict(zip(table.column("text_hash").to_pylist(), flat, strict=True))


def _write(store: Store, model: str, hashes: list[str], vectors: np.ndarray) -> None:
    dim = int(vectors.shape[1])
    batch = pa.table(
        {
            "text_hash": pa.array(hashes, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.astype(np.float32).ravel()), dim),
        }
    )
    with store.write() as cur:
        cur.register("_new_embeddings", batch)
        try:
            cur.execute(
                "INSERT INTO embeddings (model, text_hash, dim, vector) SELECT ?, text_hash, ?, vector::FLOAT[]"
                " FROM _new_embeddings ON CONFLICT DO NOTHING",
                [model, dim],
            )
        finally:
            cur.unregister("_new_embeddings")


def embed_texts(
    store: Store,
    embedder: Embedder,
    texts: Sequence[str],
    *,
    progress: OnProgress | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Embeddings for ``texts`` (n x dim, float32, L2-normalised rows, in the given order).

    Cached vectors are read from DuckDB by (embedder.name, sha256 of the text); only texts not
    cached are embedded, each distinct text once, ``batch_size`` at a time, and every batch is
    written before the next starts (an interrupted call keeps what it did). ``progress(done,
    total)`` counts texts; cached ones count as done at once. An empty list gives a (0, 0) array.
    """
    # An embedder may say how many texts to write at a time (a remote one sends several requests
    # per write); a crash loses at most one such batch.
    batch_size = batch_size or int(getattr(embedder, "write_batch", 256))
    texts = ["" if t is None else str(t) for t in texts]
    total = len(texts)
    hashes = [text_hash(t) for t in texts]
    unique = list(dict.fromkeys(hashes))
    found = _read_cached(store, embedder.name, unique)
    missing = [h for h in unique if h not in found]
    first_text = dict(zip(hashes, texts, strict=True))
    per_hash = _counts(hashes)
    done = total - sum(per_hash[h] for h in missing)
    if progress:
        progress(done, total)
    encode_s = 0.0
    for start in range(0, len(missing), batch_size):
        chunk = missing[start : start + batch_size]
        t0 = time.perf_counter()
        vecs = normalise(embedder.encode([first_text[h] for h in chunk]))
        encode_s += time.perf_counter() - t0
        _write(store, embedder.name, chunk, vecs)
        found.update(zip(chunk, vecs, strict=True))
        done += sum(per_hash[h] for h in chunk)
        if progress:
            progress(done, total)
    _record_rate(embedder.name, len(missing), encode_s)
    if not total:
        return np.zeros((0, 0), dtype=np.float32)
    return normalise(np.stack([found[h] for h in hashes]))


def _counts(hashes: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for h in hashes:
        out[h] = out.get(h, 0) + 1
    return out


def cached_count(store: Store, embedder_name: str, texts: Sequence[str]) -> int:
    """How many of the distinct texts already have a cached vector for this embedder."""
    unique = list(dict.fromkeys(text_hash(t or "") for t in texts))
    if not unique:
        return 0
    return int(
        store.scalar(
            "SELECT count(*) FROM embeddings WHERE model = ? AND text_hash IN (SELECT unnest(?::VARCHAR[]))",
            [embedder_name, unique],
        )
    )


def missing_texts(store: Store, embedder_name: str, texts: Sequence[str]) -> list[str]:
    """The distinct texts (first occurrence order) with no cached vector for this embedder: what
    a call would send, for a forecast."""
    first = {text_hash(t or ""): (t or "") for t in texts}
    rows = store.query(
        "SELECT text_hash FROM embeddings WHERE model = ? AND text_hash IN (SELECT unnest(?::VARCHAR[]))",
        [embedder_name, list(first)],
    ) if first else []
    cached = {h for (h,) in rows}
    return [t for h, t in first.items() if h not in cached]
