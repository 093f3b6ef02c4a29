"""The Explore page's inputs: what to map (runs or a dataset) and the map's settings."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from components.run_picker import is_preview, pick_runs
from services.core import settings
from services.core.errors import StudioError
from services.explore.embedders import make_embedder
from services.explore.embedding_store import last_rate
from services.explore.map_jobs import MapRequest
from services.explore.projection import LayoutParams

EMBEDDER_NAMES = {"full": "all-MiniLM-L6-v2 (full model)", "static": "static model2vec distillation"}
EMBEDDER_TRADEOFFS = (
    "**full**: the best neighbourhoods here, and the slowest on a CPU. **static**: tens of times faster, coarser "
    "neighbourhoods (`bench/embed_cache.py` measures both on this machine). **api:PRESET:MODEL[@URL]** "
    "(presets: openai, vllm, tei, infinity, ollama, custom): an OpenAI-compatible embeddings server, as fast as "
    "the server; the texts leave this machine, hosted models cost per token, and the key comes from the preset's "
    "environment variable. Vectors are cached per model either way: no text is embedded twice."
)


def embedder_speed(spec: str) -> str:
    """The speed the embedder reached in its last job in this process, in words ("" before one
    ran): never a figure measured elsewhere, machines differ by tens of times. Shown beside the
    choice, not in its options: a label that changes would make Streamlit forget the choice."""
    rate = last_rate(make_embedder(spec).name)  # cheap: models load on first encode
    return f"{rate:,.0f} texts/s in its last embedding job here" if rate else ""


def default_runs(runs: pd.DataFrame) -> list[str]:
    """A handful of runs are mapped together by default; with more, the newest alone. Previews
    (runs with an item limit) are never chosen for the user: they are samples of a full run."""
    ids = runs.loc[~is_preview(runs), "run_id"].tolist()
    return ids if len(ids) <= 5 else ids[:1]


def dataset_labels(datasets: pd.DataFrame) -> dict[str, str]:
    return {d.dataset_id: f"{d.name} · {d.n_rows} rows" for d in datasets.itertuples()}


def pick_source(runs: pd.DataFrame, datasets: pd.DataFrame) -> tuple[list[str], str | None]:
    """Runs or one dataset (whichever exist): returns (run ids, dataset id)."""
    kinds = [k for k, ok in (("Runs", not runs.empty), ("Dataset", not datasets.empty)) if ok]
    if st.radio("Map", kinds, horizontal=True, key="explore_kind") == "Runs":
        return pick_runs(runs, key="explore_runs", default=default_runs(runs)), None
    labels = dataset_labels(datasets)
    return [], st.selectbox("Dataset", list(labels), format_func=labels.get, key="explore_dataset")


@dataclass(frozen=True)
class MapSettings:
    embedder: str
    layout: LayoutParams
    min_cluster_size: int | None
    min_samples: int | None
    reference_id: str | None
    selection: str | None = None

    def request(self, run_ids: list[str], dataset_id: str | None) -> MapRequest:
        return MapRequest(run_ids=tuple(run_ids), dataset_id=dataset_id, reference_id=self.reference_id, layout=self.layout,
                          min_cluster_size=self.min_cluster_size, min_samples=self.min_samples, selection=self.selection)


def map_settings(datasets: pd.DataFrame) -> MapSettings:
    """The collapsed settings: embedder, UMAP, clusters and a reference dataset for coverage."""
    with st.expander("Map settings: embedder, UMAP, clusters, reference"):
        specs = list(dict.fromkeys([settings.get("STUDIO_EMBEDDER"), "full", "static"]))
        c1, c2 = st.columns(2)
        spec = c1.selectbox("Embedder", specs, format_func=lambda s: EMBEDDER_NAMES.get(s, s), key="explore_embedder")
        custom = c2.text_input("…or another sentence-transformers model (name or local path), or api:PRESET:MODEL",
                               key="explore_custom_model")
        chosen = custom.strip() or spec
        try:
            speed = embedder_speed(chosen)
        except StudioError as exc:  # an unknown preset, a missing key or model: say so, keep the list's choice
            c2.error(str(exc))
            chosen, speed = spec, embedder_speed(spec)
        if speed:
            c1.caption(speed)
        st.caption(EMBEDDER_TRADEOFFS)
        c1, c2, c3, c4, c5, c6 = st.columns(6)
        n_neighbors = c1.number_input("UMAP n_neighbors", 2, 200, 15, key="explore_nn")
        min_dist = c2.number_input("UMAP min_dist", 0.0, 1.0, 0.1, step=0.05, key="explore_md")
        seed = c3.number_input("UMAP seed", 0, 2**31 - 1, 42, key="explore_seed")
        min_cluster = c4.number_input("Min cluster size (0 = auto)", 0, 5000, 0, key="explore_mcs")
        min_samples = c5.number_input("HDBSCAN min samples (0 = auto)", 0, 5000, 0, key="explore_ms")
        selection = c6.selectbox("Cluster selection", ["auto", "eom", "leaf"], key="explore_sel",
                                 help="auto: tuned to the data (the map's caption says how). Setting any of the three "
                                      "clusters the 2-D map with your values (eom: excess of mass).")
        labels = dataset_labels(datasets)
        reference_id = st.selectbox("Reference dataset for coverage (real data)", [None, *labels], key="explore_reference",
                                    format_func=lambda d: "none" if d is None else labels[d])
    return MapSettings(
        embedder=chosen,
        layout=LayoutParams(n_neighbors=int(n_neighbors), min_dist=float(min_dist), seed=int(seed)),
        min_cluster_size=int(min_cluster) or None, min_samples=int(min_samples) or None, reference_id=reference_id,
        selection=None if selection == "auto" else selection,
    )
