"""Curation in the store: pipeline versions and the verdicts of applied pipelines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from services.core.clock import utc_now
from services.core.store import Store
from services.curation.pipeline import Pipeline, PipelineResult


@dataclass(frozen=True)
class PipelineVersion:
    pipeline_hash: str
    name: str
    version: int
    created_at: datetime

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version} ({self.pipeline_hash[:8]})"


def save_pipeline(store: Store, pipeline: Pipeline) -> PipelineVersion:
    """Save as an immutable version (content hash of name and steps); saving identical content
    returns the existing version."""
    phash = pipeline.content_hash()
    with store.write() as cur:
        row = cur.execute("SELECT pipeline_hash, name, version, created_at FROM filter_pipelines WHERE pipeline_hash = ?",
                          [phash]).fetchone()
        if row:
            return PipelineVersion(*row)
        version = cur.execute("SELECT coalesce(max(version), 0) + 1 FROM filter_pipelines WHERE name = ?", [pipeline.name]).fetchone()[0]
        cur.execute("INSERT INTO filter_pipelines (pipeline_hash, name, version, steps, created_at) VALUES (?, ?, ?, ?, ?)",
                    [phash, pipeline.name, version, json.dumps(pipeline.canonical_steps(), ensure_ascii=False), utc_now()])
        row = cur.execute("SELECT pipeline_hash, name, version, created_at FROM filter_pipelines WHERE pipeline_hash = ?",
                          [phash]).fetchone()
    return PipelineVersion(*row)


def list_pipelines(store: Store) -> list[PipelineVersion]:
    return [PipelineVersion(*r) for r in store.query(
        "SELECT pipeline_hash, name, version, created_at FROM filter_pipelines ORDER BY name, version DESC")]


def load_pipeline(store: Store, pipeline_hash: str) -> Pipeline:
    rows = store.query("SELECT name, steps FROM filter_pipelines WHERE pipeline_hash = ?", [pipeline_hash])
    if not rows:
        raise KeyError(f"no pipeline version {pipeline_hash}")
    return Pipeline.parse({"name": rows[0][0], "steps": json.loads(rows[0][1])})


def apply_pipeline(store: Store, result: PipelineResult) -> PipelineVersion:
    """Save the pipeline version and write its verdicts on the run (replacing an earlier application)."""
    run_id = result.batch.run_id
    if not run_id:
        raise ValueError("this batch does not come from a run")
    version = save_pipeline(store, result.pipeline)
    rows = result.verdict_rows()
    table = pa.table({
        "sample_key": pa.array([r[0] for r in rows], pa.string()),
        "step_idx": pa.array([r[1] for r in rows], pa.int32()),
        "step_name": pa.array([r[2] for r in rows], pa.string()),
        "kept": pa.array([r[3] for r in rows], pa.bool_()),
        "reason": pa.array([r[4] for r in rows], pa.string()),
        "score": pa.array([r[5] for r in rows], pa.float64()),
    })
    with store.write() as cur:
        cur.execute("DELETE FROM filter_verdicts WHERE pipeline_hash = ? AND run_id = ?", [version.pipeline_hash, run_id])
        cur.execute("DELETE FROM filter_applications WHERE pipeline_hash = ? AND run_id = ?", [version.pipeline_hash, run_id])
        cur.register("_verdicts_in", table)
        try:
            cur.execute("INSERT INTO filter_verdicts (pipeline_hash, run_id, sample_key, step_idx, step_name, kept, reason, score)"
                        " SELECT ?, ?, sample_key, step_idx, step_name, kept, reason, score FROM _verdicts_in",
                        [version.pipeline_hash, run_id])
        finally:
            cur.unregister("_verdicts_in")
        cur.execute("INSERT INTO filter_applications (pipeline_hash, run_id, n_in, n_kept, applied_at) VALUES (?, ?, ?, ?, ?)",
                    [version.pipeline_hash, run_id, result.n, result.n_kept, utc_now()])
    return version


def applications(store: Store, run_id: str):
    """Pipelines applied to a run, newest first (a DataFrame)."""
    return store.query_df(
        """SELECT p.name, p.version, a.pipeline_hash, a.n_in, a.n_kept, a.applied_at
           FROM filter_applications a JOIN filter_pipelines p USING (pipeline_hash)
           WHERE a.run_id = ? ORDER BY a.applied_at DESC""",
        [run_id],
    )


def latest_verdicts(store: Store, run_ids: list[str]) -> dict[str, str]:
    """sample_key -> 'kept' or 'dropped: <step>' under the pipeline most recently applied to each run.

    For colouring a map by filter verdict; samples of runs with no applied pipeline are absent.
    """
    rows = store.query(
        """WITH latest AS (
               SELECT run_id, arg_max(pipeline_hash, applied_at) AS pipeline_hash
               FROM filter_applications WHERE run_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY run_id)
           SELECT v.sample_key, bool_and(v.kept), arg_min(v.step_name, CASE WHEN v.kept THEN NULL ELSE v.step_idx END)
           FROM filter_verdicts v JOIN latest l USING (run_id, pipeline_hash)
           GROUP BY v.sample_key""",
        [list(run_ids)],
    )
    return {k: "kept" if kept else f"dropped: {step}" for k, kept, step in rows}
