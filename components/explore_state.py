"""Explore's choices survive a visit to another page.

Streamlit forgets the values of widgets a run does not draw, so leaving Explore reset the runs
(and started embedding every run again on return). Each run copies the kept widgets' values to a
plain session key under the page's prefix and puts back any that Streamlit dropped. A value no
longer among a widget's options is harmless: Streamlit falls back to the widget's default, and
the run picker filters its runs itself.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

MEMORY = "explore_memory"
# Settable widgets only (a chart's selection or a button cannot be set through session state).
KEPT = tuple(f"explore_{k}" for k in (
    "kind", "runs", "dataset", "embedder", "custom_model", "nn", "md", "seed", "mcs", "ms", "sel", "reference", "colour",
    "radius", "cluster_names_on", "section", "scope", "cluster", "div_by", "hm_a", "hm_b", "dup_t",
))


def keep_page_state() -> None:
    """Call at the top of the page, before any widget."""
    memory: dict[str, Any] = st.session_state.setdefault(MEMORY, {})
    for key in KEPT:
        if key in st.session_state:
            memory[key] = st.session_state[key]
        elif key in memory:
            st.session_state[key] = memory[key]
