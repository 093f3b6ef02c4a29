"""A 100,000-row audit end to end: the studio's total wall time over the bare libraries'.

The corpus is generated here (no download): 100,000 JSONL rows, texts about 12 topics with a
label and a topic column. Both sides then do the same four steps on the same file:
- studio: ``import_dataset`` (streaming into DuckDB, row-level errors), then ``build_map``
  (static embedder through the embedding cache, PCA preview, UMAP, HDBSCAN, layouts and
  clusters saved in DuckDB) -- what the Explore page and the CLI run;
- bare: DuckDB's ``read_json``, model2vec's ``encode``, ``umap.UMAP(metric="cosine")``,
  ``hdbscan.HDBSCAN``, results kept in memory only.
Not timed: distilling the static model once and compiling UMAP's numba code (``warm_up``), which
both sides share. It takes several minutes on 2 cores (UMAP dominates). ``--n`` for a smaller run.
Last line: ``scale: <studio / bare>`` (target at most 1.15).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOPICS = ["pizza", "sushi", "football", "tennis", "python", "databases", "gardening", "jazz", "hiking", "banking",
          "chemistry", "poetry"]
WORDS = {t: [f"{t}", f"{t}s", "fresh", "late", "slow", "great", "awful", "quiet", "new", "old"] for t in TOPICS}
TEMPLATES = ["I tried {t} yesterday and it was {a}.", "Why is {t} so {a} these days?", "A {a} guide to {t} for beginners.",
             "My friend says {t} is {a}, I disagree.", "Notes on {t}: {a}, {b}, and more {b}."]


def write_corpus(path: Path, n: int, seed: int = 0) -> None:
    rnd = random.Random(seed)
    with open(path, "w") as f:
        for i in range(n):
            t = rnd.choice(TOPICS)
            a, b = rnd.choice(WORDS[t]), rnd.choice(WORDS[t])
            text = rnd.choice(TEMPLATES).format(t=t, a=a, b=b) + f" ({i % 997} {rnd.choice(WORDS[t])})"
            f.write(json.dumps({"id": i, "text": text, "topic": t, "label": rnd.choice(["pos", "neg", "neutral"])}) + "\n")


def bare(path: Path, model_dir: Path, size: int) -> dict[str, float]:
    import duckdb
    import hdbscan
    import umap
    from model2vec import StaticModel

    t: dict[str, float] = {}
    t0 = time.perf_counter()
    con = duckdb.connect(str(path.with_suffix(".bare.duckdb")))
    con.execute("CREATE TABLE rows AS SELECT * FROM read_json(?)", [str(path)])
    texts = [r[0] for r in con.execute("SELECT text FROM rows ORDER BY id").fetchall()]
    t["import"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    vectors = StaticModel.from_pretrained(str(model_dir)).encode(texts)
    t["embed"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xy = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=42, n_components=2).fit_transform(vectors)
    t["umap"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    hdbscan.HDBSCAN(min_cluster_size=size).fit_predict(xy)
    t["clusters"] = time.perf_counter() - t0
    con.close()
    return t


def studio(path: Path, db: Path, cache: Path) -> tuple[dict[str, float], int]:
    from services.core.store import Store
    from services.data.importer import import_dataset
    from services.explore.embedders import StaticEmbedder
    from services.explore.map_jobs import MapJob, MapRequest, build_map

    t: dict[str, float] = {}
    store = Store(db)
    t0 = time.perf_counter()
    report = import_dataset(store, path, text_column="text", attribute_columns=["topic", "label"])
    t["import"] = time.perf_counter() - t0
    job, marks = MapJob(key="bench"), {}
    report_stage = job.report

    def timed(stage: str, *a, **kw) -> None:  # when each stage starts, from the job's own reports
        marks.setdefault(stage, time.perf_counter())
        report_stage(stage, *a, **kw)

    job.report = timed
    t0 = time.perf_counter()
    data = build_map(store, StaticEmbedder(cache_dir=cache), MapRequest(dataset_id=report.dataset_id), job)
    end = time.perf_counter()
    t["embed"] = marks.get("umap", end) - t0  # loading the rows, embedding, caching, PCA preview
    t["umap"] = marks.get("clusters", end) - marks.get("umap", end)
    t["clusters"] = end - marks.get("clusters", end)
    store.close()
    return t, len(data.items)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="scale-"))
    corpus = tmp / "corpus.jsonl"
    write_corpus(corpus, args.n)
    print(f"corpus: {args.n:,} rows, {corpus.stat().st_size / 1e6:.1f} MB of JSONL", flush=True)

    from services.core.paths import CACHE_DIR
    from services.explore.embedders import StaticEmbedder
    from services.explore.projection import default_min_cluster_size, warm_up

    t0 = time.perf_counter()
    embedder = StaticEmbedder(cache_dir=CACHE_DIR)
    embedder.encode(["distil the static model once, before either side is timed"])
    warm_up()
    print(f"not timed: static model ready and UMAP compiled in {time.perf_counter() - t0:.1f} s", flush=True)

    b = bare(corpus, embedder.dir, default_min_cluster_size(args.n))
    print("bare: " + ", ".join(f"{k} {v:.1f} s" for k, v in b.items()), flush=True)
    s, n_mapped = studio(corpus, tmp / "studio.duckdb", CACHE_DIR)
    assert n_mapped == args.n, f"the studio mapped {n_mapped} of {args.n} rows"
    for step in ("import", "embed", "umap", "clusters"):
        print(f"{step:>9}: studio {s[step]:7.1f} s   bare {b[step]:7.1f} s")
    total_s, total_b = sum(s.values()), sum(b.values())
    print(f"    total: studio {total_s:7.1f} s   bare {total_b:7.1f} s  ({args.n:,} rows)")
    print(f"scale: {total_s / total_b:.2f}")


if __name__ == "__main__":
    main()
