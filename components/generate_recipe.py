"""Choosing what to generate from: a saved recipe version or a demo recipe, checked by planning it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import streamlit as st

from services.core.errors import StudioError
from services.data.rows import source_rows
from services.demo.recipe_files import demo_recipe_files, load_demo_recipe
from services.recipes.columns import effective_columns
from services.recipes.plan import Plan, make_plan
from services.recipes.recipe import Recipe
from services.recipes.sampling import plan_size, sample_conditions
from services.recipes.version_store import list_versions, load_version


@dataclass(frozen=True)
class PickedRecipe:
    recipe: Recipe
    parent_hash: str | None  # the saved version it came from; None for a demo recipe
    preview: Plan            # the first few items, rendered as they would be sent
    n_items: int
    steps: list[str]         # the model calls of one item, in order (a column asked n times counts n)
    rows: list[dict[str, str]] | None = None  # an annotation recipe's dataset rows


@st.cache_data(max_entries=32, show_spinner=False)
def _pairwise_items(recipe_hash: str, body: str) -> int:
    """Items of a pairwise plan, computed once per recipe version."""
    return len(sample_conditions(Recipe.parse(json.loads(body))))


def _n_items(recipe: Recipe) -> int:
    size = plan_size(recipe)
    if size.items is not None:
        return size.items
    if size.materialisable:  # pairwise: the number of items is known once the cover is computed
        return _pairwise_items(recipe.content_hash(), json.dumps(recipe.canonical()))
    return recipe.sampling.n_items


def recipe_picker(store: Any) -> PickedRecipe | None:
    """The recipe selectbox and a one-line summary; None (with the reason shown) when there is
    nothing to generate from."""
    versions = {f"{v.label}": ("saved", v.recipe_hash) for v in list_versions(store)}
    demos = {f"demo: {stem}": ("demo", stem) for stem in demo_recipe_files()}
    sources = {**versions, **demos}
    if not sources:
        st.info("No recipe yet: build one in the Prompt Builder.")
        return None
    kind, ref = sources[st.selectbox("Recipe", list(sources), key="generate_recipe")]
    rows = None
    try:
        recipe = load_version(store, ref) if kind == "saved" else load_demo_recipe(ref)
        if (src := recipe.source) is not None:  # annotation: the dataset's rows are the items
            rows = source_rows(store, src.dataset, file=src.file, text_column=src.text_column,
                               attribute_columns=src.attribute_columns, limit=src.limit)
        preview = make_plan(recipe, limit=5, rows=rows)
    except StudioError as exc:
        st.error(f"This recipe cannot be planned: {exc}")
        return None
    n_items = len(rows) if rows is not None else _n_items(recipe)
    cols = effective_columns(recipe)
    steps = [sub for c in cols for sub in c.sub_names() if c.calls()]
    where = f"rows of dataset '{recipe.source.dataset}'" if recipe.source else "plan items"
    st.caption(f"{n_items:,} {where} · columns: {' → '.join(c.name for c in cols)} ({len(steps)} model call(s) per item)")
    return PickedRecipe(recipe, ref if kind == "saved" else None, preview, n_items, steps, rows)


def rendered_prompts(plan: Plan) -> None:
    """The first items' messages exactly as sent, as plain text: all of those the rough forecast
    measured, so its count and this list agree."""
    with st.expander(f"Rendered prompts of the first {len(plan.items)} item(s)"):
        for it in plan.items:
            st.text("\n".join(f"[{m['role']}] {m['content']}" for m in it.messages))
