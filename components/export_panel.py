"""Saving, applying and exporting one pipeline's result: versions, verdicts, curated downloads, data card.

A run whose recipe has columns can also be exported as one data type (``shaped_frame``: SFT
messages, preference pairs, classification, a flat table), with that shape's data card.

The files are built only when a download is clicked (download buttons take callables), so an
idle page never serialises the dataset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from services.curation.compare import diversity_before_after
from services.curation.export import (
    curated_frame,
    data_card,
    hf_zip,
    shaped_card,
    shaped_frame,
    shapes_for_run,
    to_csv,
    to_jsonl,
    to_parquet,
)
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


SHAPE_HELP = {
    "curated": "Every kept sample with its condition and provenance as columns.",
    "sft": "Chat messages: the first text column as the user turn, the last as the assistant's.",
    "preference": "prompt, chosen, rejected and the judge's reason, from the pairwise column; ties are left out.",
    "classification": "text, label and confidence (the votes' agreement) from the structured or judge column.",
    "table": "One row per sample: the condition and every column, structured fields flattened as column_field.",
}


def export_panel(store: Store, comparison: Comparison, result: PipelineResult, cache: ScoreCache, *, prefix: str) -> None:
    """Download the samples ``result`` keeps as JSONL, CSV, Parquet or a Hugging Face folder with its
    data card: as curated rows, or as one data type when the run's recipe has columns."""
    name = result.pipeline.name
    run_id = comparison.batch.run_id
    st.subheader("Export the curated dataset")
    shapes = shapes_for_run(store, run_id) if run_id else []
    shape = "curated"
    if shapes:
        shape = st.radio("Shape", ["curated", *shapes], horizontal=True, key=f"{prefix}_shape",
                         format_func=lambda s: "curated rows" if s == "curated" else s,
                         help="\n\n".join(f"**{k}**: {v}" for k, v in SHAPE_HELP.items() if k == "curated" or k in shapes))
    stem = f"{run_id or 'curated'}-{name}".replace(" ", "_") + ("" if shape == "curated" else f"-{shape}")
    if shape == "curated":
        st.caption(f"{result.n_kept} samples kept by {name}, with their condition and provenance as columns; never an API key.")

        def frame() -> pd.DataFrame:
            return curated_frame(store, result)

        def card(f: pd.DataFrame) -> str:
            return data_card(store, result, f, diversity_before_after(comparison, None, cache))
    else:
        kept = [k for k, ok in zip(result.batch.keys, result.kept.tolist(), strict=True) if ok]
        shaped = shaped_frame(store, kept, shape)
        left = [f"{shaped.attrs['skipped']} lacking a column this shape needs"] if shaped.attrs.get("skipped") else []
        left += [f"{shaped.attrs['ties']} tie(s): the judge picked differently when the answers were swapped"] if shaped.attrs.get("ties") else []
        st.caption(f"{len(shaped)} {shape} row(s) from the {result.n_kept} samples kept by {name}"
                   + (f"; left out: {'; '.join(left)}" if left else "") + ". " + SHAPE_HELP[shape])
        shaped_text = shaped_card(store, run_id, shaped, shape)
        with st.expander(f"Data card of this {shape} export"):
            st.code(shaped_text, language="markdown", wrap_lines=True)  # shown as text: prompts are user input

        def frame() -> pd.DataFrame:
            return shaped

        def card(f: pd.DataFrame) -> str:
            return shaped_text

    e1, e2, e3, e4 = st.columns(4)
    e1.download_button("JSONL", lambda: to_jsonl(frame()), file_name=f"{stem}.jsonl", mime="application/jsonl", key=f"{prefix}_jsonl")
    e2.download_button("CSV", lambda: to_csv(frame()), file_name=f"{stem}.csv", mime="text/csv", key=f"{prefix}_csv")
    e3.download_button("Parquet", lambda: to_parquet(frame()), file_name=f"{stem}.parquet", key=f"{prefix}_parquet")
    e4.download_button("Hugging Face folder (zip)", lambda: hf_zip(f := frame(), card(f)), file_name=f"{stem}-hf.zip",
                       mime="application/zip", key=f"{prefix}_hf", help="Unzip, then datasets.load_dataset('<folder>')")
