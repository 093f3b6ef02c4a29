"""The Builder's starters: an empty recipe or one of the shipped recipes, each with what it makes."""

from __future__ import annotations

import streamlit as st

from components import recipe_form
from services.demo.recipe_files import load_demo_recipe, starters
from services.recipes.recipe import Recipe


def _open(stem: str | None) -> None:
    if stem is None:
        recipe_form.load_recipe(Recipe(name="untitled"), "new recipe")
    else:
        recipe_form.load_recipe(load_demo_recipe(stem), f"starter {stem}")


def starter_gallery() -> None:
    """One row per starter with an Open button; opening replaces the form (unsaved edits are lost)."""
    st.markdown("**Start from** an empty recipe or a shipped starter (opening one replaces the form):")
    with st.container(border=True):
        c1, c2 = st.columns([4, 1])
        c1.markdown("**Empty recipe** — no dimensions, no templates: build it yourself.")
        c2.button("New empty recipe", key="builder_pin_start_empty", on_click=_open, args=(None,), icon=":material/note_add:")
        for stem, name, line in starters():
            c1, c2 = st.columns([4, 1])
            # Names and descriptions come from shipped files, but render as plain text all the same.
            c1.text(f"{name} — {line}")
            c2.button("Open", key=f"builder_pin_start_{stem}", on_click=_open, args=(stem,), help=f"data/recipes/{stem}.yaml")


def starter_hint(is_example: bool) -> None:
    """Say that the form holds an example until the user picks what to start from."""
    if is_example:
        # Worded without the expander's title, so a search for that title finds only the expander.
        st.info("The form holds a small example recipe. To pick deliberately, unfold the folder below: "
                "start from an empty recipe or one of the shipped starters (each says what it makes).",
                icon=":material/lightbulb:")
