"""The full local embedder (all-MiniLM-L6-v2, sentence-transformers on torch CPU): which batch size
and torch thread count embed fastest on this machine, against the studio's previous setting.

Texts of mixed length (short reviews and long paragraphs, shuffled): sentence-transformers sorts
each ``encode`` call's texts by length before batching, so a batch pads to similar lengths; the
last configuration turns that off (one call per batch, in the given order) to show what sorting
buys. Each configuration is timed once on the same texts (default 64, so it stays near a minute
when the slow settings are slow; ``--n 160 --repeats 2`` for steadier figures).
Last line: ``embed_local: <texts/s of the best configuration / texts/s of batch 64, default threads>``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = ["the", "pasta", "was", "fresh", "and", "our", "waiter", "friendly", "but", "the", "wait", "was", "long", "and", "the", "bill", "made", "no", "sense", "coffee", "hotel", "room", "museum", "concert", "delivery", "parking", "kids", "loved", "it", "staff", "fixed", "quickly"]


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(5, 20) if rng.random() < 0.7 else rng.randint(80, 180)
        out.append(" ".join(rng.choice(WORDS) for _ in range(length)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    import torch

    from services.explore.embedders import SentenceTransformerEmbedder

    texts = make_texts(args.n)
    model = SentenceTransformerEmbedder().model
    model.encode(texts[:16])  # load and warm up, untimed
    default_threads = torch.get_num_threads()

    def rate(threads: int, batch: int, sort: bool = True) -> float:
        torch.set_num_threads(threads)
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            if sort:
                model.encode(texts, batch_size=batch, show_progress_bar=False)
            else:
                for i in range(0, len(texts), batch):
                    model.encode(texts[i:i + batch], batch_size=batch, show_progress_bar=False)
            best = min(best, time.perf_counter() - t0)
        return len(texts) / best

    results = {}
    for threads in sorted({1, default_threads}):
        for batch in (8, 16, 64):
            results[(threads, batch)] = rate(threads, batch)
            print(f"threads {threads}  batch {batch:3d}  {results[(threads, batch)]:6.1f} texts/s", flush=True)
    unsorted = rate(1, 16, sort=False)
    print(f"threads 1  batch  16  {unsorted:6.1f} texts/s  (not length-sorted)")
    torch.set_num_threads(default_threads)
    (bt, bb), best = max(results.items(), key=lambda kv: kv[1])
    base = results[(default_threads, 64)]
    studio = SentenceTransformerEmbedder()
    print(f"the studio's setting now: threads {studio.threads}, batch {studio.batch_size}: "
          f"{results.get((studio.threads, studio.batch_size), float('nan')):.1f} texts/s")
    print(f"{args.n} texts, {os.cpu_count()} cores, torch default threads {default_threads}; "
          f"best: threads {bt}, batch {bb}: {best:.1f} texts/s; previous default (batch 64): {base:.1f} texts/s")
    print(f"embed_local: {best / base:.2f}")


if __name__ == "__main__":
    main()
