"""Choosing runs: one label for a run everywhere (its name, model and number of samples)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st


def run_label(name: str, model: str, n_samples: int | None = None) -> str:
    return f"{name} · {model}" + (f" · {n_samples:,} samples" if n_samples is not None else "")


def _labels(runs: pd.DataFrame) -> dict[str, str]:
    return {r.run_id: run_label(r.name, r.model, int(r.n_samples)) for r in runs.itertuples()}


def pick_run(runs: pd.DataFrame, *, key: str, label: str = "Run") -> str:
    """One run (a frame with run_id, name, model, n_samples); the first with samples is the default."""
    labels = _labels(runs)
    with_samples = [i for i, n in enumerate(runs["n_samples"]) if n > 0]
    return st.selectbox(label, list(labels), index=with_samples[0] if with_samples else 0, format_func=labels.get, key=key)


def pick_runs(runs: pd.DataFrame, *, key: str, default: Sequence[str], label: str = "Runs") -> list[str]:
    """Several runs; ``default`` applies until the user changes the selection (the key keeps it)."""
    labels = _labels(runs)
    return st.multiselect(label, list(labels), default=[d for d in default if d in labels], format_func=labels.get, key=key)
