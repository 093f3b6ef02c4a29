"""The studio's embedding service vs a bare ``model.encode`` (same texts, same batch size), a
second request for the same texts (cache), the static model2vec embedder's speed, and its
trade-off: the overlap of each text's 10 nearest neighbours with the full model's.

Default 600 texts so it finishes in about a minute on 2 cores (--n 2000 for the issue's figure).
Last line: ``embed_cache: <ratio>`` = bare seconds / studio seconds (>= 0.9 means <= 10% overhead).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SUBJECTS = ["The pizza", "Our waiter", "The sushi", "This laptop", "The hotel room", "The movie", "The delivery", "The soup",
            "My new phone", "The concert", "The coffee", "The museum tour"]
VERBS = ["was", "felt", "seemed", "turned out", "looked"]
ADJ = ["amazing", "terrible", "overpriced", "cold", "delightful", "noisy", "slow", "perfect", "bland", "friendly", "broken"]
TAILS = ["and I would come back.", "but the staff fixed it quickly.", "so we left early.", "for the price.",
         "compared to last year.", "and the kids loved it.", "although parking was hard.", "which surprised everyone."]


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(ADJ)} {rng.choice(TAILS)} ({i})" for i in range(n)]


def knn_overlap(a, b, k: int = 10) -> float:
    import numpy as np

    sa, sb = a @ a.T, b @ b.T
    np.fill_diagonal(sa, -np.inf)
    np.fill_diagonal(sb, -np.inf)
    na = np.argpartition(-sa, k, axis=1)[:, :k]
    nb = np.argpartition(-sb, k, axis=1)[:, :k]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(na.tolist(), nb.tolist(), strict=True)]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    from services.core.store import Store
    from services.explore.embedders import SentenceTransformerEmbedder, StaticEmbedder
    from services.explore.embedding_store import embed_texts

    texts = make_texts(args.n)
    store = Store(Path(tempfile.mkdtemp()) / "bench.duckdb")
    full = SentenceTransformerEmbedder(batch_size=args.batch)
    model = full.model
    model.encode(texts[:32], batch_size=args.batch)  # warm both paths equally

    t0 = time.perf_counter()
    model.encode(texts, batch_size=args.batch, convert_to_numpy=True, show_progress_bar=False)
    bare = time.perf_counter() - t0
    t0 = time.perf_counter()
    vecs_full = embed_texts(store, full, texts, batch_size=256)
    studio = time.perf_counter() - t0
    t0 = time.perf_counter()
    embed_texts(store, full, texts)
    second = time.perf_counter() - t0
    print(f"full model, {args.n} texts, batch {args.batch}: bare encode {bare:.2f} s ({args.n / bare:.0f} texts/s), "
          f"studio embed_texts {studio:.2f} s")
    print(f"second request (all cached): {second * 1000:.0f} ms = {second / studio:.1%} of the first")

    static = StaticEmbedder()
    t0 = time.perf_counter()
    static.encode(["warm up"])
    print(f"static embedder load (distils once, then cached on disk): {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    vecs_static = embed_texts(store, static, texts)
    st_time = time.perf_counter() - t0
    print(f"static embedder: {st_time:.2f} s ({args.n / st_time:.0f} texts/s, {studio / st_time:.0f}x the full model)")
    print(f"10-NN overlap static vs full: {knn_overlap(vecs_static, vecs_full):.2f} "
          "(share of each text's 10 nearest neighbours that both embedders agree on)")
    store.close()
    print(f"embed_cache: {bare / studio:.2f}")


if __name__ == "__main__":
    main()
