"""MinHash near-dup (datasketch LSH) over 20,000 samples vs brute-force pairwise Jaccard over 2,000.

Brute force is quadratic, so its 20,000 time is extrapolated (x (20,000 / 2,000)^2 = x100).
Last line: ``near_dup: <extrapolated speed-up>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._corpus import corpus  # noqa: E402
from services.curation.dedup_steps import MinHashStep, jaccard, shingles  # noqa: E402
from services.curation.pipeline import SampleBatch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--brute", type=int, default=2_000)
    ap.add_argument("--threshold", type=float, default=0.7)
    args = ap.parse_args()
    texts = corpus(args.n)

    t0 = time.perf_counter()
    v = MinHashStep(threshold=args.threshold, shingle_size=3).verdicts(SampleBatch.from_texts(texts))
    t_minhash = time.perf_counter() - t0
    print(f"MinHash LSH over {args.n:,} samples: {t_minhash:.2f} s, {sum(not x.kept for x in v):,} near-duplicates dropped")

    sub = texts[: args.brute]
    t0 = time.perf_counter()
    sets = [shingles(t, 3, "words") for t in sub]
    pairs = 0
    for i in range(len(sets)):
        a = sets[i]
        for j in range(i + 1, len(sets)):
            if jaccard(a, sets[j]) >= args.threshold:
                pairs += 1
    t_brute = time.perf_counter() - t0
    extrapolated = t_brute * (args.n / args.brute) ** 2
    print(f"brute-force pairwise Jaccard over {args.brute:,} samples: {t_brute:.2f} s ({pairs} pairs >= {args.threshold});"
          f" extrapolated to {args.n:,}: {extrapolated:.0f} s")
    print(f"near_dup: {extrapolated / t_minhash:.1f}")


if __name__ == "__main__":
    main()
