"""Evaluate: what to compare (two or more runs, or runs and a dataset) and the report's options."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from components.explore_controls import dataset_labels
from components.run_picker import is_preview, pick_runs

SHIPPED = "shipped"
NO_REFERENCE = "none"


def pick_sets(runs: pd.DataFrame, datasets: pd.DataFrame) -> tuple[list[str], str | None]:
    """Runs (default: the two newest full runs) and, optionally, one dataset as another set."""
    full = runs.loc[~is_preview(runs), "run_id"].tolist()
    run_ids = pick_runs(runs, key="evaluate_runs", default=full[:2], label="Runs to compare")
    labels = {"": "(no dataset)", **dataset_labels(datasets)}
    dataset_id = st.selectbox("…and a dataset as another set", list(labels), format_func=labels.get, key="evaluate_dataset",
                              disabled=datasets.empty) if not datasets.empty else ""
    return run_ids, dataset_id or None


@dataclass(frozen=True)
class ReportOptions:
    label_column: str | None        # frame column of the label dimension
    reference: str                  # SHIPPED, NO_REFERENCE or a dataset id
    reference_label: str | None     # the dataset's label column (a user's name)


def report_options(dimensions: dict[str, str], datasets: pd.DataFrame) -> ReportOptions:
    """``dimensions``: frame column -> the name users gave it."""
    c1, c2, c3 = st.columns(3)
    cols = ["", *dimensions]
    guess = next((i for i, c in enumerate(cols) if c and dimensions[c].lower() in ("label", "sentiment", "class", "topic")),
                 1 if len(cols) > 1 else 0)
    label = c1.selectbox("Label dimension", cols, index=guess, key="evaluate_label",
                         format_func=lambda c: dimensions.get(c, "(none)"),
                         help="The condition a classifier should recover: label noise and train-on-synthetic use it.")
    refs = {SHIPPED: "Yelp labelled sentences (shipped)", **dataset_labels(datasets), NO_REFERENCE: "(no reference)"}
    ref = c2.selectbox("Real labelled data to test on", list(refs), format_func=refs.get, key="evaluate_reference")
    ref_label = None
    if ref not in (SHIPPED, NO_REFERENCE):
        ref_label = c3.text_input("Its label column", value="label", key="evaluate_reference_label")
    return ReportOptions(label or None, ref, ref_label)
