"""What Explore's selection actions cost on a 100,000-sample lasso, against the bare statements.

A run of N samples is inserted; the whole run is "selected" (as a lasso over a 10^5 map returns
it, services.explore.map_view.rows_in_region). Timed: tag, drop in review, undo the drop, and
the export frame (services.curation.selection_actions), against a baseline in the same run: the
bare DuckDB statements that any implementation must run (one INSERT ... SELECT unnest per
write, one SELECT of the rows), so the ratio is the services' own overhead. Also measured on a
small selection: the row-by-row executemany these writes used before, per 1,000 keys.
Not covered: the page's rerun and the download's serialisation (bench/map_payload.py).
Last line: ``selection_actions: <ratio>`` (services / bare statements).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--row-by-row", type=int, default=300, help="keys for the executemany comparison")
    args = ap.parse_args()

    from services.core.clock import utc_now
    from services.core.store import Store
    from services.curation.selection_actions import drop_in_review, selection_samples, split_selection, tag_samples, undo_drop
    from services.explore.items import load_runs
    from tests.explore_data import insert_big_run

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        insert_big_run(store, "big", args.n)
        items = load_runs(store, ["big"])
        sel = split_selection(items.frame, list(range(len(items.frame))))
        keys = sel.sample_keys

        t = time.perf_counter()
        tagged = tag_samples(store, sel, "off-topic")
        dropped = drop_in_review(store, sel)
        undone = undo_drop(store, dropped)
        frame = selection_samples(store, sel)
        services_s = time.perf_counter() - t
        assert tagged.tagged == dropped.dropped == undone == len(frame) == args.n

        # the baseline: the same writes and read as bare statements, on fresh tables
        with store.write() as cur:
            cur.execute("CREATE TABLE t2 AS SELECT * FROM sample_tags LIMIT 0")
            cur.execute("CREATE TABLE r2 AS SELECT * FROM review_decisions LIMIT 0")
        t = time.perf_counter()
        with store.write() as cur:
            cur.execute("INSERT INTO t2 SELECT unnest(?::VARCHAR[]), 'off-topic', ?", [keys, utc_now()])
            cur.execute("SELECT count(*) FROM r2 WHERE sample_key IN (SELECT unnest(?::VARCHAR[]))", [keys]).fetchall()
            cur.execute("INSERT INTO r2 SELECT unnest(?::VARCHAR[]), 'drop', 'n', ?", [keys, utc_now()])
            cur.execute("DELETE FROM r2 WHERE sample_key IN (SELECT unnest(?::VARCHAR[]))", [keys])
        store.query("SELECT * FROM samples_latest WHERE sample_key IN (SELECT unnest(?::VARCHAR[]))", [keys])
        bare_s = time.perf_counter() - t

        few = keys[: args.row_by_row]
        t = time.perf_counter()
        with store.write() as cur:  # the statement set_review ran per key before
            cur.executemany(
                "INSERT INTO review_decisions (sample_key, decision, note, decided_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (sample_key) DO UPDATE SET decision = excluded.decision, note = excluded.note,"
                " decided_at = excluded.decided_at", [[k, "drop", "n", utc_now()] for k in few])
        per_1000 = (time.perf_counter() - t) / len(few) * 1000
        store.close()

    print(f"samples selected: {args.n:,}")
    print(f"tag + drop + undo + export frame: {services_s:.2f} s; bare statements: {bare_s:.2f} s")
    print(f"row-by-row executemany (the old review write): {per_1000:.1f} s per 1,000 keys "
          f"(about {per_1000 * args.n / 1000 / 60:.0f} min for this selection)")
    print(f"selection_actions: {services_s / bare_s:.2f}")


if __name__ == "__main__":
    main()
