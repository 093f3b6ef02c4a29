"""The first map in a freshly started studio: warm-up done vs a process with an empty numba cache.

Two fresh processes each load the demo (padded to 1,000 samples) into a new database and time
``build_map`` (load, embed from cache, UMAP, HDBSCAN): the path the Explore page runs.
- warm: numba's on-disk cache as `make run` leaves it, and the studio's start-up warm-up has
  finished (the home page shows it ready) before the map is asked for;
- cold: an empty numba cache directory and no warm-up, so the map pays imports and JIT.
Embeddings use the deterministic hash embedder: embedding speed is measured by
bench/embed_cache.py; this isolates what the warm-up is for.
Last line: ``first_map: <seconds, warm>``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
N_POINTS = 1000


def child(warm: bool) -> dict:
    t_start = time.perf_counter()
    from services.core.store import Store
    from services.demo.loader import load_demo
    from services.explore.embedders import HashEmbedder
    from services.explore.map_jobs import MapRequest, build_map
    from services.explore.warmup import Warmup

    store = Store(Path(tempfile.mkdtemp()) / "first_map.duckdb")
    load_demo(store)
    have = store.scalar("SELECT count(*) FROM samples WHERE step = 'output' AND error IS NULL")
    copies = -(-N_POINTS // have) - 1
    with store.write() as cur:  # pad to N_POINTS with variants of the demo texts (same conditions)
        cur.execute(
            "INSERT INTO samples SELECT s.* REPLACE (sample_key || '-v' || k AS sample_key, text || ' (variant ' || k || ')' AS text)"
            " FROM samples s, range(1, ?) r(k) WHERE step = 'output' AND error IS NULL LIMIT ?", [copies + 1, N_POINTS - have])
    run_ids = tuple(r for (r,) in store.query("SELECT DISTINCT run_id FROM samples"))
    embedder = HashEmbedder()
    setup = time.perf_counter() - t_start
    warm_s = None
    if warm:
        t0 = time.perf_counter()
        Warmup(embedder).start().join()
        warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = build_map(store, embedder, MapRequest(run_ids=run_ids))
    seconds = time.perf_counter() - t0
    n = len(data.items)
    return {"seconds": seconds, "points": n, "clusters": int(len(set(data.labels.tolist()) - {-1})),
            "warmup_s": warm_s, "setup_s": setup}


def run_child(warm: bool, numba_dir: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": numba_dir}
    out = subprocess.run([sys.executable, __file__, "--child", "warm" if warm else "cold"], env=env,
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", choices=["warm", "cold"])
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child == "warm")))
        return
    from services.demo.recipe_files import demo_available

    if not demo_available():
        raise SystemExit("data/demo is missing: the demo runs ship with the repo")
    warm_dir = os.environ.get("NUMBA_CACHE_DIR", str(ROOT / "data" / "cache" / "numba"))
    warm = run_child(True, warm_dir)
    cold = run_child(False, tempfile.mkdtemp(prefix="numba-empty-"))
    print(f"warm studio (numba cache on disk, start-up warm-up done in {warm['warmup_s']:.1f} s): "
          f"map of {warm['points']} samples in {warm['seconds']:.2f} s, {warm['clusters']} clusters")
    print(f"cold process (empty numba cache, no warm-up): map of {cold['points']} samples in {cold['seconds']:.2f} s")
    print(f"cold / warm: {cold['seconds'] / warm['seconds']:.1f}x")
    print(f"first_map: {warm['seconds']:.2f}")


if __name__ == "__main__":
    main()
