"""The curated dataset out of the studio: JSONL, CSV, Parquet, and a Hugging Face `datasets` folder.

Rows are the kept samples with their latest text (edits applied; the original beside it), one
column per condition dimension plus the whole condition as JSON, and their provenance (run,
recipe version, model, backend preset, parameters, prompt, usage, pipeline). Never a key: the
run's base_url is left out (a URL can carry credentials) and parameters never hold one.

The Hugging Face layout is a folder with ``data/train-00000-of-00001.parquet`` and a
``README.md`` data card whose YAML header names the data files, so
``datasets.load_dataset(folder)`` loads it offline.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from services.core.store import Store
from services.curation.pipeline import PipelineResult

BASE_COLUMNS = [
    "sample_key", "text", "original_text", "edit_version", "condition", "run_id", "recipe_hash", "recipe_name",
    "recipe_version", "backend", "model", "params", "prompt", "demo_ids", "prompt_tokens", "completion_tokens",
    "latency_ms", "cost_usd", "finish_reason", "created_at", "pipeline", "pipeline_hash",
]


def curated_frame(store: Store, result: PipelineResult) -> pd.DataFrame:
    """The kept samples of a pipeline result, with condition and provenance columns, in batch order."""
    keys = [k for k, kept in zip(result.batch.keys, result.kept.tolist(), strict=True) if kept]
    rows = store.query(
        """SELECT s.sample_key, s.text, s.original_text, s.edit_version, s.condition, s.run_id, s.recipe_hash,
                  v.name, v.version, r.backend, s.model, s.params, s.messages, s.demo_ids, s.prompt_tokens,
                  s.completion_tokens, s.latency_ms, s.cost_usd, s.finish_reason, s.created_at
           FROM samples_latest s
           LEFT JOIN runs r ON r.run_id = s.run_id
           LEFT JOIN recipe_versions v ON v.recipe_hash = s.recipe_hash
           WHERE s.sample_key IN (SELECT unnest(?::VARCHAR[]))""",
        [keys],
    )
    by_key = {r[0]: r for r in rows}
    dims = result.batch.dimensions
    dim_cols = {d: (d if d not in BASE_COLUMNS else f"condition_{d}") for d in dims}
    phash = result.pipeline.content_hash()
    records = []
    for k in keys:
        r = by_key.get(k)
        if r is None:
            continue
        cond = dict(r[4] or {})
        rec: dict[str, Any] = {
            "sample_key": r[0], "text": r[1] or "", "original_text": r[2] or "", "edit_version": int(r[3] or 0),
            "condition": json.dumps(cond, ensure_ascii=False, sort_keys=True), "run_id": r[5], "recipe_hash": r[6],
            "recipe_name": r[7], "recipe_version": r[8], "backend": r[9], "model": r[10], "params": r[11] or "{}",
            "prompt": r[12] or "[]", "demo_ids": list(r[13] or []), "prompt_tokens": r[14], "completion_tokens": r[15],
            "latency_ms": r[16], "cost_usd": r[17], "finish_reason": r[18],
            "created_at": r[19].isoformat() if r[19] is not None else None,
            "pipeline": result.pipeline.name, "pipeline_hash": phash,
        }
        for d, col in dim_cols.items():
            rec[col] = cond.get(d)
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=[*BASE_COLUMNS, *dim_cols.values()])
    for col in ("prompt_tokens", "completion_tokens", "recipe_version", "edit_version"):
        frame[col] = frame[col].astype("Int64")
    return frame


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def to_jsonl(frame: pd.DataFrame) -> bytes:
    return frame.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")


def to_csv(frame: pd.DataFrame) -> bytes:
    flat = frame.copy()
    flat["demo_ids"] = flat["demo_ids"].map(lambda v: json.dumps(list(v)))
    return flat.to_csv(index=False).encode("utf-8")


def to_parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    pq.write_table(_arrow(frame), buf)
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def data_card(store: Store, result: PipelineResult, frame: pd.DataFrame, diversity: pd.DataFrame | None = None,
              *, name: str | None = None) -> str:
    """A short README.md: YAML header for `datasets`, then recipe, model, filters, counts, diversity."""
    run_id = result.batch.run_id
    run = store.query(
        """SELECT r.run_id, coalesce(r.name, r.run_id), r.backend, r.model, r.params, v.name, v.version, v.recipe_hash, v.body
           FROM runs r LEFT JOIN recipe_versions v ON v.recipe_hash = r.recipe_hash WHERE r.run_id = ?""",
        [run_id],
    ) if run_id else []
    title = name or (f"{run[0][5] or 'synthetic'} curated by {result.pipeline.name}" if run else "curated synthetic data")
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path: data/train-*.parquet",
        "tags:",
        "- synthetic",
        "---",
        "",
        f"# {title}",
        "",
        "Synthetic data generated and curated with Synthetic Data Studio. Each row keeps its condition "
        "(one column per dimension, and `condition` as JSON) and its provenance (run, recipe version, model, "
        "parameters, prompt, usage). Edited samples keep their original text in `original_text`.",
        "",
        "## Recipe and model",
        "",
    ]
    if run:
        r = run[0]
        body = json.loads(r[8]) if r[8] else {}
        lines += [f"- run: `{r[0]}` ({r[1]})", f"- recipe: {r[5]} v{r[6]} (`{(r[7] or '')[:12]}`)",
                  f"- task: {str(body.get('task', '')).strip()[:300] or 'n/a'}",
                  f"- dimensions: {', '.join(d.get('name', '?') for d in body.get('dimensions', [])) or 'none'}",
                  f"- backend: {r[2]}, model: `{r[3]}`", f"- parameters: `{r[4]}`"]
    else:
        lines.append("- not from a single run")
    lines += ["", f"## Filters: {result.pipeline.name} (`{result.pipeline.content_hash()[:12]}`)", "",
              "| step | in | dropped | out |", "| --- | --- | --- | --- |"]
    for s in result.steps:
        lines.append(f"| {s.name} | {s.n_in} | {s.dropped} | {s.n_out} |")
    lines += ["", "## Counts", "", f"- samples before filtering: {result.n}", f"- kept: {result.n_kept}",
              f"- dropped: {result.n_dropped}", f"- rows in this export: {len(frame)}", ""]
    if diversity is not None and not diversity.empty:
        cols = [c for c in ("samples", "distinct_1", "distinct_2", "vocabulary", "self_bleu", "mean_cosine", "vendi", "clusters")
                if c in diversity.columns]
        lines += ["## Diversity (before and after filtering)", "", "| set | " + " | ".join(cols) + " |",
                  "| --- |" + " --- |" * len(cols)]
        for row in diversity.to_dict("records"):
            lines.append(f"| {row['set']} | " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
        lines.append("")
    lines += ["## Columns", "", ", ".join(f"`{c}`" for c in frame.columns), ""]
    return "\n".join(lines)


def write_hf_folder(folder: str | Path, frame: pd.DataFrame, card: str) -> Path:
    """Write the `datasets`-loadable layout: data/train-00000-of-00001.parquet + README.md."""
    out = Path(folder)
    (out / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(_arrow(frame), out / "data" / "train-00000-of-00001.parquet")
    (out / "README.md").write_text(card, encoding="utf-8")
    return out


def hf_zip(frame: pd.DataFrame, card: str, root: str = "curated_dataset") -> bytes:
    """The same layout as a zip (for a download button): unzip, then datasets.load_dataset(folder)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{root}/data/train-00000-of-00001.parquet", to_parquet(frame))
        zf.writestr(f"{root}/README.md", card)
    return buf.getvalue()
