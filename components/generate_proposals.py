"""Letting the model propose more values for a dimension: ask, review the flags, save the accepted ones."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from services.generation.proposals import Proposal
from services.recipes.recipe import Recipe


def proposals_panel(recipe: Recipe, propose: Callable[[str, int], list[Proposal] | None],
                    save: Callable[[str, list[str]], str]) -> None:
    """``propose(dimension, n)`` asks the model (None when it failed and said why); ``save(dimension,
    values)`` writes a new recipe version and returns its label. Proposals are shown as text only."""
    with st.expander("Let the model propose values for a dimension"):
        dims = [d.name for d in recipe.dimensions if d.kind == "categorical" and not d.depends_on]
        if not dims:
            st.caption("This recipe has no independent categorical dimension.")
            return
        d1, d2 = st.columns([2, 1])
        dim = d1.selectbox("Dimension", dims, key="generate_prop_dim")
        n = d2.number_input("How many", 1, 50, 10, key="generate_prop_n")
        if st.button("Propose values", key="generate_propose"):
            with st.spinner("Asking the model…"):
                got = propose(dim, int(n))
            if got is not None:
                st.session_state["generate_proposals"] = (dim, got)
        kept = st.session_state.get("generate_proposals")
        if not kept or kept[0] != dim:
            return
        props: list[Proposal] = kept[1]
        st.dataframe(pd.DataFrame([{"value": x.text, "flag": x.status, "like": x.match, "score": round(x.score)} for x in props]),
                     hide_index=True, width="stretch")
        keep = st.multiselect("Accept", [x.text for x in props], default=[x.text for x in props if not x.flagged],
                              key="generate_prop_accept")
        if keep and st.button("Save as a new recipe version", key="generate_prop_save"):
            st.success(f"Saved {save(dim, keep)}.")
