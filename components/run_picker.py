"""Choosing runs: one label for a run everywhere (its unique name, model and number of samples).

Two runs may share a name (an older database, a rename): their labels then carry the start time
(or the id), because a multiselect tells its chips apart by label only: two identical chips were
removed together by one ×.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from services.explore.items import run_names


def run_label(name: str, model: str, n_samples: int | None = None, *, preview: bool = False) -> str:
    return (f"{name} · {model}" + (f" · {n_samples:,} samples" if n_samples is not None else "")
            + (" · preview" if preview else ""))


def is_preview(runs: pd.DataFrame) -> pd.Series:
    """Runs that cover only the first items of their plan (an item limit)."""
    return runs["item_limit"].notna() if "item_limit" in runs else pd.Series(False, index=runs.index)


def _labels(runs: pd.DataFrame) -> dict[str, str]:
    names = run_names(runs)
    previews = dict(zip(runs["run_id"], is_preview(runs), strict=True))
    return {r.run_id: run_label(names[r.run_id], r.model, int(r.n_samples), preview=bool(previews[r.run_id]))
            for r in runs.itertuples()}


def pick_run(runs: pd.DataFrame, *, key: str, label: str = "Run") -> str:
    """One run (a frame with run_id, name, model, n_samples); the first with samples is the default."""
    labels = _labels(runs)
    with_samples = [i for i, n in enumerate(runs["n_samples"]) if n > 0]
    return st.selectbox(label, list(labels), index=with_samples[0] if with_samples else 0, format_func=labels.get, key=key)


def pick_runs(runs: pd.DataFrame, *, key: str, default: Sequence[str], label: str = "Runs") -> list[str]:
    """Several runs; ``default`` applies until the user changes the selection (the key keeps it).

    A value already under ``key`` (the user's, or one put back after a visit to another page)
    wins: passing a default as well would make Streamlit warn."""
    labels = _labels(runs)
    if key in st.session_state:
        st.session_state[key] = [r for r in st.session_state[key] if r in labels]
        return st.multiselect(label, list(labels), format_func=labels.get, key=key)
    return st.multiselect(label, list(labels), default=[d for d in default if d in labels], format_func=labels.get, key=key)
