"""A 100,000-row audit end to end: the studio's total wall time over the bare libraries'.

The corpus is generated here (no download): JSONL rows with a text, a topic (12) and a label (3).
Texts are 6-20 words drawn from the embedding model's own vocabulary (the installed package's
``vocab.txt``), half from a topic's own 120 words and half from 4,000 shared words with Zipf-like
weights, so the map has overlapping topics rather than a dozen near-identical templates (templated
texts made UMAP's spectral initialisation take minutes on both sides). Both sides then do the same
four steps on the same file, with the same UMAP and HDBSCAN parameters:
- studio: ``import_dataset`` (one streaming statement into DuckDB, row-level errors, the topic and
  label as attributes), then ``build_map`` with those parameters -- what the Explore page and the
  CLI run: items loaded from DuckDB, the static embedder through the embedding cache (vectors
  written to DuckDB as they come: keyed by model and text hash, resumable), PCA previews, UMAP,
  HDBSCAN, layout and clusters saved in DuckDB;
- bare: DuckDB's ``read_json`` into a table and the texts fetched back, model2vec's ``encode``,
  ``umap.UMAP`` (cosine, 15 neighbours, min_dist 0.1, seed 42), ``hdbscan.HDBSCAN`` (the same
  minimum cluster size, ``core_dist_n_jobs=1`` as the studio); results kept in memory only, so the
  studio's persistence (cache, layout, clusters) and previews count as its overhead.
Not timed: distilling the static model once and compiling UMAP's numba code (``warm_up``), which
both sides share. It takes minutes on 2 cores. ``--n`` for a smaller run. The machine's load
average is printed before and after: on a shared machine every figure moves with it.
Last line: ``scale: <studio / bare>`` (target at most 1.15).
"""

from __future__ import annotations

import argparse
import json
import os
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
UMAP_PARAMS = dict(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=42, n_components=2)


def vocabulary() -> list[str]:
    """Whole words of the embedding model's own vocabulary (shipped with the installed model)."""
    from services.explore.embedders import default_model_path

    words = [w.strip() for w in (default_model_path() / "vocab.txt").read_text(encoding="utf-8").splitlines()]
    return [w for w in words if w.isascii() and w.isalpha() and len(w) >= 3]


def write_corpus(path: Path, n: int, seed: int = 0) -> None:
    rnd = random.Random(seed)
    words = vocabulary()
    rnd.shuffle(words)
    shared = words[:4000]
    weights = [1 / (r + 10) for r in range(len(shared))]  # Zipf-like: a few common words, a long tail
    own = {t: [t, *words[4000 + 120 * i : 4000 + 120 * (i + 1) - 1]] for i, t in enumerate(TOPICS)}
    with open(path, "w") as f:
        for i in range(n):
            t = rnd.choice(TOPICS)
            k = rnd.randint(6, 20)
            mine = rnd.choices(own[t], k=k // 2)
            rest = rnd.choices(shared, weights=weights, k=k - k // 2)
            body = mine + rest
            rnd.shuffle(body)
            text = " ".join(body).capitalize() + "."
            f.write(json.dumps({"id": i, "text": text, "topic": t, "label": rnd.choice(["pos", "neg", "neutral"])}) + "\n")


def bare(path: Path, model_dir: Path, size: int) -> dict[str, float]:
    import duckdb
    import hdbscan
    import numpy as np
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
        xy = umap.UMAP(**UMAP_PARAMS).fit_transform(vectors)
    t["umap"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdbscan.HDBSCAN(min_cluster_size=size, core_dist_n_jobs=1).fit_predict(np.asarray(xy, dtype=np.float64))
    t["clusters"] = time.perf_counter() - t0
    con.close()
    return t


def studio(path: Path, db: Path, cache: Path, size: int) -> tuple[dict[str, float], int]:
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
    # the layout's defaults are UMAP_PARAMS; the cluster size is given, as on the bare side
    data = build_map(store, StaticEmbedder(cache_dir=cache), MapRequest(dataset_id=report.dataset_id, min_cluster_size=size), job)
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

    print(f"load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)", flush=True)
    from services.explore.projection import LayoutParams

    lp = LayoutParams()  # the studio's defaults, which build_map uses: the bare side must match them
    assert (lp.n_neighbors, lp.min_dist, lp.seed) == (UMAP_PARAMS["n_neighbors"], UMAP_PARAMS["min_dist"], UMAP_PARAMS["random_state"])
    size = default_min_cluster_size(args.n)
    b = bare(corpus, embedder.dir, size)
    print("bare: " + ", ".join(f"{k} {v:.1f} s" for k, v in b.items()), flush=True)
    s, n_mapped = studio(corpus, tmp / "studio.duckdb", CACHE_DIR, size)
    assert n_mapped == args.n, f"the studio mapped {n_mapped} of {args.n} rows"
    for step in ("import", "embed", "umap", "clusters"):
        print(f"{step:>9}: studio {s[step]:7.1f} s   bare {b[step]:7.1f} s")
    total_s, total_b = sum(s.values()), sum(b.values())
    print(f"    total: studio {total_s:7.1f} s   bare {total_b:7.1f} s  ({args.n:,} rows)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"scale: {total_s / total_b:.2f}")


if __name__ == "__main__":
    main()
