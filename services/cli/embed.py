"""``python -m services embed`` and ``python -m services map``: the Explore page's services, headless.

    python -m services embed --dataset ds_0123abcd --embedder static
    python -m services embed --run run-0123abcd --backend vllm --model BAAI/bge-small-en-v1.5
    python -m services map --dataset ds_0123abcd --embedder full

``embed`` fills the embedding cache (resumable: a second call after a crash sends only what is
missing); ``map`` builds the same map the page builds (``explore.map_jobs.build_map``: embeddings,
UMAP, HDBSCAN, cached), so the page then opens it at once. The key of a remote embedder comes from
the environment (the preset's variable), never from a flag.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.core.errors import StudioError
from services.core.store import Store
from services.explore.embedders import Embedder, make_embedder
from services.explore.embedding_api import EMBEDDING_PRESETS, ApiEmbedder, forecast
from services.explore.embedding_store import cached_count, embed_texts, missing_texts
from services.explore.map_jobs import MapJob, MapRequest, build_map, load_items
from services.generation.run_store import get_price


def add_parsers(sub: argparse._SubParsersAction) -> None:
    for name, what in (("embed", "embed a run's or a dataset's texts into the cache"),
                       ("map", "build the Explore map of runs or a dataset (embed, UMAP, clusters)")):
        p = sub.add_parser(name, help=what)
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument("--run", action="append", dest="runs", metavar="RUN_ID", help="a run (repeat for several)")
        src.add_argument("--dataset", metavar="DATASET_ID")
        p.add_argument("--embedder", default="full", help="local embedder: full, static, or a sentence-transformers name/path")
        p.add_argument("--backend", choices=sorted(EMBEDDING_PRESETS), help="an OpenAI-compatible embeddings server instead")
        p.add_argument("--base-url", help="override the preset's base_url")
        p.add_argument("--model", help="the server's embedding model (default: the preset's)")
        p.add_argument("--batch-size", type=int, default=64, help="texts per request (remote backends)")
        p.add_argument("--concurrency", type=int, default=4, help="requests in flight (remote backends)")
        p.add_argument("--db", type=Path, help="database file (default: $STUDIO_DB or data/studio.duckdb)")
        p.add_argument("--quiet", action="store_true")


def _embedder(args: argparse.Namespace) -> Embedder:
    if args.backend:
        return ApiEmbedder.from_preset(args.backend, model=args.model or "", base_url=args.base_url or "",
                                       batch_size=args.batch_size, concurrency=args.concurrency)
    return make_embedder(args.embedder)


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)


def cmd_embed(args: argparse.Namespace) -> int:
    try:
        store = Store(args.db) if args.db else Store()
        embedder = _embedder(args)
        request = MapRequest(run_ids=tuple(args.runs or ()), dataset_id=args.dataset)
        items, notes = load_items(store, request)
        texts = items.texts
        for note in notes:
            _say(args, note)
        if args.command == "map":
            return _map(store, embedder, request, args)
        cached = cached_count(store, embedder.name, texts)
        distinct = len(set(texts))
        if isinstance(embedder, ApiEmbedder):
            todo = missing_texts(store, embedder.name, texts)
            price = get_price(store, embedder.model)
            f = forecast(todo, price.input_per_mtok if price else None, embedder.batch_size)
            cost = f"${f.cost_usd:.4f}" if f.cost_usd is not None else "unknown (no price for this model)"
            _say(args, f"forecast for the {f.texts:,} texts to send: ~{f.est_tokens:,} tokens (estimated from characters), "
                       f"{f.requests:,} requests, cost {cost}")
        _say(args, f"{len(texts):,} texts, {distinct:,} distinct, {cached:,} already cached for {embedder.name}")
        from tqdm import tqdm

        with tqdm(total=len(texts), unit="text", disable=args.quiet, file=sys.stderr) as bar:
            def progress(done: int, total: int) -> None:
                bar.n = done
                bar.refresh()

            embed_texts(store, embedder, texts, progress=progress)
        if isinstance(embedder, ApiEmbedder):
            _say(args, f"server-reported tokens: {embedder.tokens_used:,} in {embedder.requests_sent:,} requests")
        print(f"embedded: {len(texts)} texts with {embedder.name}")
        store.close()
        return 0
    except StudioError as exc:
        print(f"{exc.title}: {exc}", file=sys.stderr)
        return 1


def _map(store: Store, embedder: Embedder, request: MapRequest, args: argparse.Namespace) -> int:
    class _Printing(MapJob):
        def report(self, stage: str, done: int = 0, total: int = 0, message: str = "") -> None:
            super().report(stage, done, total, message)
            _say(args, f"{stage}: {message} {f'{done:,}/{total:,}' if total else ''}".rstrip())

    data = build_map(store, embedder, request, _Printing(key="cli"))
    n_clusters = len({int(x) for x in data.labels if x >= 0}) if data.labels is not None else 0
    for note in data.notes:
        _say(args, note)
    if data.cluster_choice is not None:
        _say(args, data.cluster_choice.caption())
    print(f"map: {len(data.items.texts)} points, {n_clusters} clusters, projection {data.projection_id}")
    store.close()
    return 0
