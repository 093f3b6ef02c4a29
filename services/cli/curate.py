"""Headless curation: run a filter pipeline (YAML) over a run and export what it keeps.

    python -m services curate --run RUN_ID --pipeline data/pipelines/basic_curation.yaml --out curated/
    python -m services curate --run RUN_ID --pipeline p.yaml --out curated.jsonl --format jsonl
    python -m services curate --run RUN_ID --pipeline judged.yaml --out c/ --backend openai --model gpt-4o-mini

The same services as the Compare Filters page: verdicts and the pipeline version are stored in
the database, embeddings come from the cache (missing ones are embedded here), and the
Hugging Face layout gets a data card. An LLM-judge step first scores the samples it has no score
for (with the backend options of ``run``; the key comes from the environment, never a flag), then
filters on the stored scores; ``--no-judge`` filters on what is stored already and sends nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from services.cli.common import open_store
from services.core.store import Store
from services.generation.presets import LOCAL, PRESETS

FORMATS = ("hf", "jsonl", "csv", "parquet")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curate", help="run a filter pipeline over a run and export the curated dataset")
    p.add_argument("--run", required=True, help="run id")
    p.add_argument("--pipeline", type=Path, required=True, help="pipeline YAML (name:, steps: [{kind: ...}])")
    p.add_argument("--out", type=Path, required=True, help="output folder (hf) or file")
    p.add_argument("--format", choices=FORMATS, default="hf")
    p.add_argument("--shape", choices=("sft", "preference", "classification", "table"),
                   help="export the kept samples of a column recipe as this data type instead of the curated table")
    p.add_argument("--embedder", default="full", help="for semantic dedup: full (default), static, or a model path")
    p.add_argument("--db", type=Path, help="database file (default: $STUDIO_DB or data/studio.duckdb)")
    j = p.add_argument_group("LLM judge", "the backend that scores a judge step's unscored samples (as for run)")
    j.add_argument("--backend", choices=sorted(PRESETS), help="backend preset (default: the preset in the step's judge label, else local)")
    j.add_argument("--base-url", help="override the preset's base_url")
    j.add_argument("--model", help="model name (default: the model in the step's judge label, else the preset's)")
    j.add_argument("--api-key-env", help="environment variable holding the key (default: the preset's)")
    j.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    j.add_argument("--max-retries", type=int, default=2)
    j.add_argument("--judge-concurrency", type=int, default=4, help="judge requests in flight at once")
    j.add_argument("--no-judge", action="store_true", help="send nothing: filter on the judge scores stored already")


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
    store = open_store(args.db)
    if store is None:
        return 2
    try:
        batch = load_batch(store, args.run)
        if not len(batch):
            print(f"Run {args.run} has no generated samples in {store.path}.", file=sys.stderr)
            return 2
        if not args.no_judge and not _score_judge_steps(store, pipeline, batch.texts, args):
            return 2
        # Judge scores are in the store now: the pipeline reads them (ctx.judge unset: nothing more is sent).
        ctx = FilterContext(store=store, embedder=make_embedder(args.embedder))
        result = run_pipeline(pipeline, batch, ctx)
        version = apply_pipeline(store, result)
        for s in result.steps:
            print(f"{s.name}: {s.n_in} in, {s.dropped} dropped" + (f" ({s.note})" if s.note else ""))
        frame = export.curated_frame(store, result)
        card = None
        if args.shape:
            frame = export.shaped_frame(store, list(frame["sample_key"]), args.shape)
            card = export.shaped_card(store, args.run, frame, args.shape)
        if args.format == "hf":
            path = export.write_hf_folder(args.out, frame, card or export.data_card(store, result, frame))
        else:
            writer = {"jsonl": export.to_jsonl, "csv": export.to_csv, "parquet": export.to_parquet}[args.format]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_bytes(writer(frame))
            path = args.out
        if args.shape and (frame.attrs.get("skipped") or frame.attrs.get("ties")):
            print(f"{args.shape}: {len(frame)} row(s); left out: {frame.attrs.get('skipped', 0)} lacking a column it needs, "
                  f"{frame.attrs.get('ties', 0)} tie(s) (the judge's two orders disagreed)")
        print(f"kept {result.n_kept} of {result.n} samples (pipeline {version.name} v{version.version}) -> {path}")
        return 0
    finally:
        store.close()


def _judge_target(label: str, args: argparse.Namespace) -> tuple[str, str]:
    """(preset, model) for a judge step: the flags, else the step's 'preset/model' label."""
    preset_part, _, model_part = label.partition("/")
    preset = args.backend or (preset_part if preset_part in PRESETS and model_part else LOCAL)
    model = args.model or (model_part if preset_part == preset and model_part else PRESETS[preset].model)
    return preset, model


def _score_judge_steps(store: Store, pipeline: Any, texts: list[str], args: argparse.Namespace) -> bool:
    """Score what each judge step (rubric, label) has not scored yet; False (said on stderr) when
    the backend could not be reached at all. Partial failures stay unscored: run again to retry."""
    from services.curation.judge_step import judge_backend_factory, score_missing
    from services.generation.local_server import LocalModelServer

    targets = list(dict.fromkeys((s.rubric, s.judge_model) for s in pipeline.steps if s.kind == "judge"))
    local = None
    try:
        for rubric, label in targets:
            preset, model = _judge_target(label, args)
            if preset == LOCAL and local is None:
                local = LocalModelServer(log_dir=store.work_dir)
            key = os.environ.get(args.api_key_env) if args.api_key_env else None
            factory = judge_backend_factory(preset, model, base_url=args.base_url, api_key=key, local=local,
                                            timeout_s=args.timeout, max_retries=args.max_retries)
            try:
                report = score_missing(store, factory, label, rubric, texts, concurrency=args.judge_concurrency)
            except Exception as exc:  # the built-in server did not start, a wrong URL: a sentence, not a traceback
                print(f"judge {label}: could not score ({type(exc).__name__}: {exc})", file=sys.stderr)
                return False
            print(f"judge {label} ({preset}/{model}): {report.summary()}", flush=True)
            if report.failed:
                print(f"judge {label}: {report.failed} sample(s) left unscored; run again to retry them.", file=sys.stderr)
    finally:
        if local is not None:
            local.stop()
    return True
