"""Building a map in the background: load items, embed (cached), PCA preview, UMAP, clusters.

A ``MapJobs`` registry (one per process, built by resources.get_map_jobs) runs one map at a
time in a worker thread, so a click on any widget never kills it. The page submits a
``MapRequest`` and polls the returned ``MapJob`` (stage, fraction, preview) from an
``st.fragment(run_every=...)``; a finished job keeps its ``MapData`` in memory, so changing the
colour, the hover or the selection reads it without touching the database or recomputing.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from services.core.hashing import text_hash
from services.core.store import Store
from services.explore.cluster_tuning import ClusterChoice, auto_cluster, layout_choice
from services.explore.embedders import Embedder
from services.explore.embedding_store import embed_texts
from services.explore.items import ItemSet, combine, load_dataset, load_runs, usable
from services.explore.projection import ClusterParams, LayoutParams, cluster, default_min_cluster_size, pca_layout, project

EMBED_CHUNK = 512  # texts per cache round-trip at least; the preview refreshes after each
PREVIEW_FIT = 5_000  # the preview's PCA axes come from this many points at most


@dataclass(frozen=True)
class MapRequest:
    """What to map: runs and/or a dataset, optionally a reference dataset for coverage."""

    run_ids: tuple[str, ...] = ()
    dataset_id: str | None = None
    reference_id: str | None = None
    layout: LayoutParams = LayoutParams()
    min_cluster_size: int | None = None  # None (with min_samples and selection None): tuned to the data
    min_samples: int | None = None
    selection: str | None = None  # HDBSCAN's selection method when set by the user ("eom" or "leaf")

    def cluster_params(self, n: int) -> ClusterParams | None:
        """The user's clustering parameters (on the 2-D layout), or None for the tuned default."""
        if self.min_cluster_size is None and self.min_samples is None and self.selection is None:
            return None
        return ClusterParams(min_cluster_size=self.min_cluster_size or default_min_cluster_size(n),
                             min_samples=self.min_samples, selection=self.selection or "eom")

    def key(self, embedder_name: str, version: str) -> str:
        body = json.dumps([asdict(self), embedder_name, version], sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:20]


@dataclass
class MapData:
    """Everything the Explore page shows for one map, aligned row by row with ``items.frame``."""

    items: ItemSet
    vectors: np.ndarray
    pca: np.ndarray
    xy: np.ndarray | None = None  # UMAP layout once computed
    labels: np.ndarray | None = None
    projection_id: str | None = None
    clustering_id: str | None = None
    model: str = ""
    notes: list[str] = field(default_factory=list)
    cluster_params: ClusterParams | None = None
    cluster_choice: ClusterChoice | None = None  # what made the clusters, and why (the map's caption)

    @property
    def layout(self) -> np.ndarray:
        return self.xy if self.xy is not None else self.pca


@dataclass
class MapJob:
    key: str
    stage: str = "queued"
    done: int = 0
    total: int = 0
    message: str = ""
    preview: MapData | None = None
    result: MapData | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    _event: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def running(self) -> bool:
        return not self._event.is_set()

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def report(self, stage: str, done: int = 0, total: int = 0, message: str = "") -> None:
        self.stage, self.done, self.total, self.message = stage, done, total, message


class MapJobs:
    """A small registry of map jobs: one worker thread, results kept for the latest ``keep`` maps."""

    def __init__(self, keep: int = 6) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="map-job")
        self._jobs: OrderedDict[str, MapJob] = OrderedDict()
        self._lock = threading.Lock()
        self.keep = keep

    def get(self, key: str) -> MapJob | None:
        with self._lock:
            return self._jobs.get(key)

    def submit(self, key: str, fn: Callable[[MapJob], MapData]) -> MapJob:
        """Start ``fn(job)`` unless a job with this key exists (running or finished without error)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.error is None:
                self._jobs.move_to_end(key)
                return job
            job = MapJob(key=key)
            self._jobs[key] = job
            self._evict()
        self._pool.submit(self._run, job, fn)
        return job

    def _evict(self) -> None:
        finished = [k for k, j in self._jobs.items() if not j.running]
        while len(self._jobs) > self.keep and finished:
            self._jobs.pop(finished.pop(0), None)

    @staticmethod
    def _run(job: MapJob, fn: Callable[[MapJob], MapData]) -> None:
        try:
            job.result = fn(job)
            job.report("done", job.total, job.total)
        except Exception as exc:  # shown to the user as a message, never a traceback
            job.error = f"{type(exc).__name__}: {exc}"
            job.report("failed", message=job.error)
        finally:
            job.finished = time.monotonic()
            job._event.set()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# -- the map pipeline ----------------------------------------------------------------------


def load_items(store: Store, request: MapRequest) -> tuple[ItemSet, list[str]]:
    """The items of a request (empty texts removed), and notes on what was left out."""
    parts = []
    if request.run_ids:
        parts.append(load_runs(store, list(request.run_ids)))
    if request.dataset_id:
        parts.append(load_dataset(store, request.dataset_id))
    if request.reference_id and request.reference_id != request.dataset_id:
        ref = load_dataset(store, request.reference_id)
        ref.frame["source"] = "reference:" + ref.frame["source"].astype(str).str.removeprefix("dataset:")
        parts.append(ref)
    checked = usable(combine(*parts))
    return checked.items, checked.notes


def source_version(store: Store, request: MapRequest) -> str:
    """A cheap fingerprint of the request's rows (counts and newest timestamps, reviewers' edits
    and run names included), so a run that grows or is edited gets a new map while an unchanged
    one reuses its job."""
    runs = list(request.run_ids)
    row = store.query(
        """SELECT (SELECT count(*) || '/' || coalesce(max(created_at)::VARCHAR, '') FROM samples
                   WHERE run_id IN (SELECT unnest(?::VARCHAR[])) AND step = 'output'),
                  (SELECT count(*) || '/' || coalesce(max(e.edited_at)::VARCHAR, '') FROM sample_edits e
                   JOIN samples s ON s.sample_key = e.sample_key WHERE s.run_id IN (SELECT unnest(?::VARCHAR[]))),
                  (SELECT string_agg(coalesce(name, ''), '/' ORDER BY run_id) FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))),
                  (SELECT count(*) FROM dataset_rows WHERE dataset_id IN (SELECT unnest(?::VARCHAR[])))""",
        [runs, runs, runs, [d for d in (request.dataset_id, request.reference_id) if d]],
    )[0]
    return "|".join(str(v) for v in row)


def build_map(store: Store, embedder: Embedder, request: MapRequest, job: MapJob | None = None) -> MapData:
    """Load, embed (cache first), PCA preview, UMAP and HDBSCAN (cached). Reports to ``job``."""
    job = job or MapJob(key="inline")
    job.report("loading")
    items, notes = load_items(store, request)
    texts = items.texts
    n = len(texts)
    hashes = [text_hash(t) for t in texts]
    vectors = np.zeros((0, 0), dtype=np.float32)
    # Chunks grow with the map (about 50 progress steps); vectors fill one array (no re-concatenation),
    # and the preview's PCA axes are fitted on a sample, so previews stay cheap at 10^5-10^6 points.
    # A preview is redrawn only once nine times its own cost has passed: with a fast embedder one
    # per chunk made previews most of the embedding step (bench/scale.py), with a slow one it is
    # still redrawn after every chunk.
    step = max(EMBED_CHUNK, n // 50, int(getattr(embedder, "write_batch", 0)))  # one cache write per chunk at least
    next_preview = 0.0
    job.report("embedding", 0, n, f"embedding {n} texts with {embedder.name}")
    for start in range(0, n, step):
        base = start

        def progress(done: int, total: int, base: int = base) -> None:
            job.report("embedding", base + done, n, f"embedding {n} texts with {embedder.name}")

        chunk = embed_texts(store, embedder, texts[start : start + step], progress=progress, hashes=hashes[start : start + step])
        if start == 0:
            vectors = np.empty((n, chunk.shape[1]), dtype=np.float32)
        vectors[start : start + len(chunk)] = chunk
        if start + len(chunk) < n and time.perf_counter() >= next_preview:  # the last preview is the full PCA below
            t0 = time.perf_counter()
            got = vectors[: start + len(chunk)]
            sub = replace(items, frame=items.frame.iloc[: len(got)])
            job.preview = MapData(items=sub, vectors=got, pca=pca_layout(got, fit_max=PREVIEW_FIT), model=embedder.name, notes=notes)
            next_preview = time.perf_counter() + 9 * (time.perf_counter() - t0)
    # axes from a sample here too: the PCA is only the layout shown until UMAP is done
    data = MapData(items=items, vectors=vectors, pca=pca_layout(vectors, fit_max=PREVIEW_FIT), model=embedder.name, notes=list(notes))
    job.preview = data
    if n < 3:
        data.notes.append(f"{n} text(s): too few for a map, clusters or most metrics (need at least 3).")
        return data
    finish_map(store, data, hashes, request, job)
    if n < 10:
        data.notes.append(f"{n} texts: the layout is a PCA projection (UMAP needs at least 10 points).")
    return data


def finish_map(store: Store, data: MapData, hashes: list[str], request: MapRequest, job: MapJob) -> MapData:
    """UMAP and clusters (both cached) of embedded items: the same steps and defaults for every
    map (Explore, Evaluate, Compare Filters' map of a batch)."""
    ids, n = data.items.ids, len(data.items)
    job.report("umap", n, n, f"UMAP on {n} points")
    data.projection_id, data.xy = project(store, data.vectors, ids, hashes, data.model, "umap", request.layout)
    job.report("clusters", n, n, "HDBSCAN clusters")
    params = request.cluster_params(n)
    if params is None:
        data.clustering_id, data.labels, data.cluster_choice = auto_cluster(store, data.projection_id, data.vectors, data.xy,
                                                                             ids, request.layout)
    else:
        data.clustering_id, data.labels = cluster(store, data.projection_id, data.xy, ids, params)
        data.cluster_choice = layout_choice(params, data.labels)
    data.cluster_params = data.cluster_choice.params
    return data


def start_map(jobs: MapJobs, store: Store, embedder: Embedder, request: MapRequest) -> MapJob:
    """Submit (or find) the job for this request, keyed by its parameters and data version."""
    key = request.key(embedder.name, source_version(store, request))
    return jobs.submit(key, lambda job: build_map(store, embedder, request, job))
