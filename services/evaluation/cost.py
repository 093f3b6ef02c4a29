"""What each run cost: tokens, dollars and seconds, in total and per kept sample.

Kept: successful samples the run's most recently applied filter pipeline kept (all successful
samples when no pipeline was applied; said in the ``kept by`` column). Seconds are the run's
wall time (started → finished) where both are recorded, else the sum of request latencies.
"""

from __future__ import annotations

import pandas as pd

from services.core.store import Store
from services.curation.pipeline_store import latest_verdicts


def run_costs(store: Store, run_ids: list[str], names: dict[str, str] | None = None) -> pd.DataFrame:
    names = names or {}
    rows = store.query(
        """SELECT s.run_id, count(*) FILTER (WHERE s.error IS NULL), count(*) FILTER (WHERE s.error IS NOT NULL),
                  coalesce(sum(s.prompt_tokens), 0), coalesce(sum(s.completion_tokens), 0),
                  sum(s.cost_usd), coalesce(sum(s.latency_ms), 0) / 1000.0,
                  any_value(epoch(r.finished_at) - epoch(r.started_at))
           FROM samples s JOIN runs r USING (run_id)
           WHERE s.run_id IN (SELECT unnest(?::VARCHAR[])) AND s.step = 'output'
           GROUP BY s.run_id ORDER BY s.run_id""",
        [list(run_ids)],
    )
    verdicts = latest_verdicts(store, list(run_ids))
    kept_by_run: dict[str, int] = {}
    if verdicts:
        for rid, key in store.query("SELECT run_id, sample_key FROM samples WHERE sample_key IN (SELECT unnest(?::VARCHAR[]))",
                                    [list(verdicts)]):
            kept_by_run[rid] = kept_by_run.get(rid, 0) + (verdicts[key] == "kept")
    out = []
    for rid, ok, failed, pt, ct, usd, latency_s, wall_s in rows:
        kept = kept_by_run.get(rid, ok)
        seconds = float(wall_s) if wall_s and wall_s > 0 else float(latency_s)
        out.append({"run": names.get(rid, rid), "samples": ok, "failed": failed, "kept": kept,
                    "kept by": "latest filter pipeline" if rid in kept_by_run else "no filter applied",
                    "tokens": int(pt + ct), "dollars": usd, "seconds": seconds,
                    "tokens / kept": _per(float(pt + ct), kept), "dollars / kept": _per(usd, kept),
                    "seconds / kept": _per(seconds, kept)})
    return pd.DataFrame(out)


def _per(value: float | None, kept: int) -> float | None:
    return value / kept if kept and value is not None else None
