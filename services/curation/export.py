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
    return samples_frame(store, keys, result.batch.dimensions, pipeline=result.pipeline.name,
                         pipeline_hash=result.pipeline.content_hash())


def samples_frame(store: Store, keys: list[str], dimensions: list[str] | None = None, *, pipeline: str | None = None,
                  pipeline_hash: str | None = None) -> pd.DataFrame:
    """Samples by key (in that order; unknown keys left out) with condition and provenance columns.
    ``dimensions`` default to every dimension the samples' conditions name, first seen first."""
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
    dims = dimensions if dimensions is not None else list(dict.fromkeys(d for k in keys if k in by_key for d in (by_key[k][4] or {})))
    dim_cols = {d: (d if d not in BASE_COLUMNS else f"condition_{d}") for d in dims}
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
            "pipeline": pipeline, "pipeline_hash": pipeline_hash,
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
    if "demo_ids" in flat:
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
        if body.get("columns"):
            lines += [""] + columns_card(store, r[0])
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
    lines += ["## Columns of this export", "", ", ".join(f"`{c}`" for c in frame.columns), ""]
    return "\n".join(lines)


def shaped_card(store: Store, run_id: str, frame: pd.DataFrame, shape: str) -> str:
    """The data card of an export per data type: ``datasets`` header, the run, its columns."""
    name, model = (store.query("SELECT coalesce(name, run_id), model FROM runs WHERE run_id = ?", [run_id]) or [(run_id, "?")])[0]
    lines = ["---", "configs:", "- config_name: default", "  data_files:", "  - split: train", "    path: data/train-*.parquet",
             "tags:", "- synthetic", "---", "", f"# {name}: {shape}", "",
             f"Exported from run `{run_id}` (model `{model}`) with Synthetic Data Studio as `{shape}` rows: "
             f"{len(frame)} row(s); {frame.attrs.get('skipped', 0)} sample(s) lacked a column this shape needs and are left out."
             + (f" {frame.attrs['ties']} pair(s) are left out as ties: the judge picked a different answer when the two"
                " were shown in the other order." if frame.attrs.get("ties") else ""), ""]
    lines += columns_card(store, run_id)
    lines += ["## Columns of this export", "", ", ".join(f"`{c}`" for c in frame.columns), ""]
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


# -- exports per data type (recipes with columns) ------------------------------------------
SHAPES = ("sft", "preference", "classification", "table")


def shapes_for_run(store: Store, run_id: str) -> list[str]:
    """The export shapes a run's recipe can fill: none for a recipe of one text (its curated rows
    are the export), ``table`` for any recipe with columns, ``sft`` with two text columns,
    ``preference`` with a pairwise column, ``classification`` with a structured or judge column."""
    from services.recipes.columns import OUTPUT, effective_columns
    from services.recipes.version_store import load_version

    rhash = store.scalar("SELECT recipe_hash FROM runs WHERE run_id = ?", [run_id])
    try:
        cols = effective_columns(load_version(store, rhash)) if rhash is not None else []
    except KeyError:  # a run imported or written without its recipe: its rows are the export
        return []
    if [c.name for c in cols] in ([OUTPUT], []):
        return []
    kinds = [c.kind for c in cols]
    out = ["sft"] if sum(k == "text" for k in kinds) >= 2 else []
    out += ["preference"] if "pairwise" in kinds else []
    out += ["classification"] if {"structured", "judge"} & set(kinds) else []
    return out + ["table"]


def column_rows(store: Store, sample_keys: list[str]) -> list[dict[str, Any]]:
    """Per output sample (in the order given): its condition and each column's value (parsed JSON
    for structured kinds) and the user message it was asked with. Failed columns are left out."""
    heads = store.query(
        "SELECT sample_key, run_id, item_key, sample_idx, condition, recipe_hash FROM samples"
        " WHERE sample_key IN (SELECT unnest(?::VARCHAR[])) AND step = 'output'", [sample_keys])
    by_key = {h[0]: h for h in heads}
    cells = store.query(
        "SELECT s.run_id, s.item_key, s.sample_idx, s.step, s.text, s.value, s.messages FROM samples s"
        " JOIN (SELECT run_id, item_key, sample_idx FROM samples WHERE sample_key IN (SELECT unnest(?::VARCHAR[]))) o"
        " USING (run_id, item_key, sample_idx)"
        " WHERE s.error IS NULL AND s.step NOT LIKE '%#%' AND s.step <> 'output'", [sample_keys])
    grouped: dict[tuple, dict[str, Any]] = {}
    for run_id, item_key, sample_idx, step, text, value, messages in cells:
        g = grouped.setdefault((run_id, item_key, sample_idx), {"columns": {}, "prompts": {}, "systems": {}})
        g["columns"][step] = json.loads(value) if value is not None else text
        msgs = json.loads(messages or "[]")
        if msgs:
            g["prompts"][step] = msgs[-1].get("content", "")
            g["systems"][step] = next((m["content"] for m in msgs if m.get("role") == "system"), None)
    out = []
    for k in sample_keys:
        h = by_key.get(k)
        if h is None:
            continue
        g = grouped.get((h[1], h[2], h[3]), {"columns": {}, "prompts": {}, "systems": {}})
        out.append({"sample_key": k, "run_id": h[1], "recipe_hash": h[5], "condition": dict(h[4] or {}), **g})
    return out


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def _first(rows: list[dict[str, Any]], test: Any) -> str | None:
    for r in rows:
        for name, v in r["columns"].items():
            if test(name, v):
                return name
    return None


def shaped_frame(store: Store, sample_keys: list[str], shape: str, *, prompt: str | None = None, response: str | None = None,
                 pairwise: str | None = None, label: str | None = None, text: str | None = None) -> pd.DataFrame:
    """The samples as one data type, every row loadable with ``datasets.load_dataset``:

    - ``sft``: ``messages`` (system of the response column if it had one, user = ``prompt`` column,
      assistant = ``response`` column; defaults: the first and last text columns);
    - ``preference``: ``prompt``, ``chosen``, ``rejected``, ``reason`` from a pairwise column; a pair
      whose two orders disagreed (a tie) is left out and counted in ``frame.attrs["ties"]``;
    - ``classification``: ``text`` (the annotated row's text, or a column), ``label`` (the voted field
      of a structured column) and ``confidence`` (the votes' agreement; empty with a single vote);
    - ``table``: the condition and every column, structured fields flattened as ``column_field``.
    A sample that lacks a column the shape needs is left out (see ``skipped`` in ``frame.attrs``)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown export shape {shape!r}: choose one of {', '.join(SHAPES)}")
    rows = column_rows(store, sample_keys)
    records: list[dict[str, Any]] = []
    skipped = ties = 0
    if shape == "sft":
        texts = [n for n, v in (rows[0]["columns"].items() if rows else []) if isinstance(v, str)]
        prompt = prompt or (texts[0] if texts else None)
        response = response or (texts[-1] if texts else None)
        for r in rows:
            c = r["columns"]
            if prompt not in c or response not in c:
                skipped += 1
                continue
            system = r["systems"].get(response)
            msgs = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": _text(c[prompt])}, {"role": "assistant", "content": _text(c[response])}]
            records.append({"messages": msgs, "sample_key": r["sample_key"]})
    elif shape == "preference":
        pairwise = pairwise or _first(rows, lambda n, v: isinstance(v, dict) and {"chosen", "rejected"} <= set(v))
        for r in rows:
            v = r["columns"].get(pairwise or "")
            if isinstance(v, dict) and v.get("consistent") is False:
                ties += 1
                continue
            if not isinstance(v, dict) or "chosen" not in v:
                skipped += 1
                continue
            records.append({"prompt": v.get("prompt", ""), "chosen": _text(v["chosen"]), "rejected": _text(v["rejected"]),
                            "reason": v.get("reason", ""), "sample_key": r["sample_key"]})
    elif shape == "classification":
        label = label or _first(rows, lambda n, v: isinstance(v, dict) and "label" in v) or \
            _first(rows, lambda n, v: isinstance(v, dict) and "agreement" in v)
        for r in rows:
            v = r["columns"].get(label or "")
            src = r["columns"].get(text) if text else r["condition"].get("text")
            if v is None or src is None:
                skipped += 1
                continue
            lab = v.get("label", next(iter(v.values()), None)) if isinstance(v, dict) else v
            conf = v.get("agreement") if isinstance(v, dict) else None
            records.append({"text": _text(src), "label": _text(lab), "confidence": conf,
                            "rationale": v.get("rationale") if isinstance(v, dict) else None, "sample_key": r["sample_key"]})
    else:
        for r in rows:
            rec: dict[str, Any] = {"sample_key": r["sample_key"], "run_id": r["run_id"]}
            rec.update({k: v for k, v in r["condition"].items()})
            for name, v in r["columns"].items():
                rec[name] = _text(v)
                if isinstance(v, dict):
                    rec.update({f"{name}_{f}": (fv if isinstance(fv, str | int | float | bool) or fv is None else _text(fv))
                                for f, fv in v.items()})
            records.append(rec)
    frame = pd.DataFrame.from_records(records)
    frame.attrs["skipped"] = skipped
    frame.attrs["ties"] = ties
    return frame


def columns_card(store: Store, run_id: str) -> list[str]:
    """Data-card lines on a run's columns: kind and prompt of each, and the agreement of the
    columns that voted (self-consistency), computed on the samples of this run."""
    from services.recipes.columns import effective_columns, templates_of
    from services.recipes.version_store import load_version

    rhash = store.scalar("SELECT recipe_hash FROM runs WHERE run_id = ?", [run_id])
    if rhash is None:
        return []
    recipe = load_version(store, rhash)
    cols = effective_columns(recipe)
    lines = ["## Columns", "", "| column | kind | prompt (template) | agreement of votes |", "| --- | --- | --- | --- |"]
    for c in cols:
        tpl = templates_of(c, recipe)
        src = " ".join((tpl.get("user_template") or tpl.get("expression") or "").split())[:160].replace("|", "\\|")
        agree = "n/a"
        if c.kind == "pairwise" and c.both_orders:
            kept, n = store.query(
                "SELECT count(*) FILTER (WHERE TRY_CAST(value ->> 'consistent' AS BOOLEAN)), count(*)"
                " FROM samples WHERE run_id = ? AND step = ? AND error IS NULL", [run_id, c.name])[0]
            if n:
                agree = f"both orders agree on {kept} of {n} pairs ({kept / n:.0%}); the {n - kept} others are ties"
        elif c.n > 1 and c.kind != "candidates":
            mean, unanimous, n = store.query(
                "SELECT avg(TRY_CAST(value ->> 'agreement' AS DOUBLE)), avg((TRY_CAST(value ->> 'agreement' AS DOUBLE) = 1)::INT), count(*)"
                " FROM samples WHERE run_id = ? AND step = ? AND error IS NULL", [run_id, c.name])[0]
            if n:
                agree = f"mean {mean:.3f}, unanimous {unanimous:.0%} of {n} samples ({c.n} votes each)"
        lines.append(f"| {c.name} | {c.kind}{f' ×{c.n}' if c.n > 1 else ''} | `{src}` | {agree} |")
    lines.append("")
    return lines
