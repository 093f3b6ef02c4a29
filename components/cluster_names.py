"""Cluster names on a map: c-TF-IDF keywords by default, an LLM's 2–4 words on request.

Shared by Explore and Evaluate (``page`` prefixes every session-state key). Keywords are
computed once per map; LLM names are kept in the session per (map's clustering, backend,
cluster), so a rerun, a colour change or a second click never pays twice. The cost is shown
before the button for a paid backend; a failure leaves the keywords and says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from services.explore.cluster_keywords import name_positions, short_names
from services.explore.cluster_naming import REPRESENTATIVES, name_clusters, naming_plan
from services.explore.cluster_tuning import NOISE_CAP
from services.explore.map_jobs import MapData
from services.explore.map_view import cluster_labels, has_clusters
from services.generation.connect import preset_config
from services.generation.presets import LOCAL, PRESETS

MAX_NAMES = 12


@st.cache_data(max_entries=8, show_spinner=False)
def _keywords(map_key: str, _data: MapData) -> dict[int, str]:
    return short_names(_data.items.frame["text"].tolist(), cluster_labels(_data))


def _store(page: str) -> dict:
    return st.session_state.setdefault(f"{page}_llm_cluster_names", {})


def names_for(page: str, map_key: str, data: MapData) -> dict[int, str]:
    """Each cluster's name: the LLM's from the backend last used here, else its keywords."""
    if not has_clusters(data):
        return {}
    names = dict(_keywords(map_key, data))
    chosen = st.session_state.get(f"{page}_llm_backend")
    names.update(_store(page).get((data.clustering_id, chosen), {}))
    return names


def positions(page: str, map_key: str, data: MapData, *, size_px: tuple[float, float] = (900.0, 520.0),
              max_names: int = MAX_NAMES) -> list[tuple[float, float, str]]:
    """(x, y, name) of the largest clusters that have room on a plot of about ``size_px``, at their
    centres on the map's layout."""
    names = names_for(page, map_key, data)
    return name_positions(data.layout, cluster_labels(data), names, max_names=max_names, size_px=size_px) if names else []


def choice_details(data: MapData, override_hint: str = "") -> None:
    """The settings the tuned clustering tried, under the map's caption (nothing for the user's own)."""
    choice = data.cluster_choice
    if choice is None or not choice.candidates:
        return
    with st.expander("How the clusters were chosen"):
        st.caption(f"Silhouette: cosine, in the embedding space, on the clustered points. Settings that left more than "
                   f"{NOISE_CAP:.0%} noise were not eligible. {override_hint}".strip())
        st.dataframe(choice.candidate_table(), hide_index=True)


def llm_names_panel(page: str, data: MapData, *, secrets: Callable[[], Mapping[str, Any]], local: Callable[[], Any]) -> None:
    """An expander: a backend, what naming would cost, and the button that asks it."""
    if not has_clusters(data):
        return
    with st.expander("Name the clusters with an LLM"):
        c1, c2 = st.columns(2)
        preset = c1.selectbox("Backend", list(PRESETS), format_func=lambda k: PRESETS[k].label, key=f"{page}_names_preset")
        model = c2.text_input("Model", value=PRESETS[preset].model, key=f"{page}_names_model_{preset}")
        base_url = st.text_input("Base URL", value=PRESETS[preset].base_url, key=f"{page}_names_url_{preset}", disabled=preset == LOCAL)
        label = f"{preset}/{model}" + (f"@{base_url}" if preset != LOCAL and base_url != PRESETS[preset].base_url else "")
        done = _store(page).setdefault((data.clustering_id, label), {})
        plan = naming_plan(data.items.frame["text"].tolist(), data.vectors, cluster_labels(data), max_clusters=MAX_NAMES,
                           skip=list(done))
        cost = plan.cost(model)
        price = ("nothing (the built-in model runs here)" if preset == LOCAL else
                 f"about ${cost:.4f} at the shipped price of {model}" if cost is not None else
                 f"an unknown amount ({model} is not in the shipped price table)")
        if not plan.calls:
            st.caption(f"The {len(done)} largest cluster(s) already have names from {label} (kept for this map).")
            st.session_state[f"{page}_llm_backend"] = label
            return
        st.caption(f"{plan.calls} call(s), one per cluster (the {MAX_NAMES} largest at most), ≈{plan.prompt_tokens():,} prompt "
                   f"tokens: {price}. Each sends the cluster's keywords and {REPRESENTATIVES} representative texts.")
        if st.button(f"Name {plan.calls} cluster(s) with {label}", key=f"{page}_names_go"):
            cfg = preset_config(preset, model=model, base_url=base_url or None, secrets=dict(secrets()), timeout_s=60.0,
                                max_retries=1)
            with st.spinner("Asking for names…"):
                names, errors = name_clusters(cfg, local(), plan)
            done.update(names)
            st.session_state[f"{page}_llm_backend"] = label
            for e in errors:
                st.warning(e)
            if names and not errors:
                st.rerun()  # redraw the map above with the new names
