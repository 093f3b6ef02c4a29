"""Evaluate: the report's rerun time after a widget change, and the probe's overhead.

1. Two runs of 1,000 samples each (2,000 in all; fake embedder, PCA standing in for UMAP: only
   the cached map matters) go through the Evaluate page under AppTest; the report is computed
   once, then we time reruns after changing a widget (the learning-curve metric, the map colour).
2. The faithfulness probe (``services.curation.label_noise.probe``: stratified 5-fold logistic
   regression with its label handling and notes) against a bare scikit-learn
   ``cross_val_predict`` of the same estimator, folds and arrays (2,000 x 384), alternated.

Last lines: ``evaluate_rerun: <ms>`` (target under 500) and ``probe_ratio: <ratio>`` (at most 1.2).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = {"positive": ["great", "lovely", "tasty", "friendly", "fresh"], "negative": ["awful", "cold", "rude", "slow", "bland"]}
CUISINES = ["Thai", "Italian", "Mexican", "Lebanese"]


def seed_runs(db: Path, per_run: int) -> None:
    from services.core.store import Store
    from tests.explore_data import insert_run

    store = Store(db)
    rng = np.random.default_rng(0)
    for run in ("a", "b"):
        insert_run(store, f"run-{run}", [("seed", {"label": "positive", "cuisine": "Thai"})], name=f"run {run}")
        labels = ["positive" if i % 2 else "negative" for i in range(1, per_run)]
        cuisines = [CUISINES[i % 4] for i in range(1, per_run)]
        texts = [f"{' '.join(rng.choice(WORDS[lab], 3))} {c} food, table {i} and {rng.integers(10_000)} more words"
                 for i, (lab, c) in enumerate(zip(labels, cuisines, strict=True))]
        rest = pa.table({"i": list(range(1, per_run)), "text": texts, "label": labels, "cuisine": cuisines})
        with store.write() as cur:
            cur.register("bulk", rest)
            cur.execute(f"""INSERT INTO samples (sample_key, run_id, plan_id, item_idx, item_key, recipe_hash, condition, demo_ids,
                           messages, text, model, params, prompt_tokens, completion_tokens, cost_usd, latency_ms)
                           SELECT 'run-{run}-' || i, 'run-{run}', 'plan-run-{run}', i, 'item-' || i, 'recipe1',
                                  MAP(['label', 'cuisine'], [label, cuisine]), [], '[]', text, 'fake-model', '{{}}', 20, 40, 0.0, 900
                           FROM bulk""")
            cur.unregister("bulk")
    store.close()


def rerun_ms(repeats: int) -> float:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app_pages" / "evaluate.py"), default_timeout=900)
    at.session_state["evaluate_runs"] = ["run-a", "run-b"]
    t0 = time.perf_counter()
    at.run()
    while not any(s.value == "Export" for s in at.subheader):
        assert not at.exception, at.exception
        time.sleep(0.5)
        at.run()
    print(f"first report (embed + layout + every section): {time.perf_counter() - t0:.1f} s")
    changed, plain = [], []
    for i in range(repeats):
        t0 = time.perf_counter()
        at.run()
        plain.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        if i % 2:
            at.radio(key="evaluate_map_colour").set_value(["cluster", "label", "cuisine"][i % 3]).run()
        else:
            at.radio(key="evaluate_tstr_metric").set_value(["accuracy", "macro_f1"][(i // 2) % 2]).run()
        changed.append((time.perf_counter() - t0) * 1000)
        assert not at.exception, at.exception
    print(f"rerun without change: median {statistics.median(plain):.0f} ms")
    print(f"rerun after a widget change: median {statistics.median(changed):.0f} ms over {repeats}")
    return statistics.median(changed)


def probe_ratio(n: int, dim: int, repeats: int) -> float:
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from services.curation.label_noise import FOLDS, make_classifier, probe

    rng = np.random.default_rng(1)
    y = np.array(["negative", "positive", "neutral"])[rng.integers(0, 3, n)]
    x = rng.normal(size=(n, dim)).astype(np.float32)
    x[:, 0] += (y == "positive") * 1.5
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    codes = np.searchsorted(np.unique(y), y)
    ours, bare = [], []
    probe(x, y)  # imports and first-call costs out of the timing
    for _ in range(repeats):
        t0 = time.perf_counter()
        probe(x, y, dimension="label")
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        cross_val_predict(make_classifier(0), x, codes, cv=StratifiedKFold(FOLDS, shuffle=True, random_state=0), method="predict_proba")
        bare.append(time.perf_counter() - t0)
    print(f"probe ({FOLDS}-fold, {n} x {dim}): median {statistics.median(ours) * 1000:.0f} ms; "
          f"bare cross_val_predict: {statistics.median(bare) * 1000:.0f} ms")
    return statistics.median(ours) / statistics.median(bare)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2_000, help="samples in all (two runs)")
    ap.add_argument("--repeats", type=int, default=6)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    db = tmp / "studio.duckdb"
    os.environ["STUDIO_DB"] = str(db)
    os.environ["STUDIO_EMBEDDER"] = "fake"
    os.environ["STUDIO_WARMUP"] = "0"
    import services.explore.projection as projection

    projection.umap_layout = lambda v, p: projection.pca_layout(v) * 3
    seed_runs(db, args.n // 2)
    # The shipped reference's vectors are cached for the full model only: embed it once for the fake one.
    from services.core.store import Store
    from services.evaluation.reference import shipped_reference
    from services.explore.embedders import make_embedder
    from services.explore.embedding_store import embed_texts

    store = Store(db)
    embed_texts(store, make_embedder("fake"), shipped_reference().texts)
    store.close()
    rerun = rerun_ms(args.repeats)
    ratio = probe_ratio(args.n, 384, args.repeats)
    print(f"evaluate_rerun: {rerun:.0f}")
    print(f"probe_ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
