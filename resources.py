"""Process-wide objects, built once per studio process by st.cache_resource factories.

Pages call these; services never do (they take the objects as arguments).
"""

from __future__ import annotations

import streamlit as st

from services.core.store import Store


@st.cache_resource(show_spinner=False)
def get_store() -> Store:
    """The studio's one database connection (path from $STUDIO_DB or data/studio.duckdb)."""
    return Store()


@st.cache_resource(show_spinner=False)
def get_map_jobs():
    """The background registry that builds Explore maps (embedding, UMAP, clusters) one at a time."""
    from services.explore.map_jobs import MapJobs

    return MapJobs()


@st.cache_resource(show_spinner=False, max_entries=4)
def get_embedder(spec: str):
    """An embedder by spec: 'full' (all-MiniLM-L6-v2 from its PyPI package), 'static' (model2vec
    distilled from it, cached on disk), 'fake', or any sentence-transformers name or path.
    Loading is lazy: the model loads on the first encode, inside the map job."""
    from services.explore.embedders import make_embedder

    return make_embedder(spec)


@st.cache_resource(show_spinner=False)
def get_job_manager():
    """The process's generation workers; on creation, runs left 'running' by a dead process become 'interrupted'."""
    from services.generation.runner import JobManager

    return JobManager(get_store())


@st.cache_resource(show_spinner=False)
def get_grow_jobs():
    """The process's grow loops (a thread per loop; each round runs through the job manager)."""
    from services.evaluation.grow_loop import GrowJobs

    return GrowJobs(get_store(), get_job_manager())


@st.cache_resource(show_spinner=False)
def get_local_server():
    """The built-in model server (llama.cpp + SmolLM2). Nothing starts here: it starts on first use."""
    from services.generation.local_server import LocalModelServer

    return LocalModelServer(log_dir=get_store().work_dir)


@st.cache_resource(show_spinner=False)
def get_batch_poller():
    """Polls open provider batches in a background thread and collects each one when it ends; on
    creation it picks up the batches the table holds open (a restarted studio carries on)."""
    from services.core import settings
    from services.generation.batch_poller import BatchPoller

    raw, warning = settings.get("STUDIO_BATCH_POLL_S"), None
    try:
        interval = max(0.05, float(raw))
    except ValueError:
        interval = float(settings.SETTINGS["STUDIO_BATCH_POLL_S"].default)
        warning = f"STUDIO_BATCH_POLL_S={raw!r} is not a number of seconds: batches are checked after {interval:.0f} s instead."
    return BatchPoller(get_store(), secrets=backend_secrets(), interval_s=interval, tick_s=min(5.0, interval),
                       warning=warning).start()


def backend_secrets() -> dict:
    """Keys from st.secrets (if a secrets file exists), read here and passed to services; never stored."""
    try:
        return {k: v for k, v in st.secrets.items() if isinstance(v, str)}
    except Exception:  # no secrets file: keys come from the environment
        return {}


@st.cache_resource(show_spinner=False)
def get_warmup():
    """Warms the embedder and UMAP/numba in a background thread, once per process (started by app.py)."""
    from services.explore.warmup import Warmup

    return Warmup(get_embedder("full"), delay_s=3.0).start()


@st.cache_resource(show_spinner=False)
def get_score_cache():
    """Filter step scores (MinHash pairs, cosine pairs, judge scores read...) per batch and parameters,
    shared by every session: a threshold slider re-thresholds instead of recomputing."""
    from services.curation.pipeline import ScoreCache

    return ScoreCache(max_entries=96)
