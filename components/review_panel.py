"""Human review of a comparison's samples: one by one (keep, drop, edit) or a cluster at a time,
and the samples two pipelines disagree on.

Decisions and edits are written through services.curation.review_store; which samples are in the
review set is services.curation.review_sets' choice. Texts are shown as plain text only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from components.compare_view import sample_view
from components.flash import flash, show_flash
from services.curation.review_sets import (
    NOISE,
    clamp_position,
    cluster_labels,
    clusters_in,
    in_cluster,
    review_set,
    review_sources,
    sample_verdicts,
)
from services.curation.review_store import edit_sample, review_decisions, sample_history, set_review

if TYPE_CHECKING:
    import numpy as np

    from services.core.store import Store
    from services.curation.compare import Comparison

ONE_BY_ONE, BY_CLUSTER = "One by one", "A cluster at a time"


def review_panel(store: Store, comparison: Comparison, clusters: dict[str, int] | None, *, prefix: str) -> str:
    """The review tab; returns the chosen mode. Widget keys are ``{prefix}_review_mode``, ``{prefix}_keep`` …"""
    show_flash(f"{prefix}_review_flash")
    st.caption("Mark samples keep or drop (a 'Human review' step then keeps only what you kept); "
               "an edit is stored as a new version, the original is kept.")
    mode = st.radio("Review", [ONE_BY_ONE, BY_CLUSTER], horizontal=True, key=f"{prefix}_review_mode")
    source = st.selectbox("Samples", review_sources(comparison.names), key=f"{prefix}_review_source")
    decisions = review_decisions(store, comparison.batch.keys)
    chosen = review_set(comparison, source, decisions)
    if mode == ONE_BY_ONE:
        one_by_one(store, comparison, chosen, decisions, prefix=prefix)
    elif clusters is None:
        st.info("Turn on 'Map and clusters' in the sidebar to review a cluster at a time.")
    else:
        cluster_review(store, comparison, chosen, decisions, clusters, prefix=prefix)
    return mode


def _go(pos_key: str, position: int) -> None:
    st.session_state[pos_key] = position
    st.rerun()


def one_by_one(store: Store, comparison: Comparison, chosen: np.ndarray, decisions: dict[str, str], *, prefix: str) -> None:
    """One sample of the set with every pipeline's verdict, keep / drop / previous / next, and an edit box."""
    if not len(chosen):
        st.info("No samples in this selection.")
        return
    batch, pos_key = comparison.batch, f"{prefix}_review_pos"
    at = clamp_position(st.session_state.get(pos_key, 0), len(chosen))
    j = int(chosen[at])
    key = batch.keys[j]
    st.markdown(f"**Sample {at + 1} of {len(chosen)}** · `{key}` · decision: **{decisions.get(key, 'not reviewed')}**")
    sample_view(batch.texts[j], batch.conditions[j], sample_verdicts(comparison, j))
    last = len(chosen) - 1
    b1, b2, b3, b4 = st.columns(4)
    if b1.button("Previous", key=f"{prefix}_prev", disabled=at == 0, width="stretch"):
        _go(pos_key, at - 1)
    for col, decision, kind in ((b2, "keep", "primary"), (b3, "drop", "secondary")):
        if col.button(decision.title(), key=f"{prefix}_{decision}", type=kind, width="stretch"):
            set_review(store, [key], decision)
            _go(pos_key, min(at + 1, last))  # on to the next sample once decided
    if b4.button("Next", key=f"{prefix}_next", disabled=at >= last, width="stretch"):
        _go(pos_key, at + 1)
    with st.expander("Edit this sample"):
        new_text = st.text_area("Text", value=batch.texts[j], key=f"{prefix}_edit_{key}", height=160)
        if st.button("Save edit as a new version", key=f"{prefix}_save_edit"):
            if not new_text.strip():
                st.error("An edit cannot be empty: drop the sample instead.")
            else:
                version = edit_sample(store, key, new_text)
                # The rerun shows the new text everywhere; the flash tells what happened.
                flash(f"{prefix}_review_flash", "success", f"Saved as version {version}; the original is kept.")
                st.rerun()
        history = sample_history(store, key)
        if len(history) > 1:
            st.dataframe(pd.DataFrame(history, columns=["version", "text"]), hide_index=True, width="stretch")


def cluster_review(store: Store, comparison: Comparison, chosen: np.ndarray, decisions: dict[str, str],
                   clusters: dict[str, int], *, prefix: str) -> None:
    """The set's samples of one cluster in an editable table, with whole-cluster keep / drop."""
    batch = comparison.batch
    labels = cluster_labels(batch.keys, clusters)
    cl = st.selectbox("Cluster", clusters_in(chosen, labels), format_func=lambda c: "noise" if c == NOISE else f"cluster {c}",
                      key=f"{prefix}_review_cluster")
    rows = in_cluster(chosen, labels, cl)
    table = pd.DataFrame({
        "sample_key": [batch.keys[j] for j in rows],
        "decision": [decisions.get(batch.keys[j], "—") for j in rows],
        "text": [batch.texts[j] for j in rows],
    })
    edited = st.data_editor(table, hide_index=True, width="stretch", disabled=["sample_key", "text"], key=f"{prefix}_cluster_editor",
                            column_config={"decision": st.column_config.SelectboxColumn("decision", options=["—", "keep", "drop"])})
    c1, c2, c3 = st.columns(3)
    if c1.button("Keep the whole cluster", key=f"{prefix}_keep_cluster"):
        set_review(store, table["sample_key"].tolist(), "keep")
        st.rerun()
    if c2.button("Drop the whole cluster", key=f"{prefix}_drop_cluster"):
        set_review(store, table["sample_key"].tolist(), "drop")
        st.rerun()
    if c3.button("Save decisions", key=f"{prefix}_save_cluster"):
        for decision in ("keep", "drop"):
            set_review(store, edited.loc[edited.decision == decision, "sample_key"].tolist(), decision)
        st.rerun()


def disagreements(comparison: Comparison) -> None:
    """One tab per ordered pair of pipelines: the samples the first keeps and the second drops, and why."""
    st.subheader("Kept by one, dropped by the other")
    names = comparison.names
    pairs = [(a, b) for a in range(len(names)) for b in range(len(names)) if a != b]
    if not pairs:
        st.caption("Needs two valid pipelines.")
        return
    for tab, (a, b) in zip(st.tabs([f"Kept by {names[a]}, dropped by {names[b]}" for a, b in pairs]), pairs, strict=True):
        with tab:
            diff = comparison.kept_by_dropped_by(a, b)
            st.caption(f"{diff.attrs['total']} sample(s)" + (" (first 500 shown)" if diff.attrs["total"] > len(diff) else ""))
            st.dataframe(diff, hide_index=True, width="stretch")
