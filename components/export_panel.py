"""Saving, applying and exporting one pipeline's result: versions, verdicts, curated downloads, data card.

The files are built only when a download is clicked (download buttons take callables), so an
idle page never serialises the dataset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from services.curation.compare import diversity_before_after
from services.curation.export import curated_frame, data_card, hf_zip, to_csv, to_jsonl, to_parquet
from services.curation.pipeline_store import applications, apply_pipeline, save_pipeline

if TYPE_CHECKING:
    from services.core.store import Store
    from services.curation.compare import Comparison
    from services.curation.pipeline import PipelineResult, ScoreCache


def save_apply_panel(store: Store, result: PipelineResult, run_id: str, *, prefix: str) -> None:
    """Save the pipeline as a version, apply it to the run (verdicts into filter_verdicts), list what was applied."""
    c1, c2 = st.columns(2)
    if c1.button("Save as a version", key=f"{prefix}_save"):
        st.success(f"Saved {save_pipeline(store, result.pipeline).label}.")
    if c2.button(f"Apply to this run ({result.n_kept} kept of {result.n})", key=f"{prefix}_apply", type="primary"):
        v = apply_pipeline(store, result)
        st.success(f"Applied {v.label}: verdicts are in table filter_verdicts (try it on the SQL page).")
    applied = applications(store, run_id)
    if len(applied):
        st.caption("Pipelines applied to this run")
        st.dataframe(applied, hide_index=True, width="stretch")


def export_panel(store: Store, comparison: Comparison, result: PipelineResult, cache: ScoreCache, *, prefix: str) -> None:
    """Download the samples ``result`` keeps as JSONL, CSV, Parquet or a Hugging Face folder with its data card."""
    name = result.pipeline.name
    st.subheader("Export the curated dataset")
    st.caption(f"{result.n_kept} samples kept by {name}, with their condition and provenance as columns; never an API key.")
    stem = f"{comparison.batch.run_id or 'curated'}-{name}".replace(" ", "_")

    def frame() -> pd.DataFrame:
        return curated_frame(store, result)

    def card(f: pd.DataFrame) -> str:
        return data_card(store, result, f, diversity_before_after(comparison, None, cache))

    e1, e2, e3, e4 = st.columns(4)
    e1.download_button("JSONL", lambda: to_jsonl(frame()), file_name=f"{stem}.jsonl", mime="application/jsonl", key=f"{prefix}_jsonl")
    e2.download_button("CSV", lambda: to_csv(frame()), file_name=f"{stem}.csv", mime="text/csv", key=f"{prefix}_csv")
    e3.download_button("Parquet", lambda: to_parquet(frame()), file_name=f"{stem}.parquet", key=f"{prefix}_parquet")
    e4.download_button("Hugging Face folder (zip)", lambda: hf_zip(f := frame(), card(f)), file_name=f"{stem}-hf.zip",
                       mime="application/zip", key=f"{prefix}_hf", help="Unzip, then datasets.load_dataset('<folder>')")
