"""Headless curation: run a filter pipeline (YAML) over a run and export what it keeps.

    python -m services curate --run RUN_ID --pipeline data/pipelines/basic_curation.yaml --out curated/
    python -m services curate --run RUN_ID --pipeline p.yaml --out curated.jsonl --format jsonl

The same services as the Compare Filters page: verdicts and the pipeline version are stored in
the database, embeddings come from the cache (missing ones are embedded here), and the
Hugging Face layout gets a data card.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from services.core.store import Store, StoreLockedError

FORMATS = ("hf", "jsonl", "csv", "parquet")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curate", help="run a filter pipeline over a run and export the curated dataset")
    p.add_argument("--run", required=True, help="run id")
    p.add_argument("--pipeline", type=Path, required=True, help="pipeline YAML (name:, steps: [{kind: ...}])")
    p.add_argument("--out", type=Path, required=True, help="output folder (hf) or file")
    p.add_argument("--format", choices=FORMATS, default="hf")
    p.add_argument("--embedder", default="full", help="for semantic dedup: full (default), static, or a model path")
    p.add_argument("--db", type=Path, help="database file (default: $STUDIO_DB or data/studio.duckdb)")


def cmd_curate(args: argparse.Namespace) -> int:
    from services.curation import export
    from services.curation.pipeline import Pipeline, PipelineError, load_batch, run_pipeline
    from services.curation.pipeline_store import apply_pipeline
    from services.curation.step_base import FilterContext
    from services.explore.embedders import make_embedder

    try:
        data = yaml.safe_load(args.pipeline.read_text(encoding="utf-8"))
        pipeline = Pipeline.parse(data if isinstance(data, dict) else {})
    except OSError as exc:
        print(f"Cannot read {args.pipeline}: {exc.strerror}", file=sys.stderr)
        return 2
    except yaml.YAMLError as exc:
        print(f"{args.pipeline}: malformed YAML: {exc}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        print(f"{args.pipeline}: {exc}", file=sys.stderr)
        return 2
    try:
        store = Store(args.db)
    except StoreLockedError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        batch = load_batch(store, args.run)
        if not len(batch):
            print(f"Run {args.run} has no generated samples in {store.path}.", file=sys.stderr)
            return 2
        ctx = FilterContext(store=store, embedder=make_embedder(args.embedder))
        result = run_pipeline(pipeline, batch, ctx)
        version = apply_pipeline(store, result)
        for s in result.steps:
            print(f"{s.name}: {s.n_in} in, {s.dropped} dropped" + (f" ({s.note})" if s.note else ""))
        frame = export.curated_frame(store, result)
        if args.format == "hf":
            path = export.write_hf_folder(args.out, frame, export.data_card(store, result, frame))
        else:
            writer = {"jsonl": export.to_jsonl, "csv": export.to_csv, "parquet": export.to_parquet}[args.format]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_bytes(writer(frame))
            path = args.out
        print(f"kept {result.n_kept} of {result.n} samples (pipeline {version.name} v{version.version}) -> {path}")
        return 0
    finally:
        store.close()
