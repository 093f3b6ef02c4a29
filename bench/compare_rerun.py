"""Server time to recompute the comparison of two pipelines after a threshold change, 20,000 samples.

Two pipelines (length, refusal, exact dedup, MinHash / length, keywords, semantic dedup on cached
random embeddings) are compared once (cold: every step scored), then a threshold moves (MinHash
Jaccard, semantic cosine, a length bound) and the comparison is recomputed from the score cache:
counts, reasons, per-condition and per-cluster shares, flags, distributions, both-way diffs.
Last line: ``compare_rerun: <ms>`` (median of the reruns; target under 1000).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._corpus import corpus  # noqa: E402
from bench.semantic_dedup import RandomEmbedder  # noqa: E402
from services.core.store import Store  # noqa: E402
from services.curation.compare import compare, diversity_before_after  # noqa: E402
from services.curation.pipeline import FilterContext, Pipeline, SampleBatch, ScoreCache  # noqa: E402
from services.explore.embedding_store import embed_texts  # noqa: E402


def pipelines(jaccard: float, cosine: float, min_words: int) -> list[Pipeline]:
    return [
        Pipeline.parse({"name": "A", "steps": [{"kind": "length", "min": min_words}, {"kind": "refusal"}, {"kind": "exact_dedup"},
                                                {"kind": "minhash", "threshold": jaccard}]}),
        Pipeline.parse({"name": "B", "steps": [{"kind": "length", "min": min_words, "max": 40}, {"kind": "keywords", "keywords": ["w7", "w13"]},
                                                {"kind": "semantic_dedup", "threshold": cosine}]}),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    texts = corpus(args.n, words=25)
    lengths = rng.integers(5, 40, size=args.n)
    texts = [" ".join(t.split()[:k]) for t, k in zip(texts, lengths.tolist(), strict=True)]
    moods, sizes = ["calm", "angry", "happy", "sad", "wry"], ["short", "medium", "long"]
    conds = [{"mood": moods[i % 5], "size": sizes[(i // 5) % 3]} for i in range(args.n)]
    batch = SampleBatch.from_texts(texts, conds)
    clusters = {k: int(c) for k, c in zip(batch.keys, rng.integers(-1, 40, size=args.n).tolist(), strict=True)}
    store = Store(Path(tempfile.mkdtemp()) / "studio.duckdb")
    emb = RandomEmbedder()
    embed_texts(store, emb, texts)
    ctx = FilterContext(store=store, embedder=emb, max_embed_inline=0)
    cache = ScoreCache()
    intended = {"mood": {m: 0.2 for m in moods}, "size": {s: 1 / 3 for s in sizes}}

    t0 = time.perf_counter()
    c = compare(batch, pipelines(0.7, 0.92, 8), ctx, cache, clusters=clusters, intended=intended)
    cold = time.perf_counter() - t0
    print(f"first comparison (every step scored): {cold:.2f} s; kept A={c.results[0].n_kept:,} B={c.results[1].n_kept:,}")

    times, div_times = [], []
    settings = [(0.6, 0.9, 6), (0.8, 0.95, 10), (0.65, 0.93, 12), (0.75, 0.91, 7), (0.7, 0.97, 9)]
    for jac, cos, mn in settings[: args.repeats]:
        t0 = time.perf_counter()
        c = compare(batch, pipelines(jac, cos, mn), ctx, cache, clusters=clusters, intended=intended)
        c.kept_by_dropped_by(0, 1)
        c.kept_by_dropped_by(1, 0)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        diversity_before_after(c, None, cache, self_bleu=False)
        div_times.append(time.perf_counter() - t0)
    med = statistics.median(times) * 1000
    print(f"recompute after a threshold change: median {med:.0f} ms over {len(times)} changes "
          f"({cold * 1000 / med:.0f}x faster than the first comparison); score cache hits {cache.hits}, misses {cache.misses}")
    print(f"diversity before/after for the new kept sets (Explore's metrics on up to 2,000 texts each, Self-BLEU off as on the "
          f"page by default): median {statistics.median(div_times) * 1000:.0f} ms; with both: "
          f"{(statistics.median(times) + statistics.median(div_times)) * 1000:.0f} ms")
    store.close()
    print(f"compare_rerun: {med:.0f}")


if __name__ == "__main__":
    main()
