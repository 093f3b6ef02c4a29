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

def _read_cached(store: Store, model: str, hashes: list[str]) -> tuple[list[str], np.ndarray | None]:
    """The hashes among ``hashes`` with a cached vector for ``model``, and their vectors (rows in
    that order; None when none is cached)."""
    if not hashes:
        return [], None
    # The hashes first, the vectors only for those found: a first map misses every text, and a
    # query that carried the vector column scanned all of it on each call.
    wanted = "SELECT unnest(?::VARCHAR[]) AS text_hash"
    hits = [h for (h,) in store.query(
        f"SELECT e.text_hash FROM embeddings e SEMI JOIN ({wanted}) w ON w.text_hash = e.text_hash WHERE e.model = ?",
        [hashes, model])]
    if not hits:
        return [], None
    table = store.query_arrow(
        f"SELECT e.text_hash, e.vector FROM embeddings e SEMI JOIN ({wanted}) w ON w.text_hash = e.text_hash WHERE e.model = ?",
        [hits, model])
    vectors = table.column("vector").combine_chunks()
    dim = len(vectors[0])
    flat = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)
    return table.column("text_hash").to_pylist(), flat


def _write(store: Store, model: str, hashes: list[str], vectors: np.ndarray) -> None:
    """One INSERT of an Arrow batch (distinct hashes). Keys already cached are skipped by an anti-join:
    ``ON CONFLICT DO NOTHING`` made the same insert 2-3x slower (bench/scale.py). Writes are serialised
    by ``store.write`` and only this process writes the file, so no key can appear in between."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = int(v.shape[1])
    batch = pa.table({"text_hash": pa.array(hashes, pa.string()),
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), dim)})
    with store.write() as cur:
        cur.register("_new_embeddings", batch)
        try:
            cur.execute(
                "INSERT INTO embeddings (model, text_hash, dim, vector) SELECT ?, n.text_hash, ?, n.vector::FLOAT[]"
                " FROM _new_embeddings n ANTI JOIN (SELECT text_hash FROM embeddings WHERE model = ?) e"
                " ON e.text_hash = n.text_hash",
                [model, dim, model],
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
    hashes: Sequence[str] | None = None,
) -> np.ndarray:
    """Embeddings for ``texts`` (n x dim, float32, L2-normalised rows, in the given order).

    Cached vectors are read from DuckDB by (embedder.name, sha256 of the text); only texts not
    cached are embedded, each distinct text once, ``batch_size`` at a time, and every batch is
    written before the next starts (an interrupted call keeps what it did). ``progress(done,
    total)`` counts texts; cached ones count as done at once. ``hashes``: the texts' ``text_hash``
    when the caller has them already. An empty list gives a (0, 0) array.
    """
    # An embedder may say how many texts to write at a time (a remote one sends several requests
    # per write; the static one is fast enough that a small batch is mostly write overhead); a
    # crash loses at most one such batch.
    batch_size = batch_size or int(getattr(embedder, "write_batch", 256))
    texts = ["" if t is None else str(t) for t in texts]
    total = len(texts)
    if not total:
        return np.zeros((0, 0), dtype=np.float32)
    hashes = list(hashes) if hashes is not None else [text_hash(t) for t in texts]
    if len(hashes) != total:
        raise ValueError(f"{len(hashes)} hashes for {total} texts")
    row_of: dict[str, int] = {}  # each distinct hash -> its row in ``unique_vectors``
    first_text: list[str] = []
    for h, t in zip(hashes, texts, strict=True):
        if h not in row_of:
            row_of[h] = len(first_text)
            first_text.append(t)
    unique = list(row_of)
    per_hash = _counts(hashes)
    cached, cached_vectors = _read_cached(store, embedder.name, unique)
    unique_vectors: np.ndarray | None = None
    if cached_vectors is not None:
        unique_vectors = np.empty((len(unique), cached_vectors.shape[1]), dtype=np.float32)
        unique_vectors[[row_of[h] for h in cached]] = cached_vectors
    have = set(cached)
    missing = [h for h in unique if h not in have]
    done = total - sum(per_hash[h] for h in missing)
    if progress:
        progress(done, total)
    encode_s = 0.0
    for start in range(0, len(missing), batch_size):
        chunk = missing[start : start + batch_size]
        t0 = time.perf_counter()
        vecs = normalise(embedder.encode([first_text[row_of[h]] for h in chunk]))
        encode_s += time.perf_counter() - t0
        _write(store, embedder.name, chunk, vecs)
        if unique_vectors is None:
            unique_vectors = np.empty((len(unique), vecs.shape[1]), dtype=np.float32)
        unique_vectors[[row_of[h] for h in chunk]] = vecs
        done += sum(per_hash[h] for h in chunk)
        if progress:
            progress(done, total)
    _record_rate(embedder.name, len(missing), encode_s)
    assert unique_vectors is not None
    # cached rows were written normalised; normalising again keeps rows written by older code unit length
    return normalise(unique_vectors[[row_of[h] for h in hashes]])


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
