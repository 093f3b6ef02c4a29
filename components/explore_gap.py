"""Fill the gap: a new recipe version aimed at what the map shows missing (a cell, new values,
or the selected texts as demonstrations), saved for the Generate page to plan and run."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from services.core.store import Store
from services.explore import map_view
from services.explore.gaps import GapError, fill_gap_recipe, save_gap_version
from services.explore.items import ItemSet
from services.recipes.version_store import list_versions, load_version


def fill_the_gap(store: Store, runs: pd.DataFrame, run_ids: list[str], items: ItemSet, selected: list[int]) -> None:
    frame = items.frame
    versions = {v.recipe_hash: v.label for v in list_versions(store)}
    choices = map_view.gap_recipe_choices(runs, run_ids, versions)
    if not choices:
        st.info("No saved recipe to build on: save a recipe in the Prompt Builder first.")
        return
    parent = st.selectbox("Recipe to extend", choices, format_func=versions.get, key="explore_gap_recipe")
    recipe = load_version(store, parent)
    recipe_dims = [d.name for d in recipe.dimensions if d.kind == "categorical"]
    how = st.radio("Target", ["a cell (restrict values)", "new values", "selected texts as demonstrations"],
                   horizontal=True, key="explore_gap_how")
    changes: dict = {}
    if how.startswith("a cell"):
        picked = st.multiselect("Dimensions to restrict", recipe_dims, default=recipe_dims[:2], key="explore_gap_dims")
        restrict = {}
        for d in picked:
            values = [v.key for v in recipe.dimension(d).all_values()]
            col = items.column(d)  # the recipe's name; the frame's column may differ (items._RESERVED)
            have = frame[col].value_counts().to_dict() if col else {}
            restrict[d] = st.multiselect(f"{d} (samples so far per value in brackets)", values, key=f"explore_gap_v_{d}",
                                         format_func=lambda v, have=have: f"{v} ({have.get(v, 0)})")
        changes = {"restrict": {d: v for d, v in restrict.items() if v}}
    elif how == "new values":
        d = st.selectbox("Dimension", recipe_dims, key="explore_gap_add_dim")
        new = st.text_input("New values (comma-separated)", key="explore_gap_add_vals")
        changes = {"add_values": {d: map_view.split_values(new)}} if d else {}
    else:
        if not selected:
            st.info("Select points on the map (box or lasso) first.")
        changes = {"demos": map_view.gap_demonstrations(frame, items.dimensions, selected, names=items.names)}
    if st.button("Create recipe version", key="explore_gap_go", type="primary"):
        try:
            saved = save_gap_version(store, parent, fill_gap_recipe(recipe, **changes), note=f"fill the gap ({how})")
            st.success(f"Saved {saved.label}. Plan and run it on the Generate page.")
        except (GapError, ValueError) as exc:
            st.error(f"Cannot build that recipe: {exc}")
